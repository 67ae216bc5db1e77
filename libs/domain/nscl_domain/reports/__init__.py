"""Reporting: obligations, reports, their versions and the figures in them."""
