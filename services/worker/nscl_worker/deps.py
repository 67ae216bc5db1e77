"""What the worker's job functions share: built once at start-up, closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from nscl_domain.composition.process import Process
from nscl_domain.jobs import AttemptObserver, JobQueue
from nscl_worker.metrics import JOB_METRICS


@dataclass
class WorkerDeps(Process):
    """The process wiring, with the queue a worker always has (it re-enqueues retries)."""

    queue: JobQueue
    observer: AttemptObserver = field(default=JOB_METRICS)
