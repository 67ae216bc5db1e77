"""The programme catalogue: organisation units, programmes, targets and tasks."""
