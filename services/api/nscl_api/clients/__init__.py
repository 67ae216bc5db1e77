"""/v1/clients: the API clients, for those who manage them."""
