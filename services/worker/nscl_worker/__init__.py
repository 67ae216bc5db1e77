"""The arq worker: runs the jobs the outbox records, sweeps the outbox, runs the schedule."""
