"""The NSCL programme: organisation units, plans, budgets, reports and their rollups."""
