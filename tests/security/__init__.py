"""Hostile input: uploads, tokens and other ways of making the service work for nothing."""
