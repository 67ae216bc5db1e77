"""Rollups: the provincial picture computed from accepted reports."""
