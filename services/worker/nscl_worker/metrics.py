"""The worker's own metrics: each job attempt by job name and outcome, with its duration.

Served at /metrics on the worker's health port (`nscl worker --health-port`), with the
process's resource use and the shared state (outbox lag, queue depth, rollup freshness)
read at scrape time, so a worker alone is observable where no API runs beside it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
BUCKETS = (0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

JOB_RUNS = Counter(
    "job_runs",
    "Job attempts ended, by job name and outcome (succeeded, failed, retried, cancelled, "
    "lost, interrupted).",
    labelnames=("job", "outcome"),
    namespace="nscl",
    registry=REGISTRY,
)
JOB_FAILURES = Counter(
    "job_failures",
    "Jobs that ended failed (attempts spent, or an error no retry mends).",
    labelnames=("job",),
    namespace="nscl",
    registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "job_retries",
    "Failed attempts whose job went back to pending for another attempt.",
    labelnames=("job",),
    namespace="nscl",
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Wall time of a job attempt, by job name.",
    labelnames=("job",),
    namespace="nscl",
    buckets=BUCKETS,
    registry=REGISTRY,
)
WORKER_RUNNING = Gauge(
    "worker_running",
    "1 while the worker takes jobs; 0 while it waits for Redis, the database or a schema.",
    namespace="nscl",
    registry=REGISTRY,
)


class JobMetrics:
    """The attempt observer the worker hands to every attempt."""

    def attempt_ended(self, job_name: str, outcome: str, seconds: float) -> None:
        JOB_RUNS.labels(job_name, outcome).inc()
        JOB_DURATION.labels(job_name).observe(seconds)
        if outcome == "failed":
            JOB_FAILURES.labels(job_name).inc()
        elif outcome == "retried":
            JOB_RETRIES.labels(job_name).inc()


JOB_METRICS = JobMetrics()
