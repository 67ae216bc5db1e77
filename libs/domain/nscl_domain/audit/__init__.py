"""The audit trail: an append-only record of every change, written with the change."""
