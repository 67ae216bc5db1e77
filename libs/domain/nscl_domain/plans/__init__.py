"""Plans: five-year and annual plans of reporting units, and requests to change them."""
