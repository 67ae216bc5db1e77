"""A bounded pool of worker processes for CPU-bound pure functions (parsing uploads).

Why processes, not threads: pure-Python parsing holds the GIL, and a thread running it
would still take turns with the event loop; and a thread cannot be stopped, while a worker
process over its wall-time limit is killed.

Each slot is a one-process executor, so killing one runaway worker breaks only its own
executor, which is replaced; the other slots' work goes on. At most ``size`` functions run at
once; a caller waits up to ``wait_seconds`` for a free slot, then gets :class:`PoolBusy`
(the API answers 503 with Retry-After). A call whose reused worker turns out to have died
while idle runs once more on a new one (the functions are pure). Workers start on first
use, with the ``spawn`` method (forking a process that runs an event loop, a database pool
and threads is unsafe) and at a lower CPU priority, so that the server's own process is
scheduled first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKER_NICENESS = 10


class PoolBusy(Exception):
    """Every worker stayed busy for as long as a caller may wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"All workers are busy; retry in {retry_after} s.")
        self.retry_after = retry_after


class WorkTimedOut(Exception):
    """The function ran past its wall-time limit; its worker process was killed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The work took more than {seconds:g} s and was stopped.")
        self.seconds = seconds


class WorkerLost(Exception):
    """The worker process died while running the function (killed, or out of memory)."""


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


class ProcessPool:
    """Run pure functions in worker processes: at most ``size`` at once, each within
    ``timeout_seconds`` of wall time."""

    def __init__(self, size: int, *, timeout_seconds: float, wait_seconds: float) -> None:
        if size < 1:
            raise ValueError("A pool needs at least one worker.")
        self.size = size
        self.timeout_seconds = timeout_seconds
        self.wait_seconds = wait_seconds
        self._idle: list[ProcessPoolExecutor] = []
        self._busy: set[ProcessPoolExecutor] = set()
        # An asyncio semaphore belongs to one event loop; a pool may outlive a loop (tests).
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``function(*args, **kwargs)`` in a worker; raise what it raises, or
        :class:`PoolBusy`, :class:`WorkTimedOut` or :class:`WorkerLost`."""
        if self._closed:
            raise RuntimeError("The pool is closed.")
        slots = self._semaphore()
        try:
            async with asyncio.timeout(self.wait_seconds):
                await slots.acquire()
        except TimeoutError:
            raise PoolBusy(retry_after=max(1, round(self.timeout_seconds))) from None
        call = functools.partial(function, *args, **kwargs)
        try:
            reused = bool(self._idle)
            executor = self._idle.pop() if reused else self._new_executor()
            try:
                return await self._run_on(executor, call)
            except WorkerLost:
                if not reused or self._closed:
                    raise
                # A worker that died while idle (killed from outside) fails the next call
                # it is given; the function is pure, so it runs once more on a new worker.
                return await self._run_on(self._new_executor(), call)
        finally:
            slots.release()

    async def _run_on(self, executor: ProcessPoolExecutor, call: Callable[[], T]) -> T:
        self._busy.add(executor)
        future: Future[T] | None = None
        try:
            future = executor.submit(call)
            async with asyncio.timeout(self.timeout_seconds):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            raise WorkTimedOut(self.timeout_seconds) from None
        except BrokenProcessPool as exc:
            raise WorkerLost(str(exc)) from exc
        finally:
            self._busy.discard(executor)
            # Only a worker that finished its call (with a result or an exception) is used
            # again; one stopped midway (timed out, or its caller cancelled) is killed.
            if not self._closed and _finished(future):
                self._idle.append(executor)
            else:
                _kill(executor)

    def close(self) -> None:
        """Kill every worker, busy ones included; later calls to :meth:`run` fail."""
        self._closed = True
        for executor in [*self._idle, *self._busy]:
            _kill(executor)
        self._idle.clear()

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.size), loop
        return self._slots

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_lower_priority,
        )


def _finished(future: Future[Any] | None) -> bool:
    return (
        future is not None
        and future.done()
        and not future.cancelled()
        and not isinstance(future.exception(), BrokenProcessPool)
    )


def _kill(executor: ProcessPoolExecutor) -> None:
    # Python 3.14 has ProcessPoolExecutor.kill_workers(); before it, only the private map.
    kill_workers = getattr(executor, "kill_workers", None)
    if kill_workers is not None:
        kill_workers()
    else:
        processes: dict[int, Any] = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            with contextlib.suppress(Exception):
                process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
