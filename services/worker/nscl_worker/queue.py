"""The job queue on arq: the hand-over the domain defines, which the API speaks too."""

from __future__ import annotations

from nscl_domain.jobs.queue import RUN_JOB, ArqJobQueue, arq_job_id

__all__ = ["RUN_JOB", "ArqJobQueue", "arq_job_id"]
