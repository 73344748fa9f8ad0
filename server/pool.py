"""The worker pool behind a small interface, so that the event loop never blocks.

:class:`WorkerPool` is what the server uses: ``submit(spec) -> JobHandle`` (or
:class:`PoolBusy`), ``handle.events`` (an asyncio.Queue of :class:`Queued`,
:class:`Started`, :class:`Progress` and one final :class:`Done`, :class:`Failed` or
:class:`JobCancelled`), ``handle.cancel()``, ``stats()``, ``expected_seconds(quality)``
and ``close()``. :class:`QueueingPool` holds what the pools share (the bounded queue,
admission, positions and ETAs); :class:`ProcessPool` runs the jobs in spawned worker
processes, ``ray_pool.RayPool`` on the actors of a Ray cluster that several front ends
share (``--ray``; only that module imports Ray).

ProcessPool: ``workers`` conversion slots in ``processes`` worker processes (default
one single-slot process per core: the textures' exemplar analyses cost a process a few
MB and ~0.1 s, so nothing is gained by sharing one, and separate processes share no GIL;
fewer processes than slots run the extra jobs as threads); one duplex pipe and one
reader thread per process; a bounded queue in the parent, first in first out except
that short jobs pass the whole songs waiting (:meth:`QueueingPool._take_next`); a
cancelled job stops between two iterations, or its process is killed after
``cancel_grace`` seconds; a process that dies (killed, crashed, out of memory) or a job
that runs past its time limit (``job_timeout`` per minute of audio) fails its jobs with
``worker_failed`` and the process is
replaced.
"""
from __future__ import annotations

import abc
import asyncio
import collections
import dataclasses
import itertools
import logging
import multiprocessing
import threading
import time

from . import worker as worker_mod
from .config import pool_shape, usable_cores
from .worker import JobOutput, JobSpec

log = logging.getLogger("musicoder.server.pool")

# Seconds one job takes per quality before any is measured (10 s window, this machine).
DEFAULT_EXPECTED_SECONDS = {"lofi": 1.5, "standard": 2.0, "hifi": 2.5}
EXPECTED_PER_SECONDS = 10.0  # the expected seconds above are for this much audio
# Of audio: a longer job (a whole song) is long. Long jobs hold at most all but one of the
# worker slots, and short jobs pass the long ones waiting, so that a 10 s conversion
# never waits behind whole songs (only, on a single worker, for the one running).
LONG_JOB_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Queued:
    position: int  # 1: next to start
    eta: float


@dataclasses.dataclass(frozen=True)
class Started:
    eta: float


@dataclasses.dataclass(frozen=True)
class Progress:
    stage: str
    fraction: float
    eta: float


@dataclasses.dataclass(frozen=True)
class Done:
    output: JobOutput
    queued_seconds: float


@dataclasses.dataclass(frozen=True)
class Failed:
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class JobCancelled:
    pass


FINAL = (Done, Failed, JobCancelled)


class PoolBusy(Exception):
    def __init__(self, queued: int, limit: int):
        super().__init__(f"{queued} conversions are waiting (the limit is {limit}); try again shortly.")
        self.queued = queued
        self.limit = limit


class JobHandle:
    """One submitted job: ``id``, ``events`` (asyncio.Queue), ``cancel()``, ``done``."""

    def __init__(self, job_id: int, spec: JobSpec, pool: "WorkerPool"):
        self.id = job_id
        self.spec = spec
        self.events: asyncio.Queue = asyncio.Queue()
        self.done = False
        self.cancel_requested = False
        self.submitted = time.monotonic()
        self.seconds = spec.seconds  # of audio: what the job's memory grows with
        self.started: float | None = None
        self.position = 0  # 0: running; n: n-th in the queue
        self.eta = 0.0  # seconds until the result, estimated
        self.losses = 0  # workers lost while running it (a pool may retry it once)
        self._pool = pool

    def cancel(self) -> None:
        """Ask the job to stop; a JobCancelled event follows (or Done if it finished first)."""
        if not self.done and not self.cancel_requested:
            self.cancel_requested = True
            self._pool._cancel(self)

    def _finish(self, event) -> None:
        if not self.done:
            self.done = True
            self.events.put_nowait(event)


class WorkerPool(abc.ABC):
    """The interface the server depends on."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    def submit(self, spec: JobSpec) -> JobHandle: ...

    @abc.abstractmethod
    def stats(self) -> dict: ...

    @abc.abstractmethod
    def expected_seconds(self, quality: str) -> float: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def _cancel(self, handle: JobHandle) -> None: ...


def is_long(seconds: float) -> bool:
    """A job of this many seconds of audio is long (LONG_JOB_SECONDS): a whole song."""
    return seconds > LONG_JOB_SECONDS


class QueueingPool(WorkerPool):
    """What the pools share: the bounded FIFO of waiting jobs and its admission (PoolBusy),
    queue positions with ETAs, the memory rule of what may start, the learnt seconds per
    quality and the counters. A pool adds where jobs run: ``_running()`` (the handles
    running now), ``_has_free()`` and ``_dispatch()`` (start what fits on free slots)."""

    size = 1  # worker slots: a pool sets its own
    job_timeout = 300.0  # s a job may run per minute of audio (time_limit): a pool sets its own

    def __init__(self, queue: int, expected: dict[str, float] | None, max_running_seconds: float):
        self.max_queue = queue
        self.max_running_seconds = max_running_seconds
        self._expected = dict(DEFAULT_EXPECTED_SECONDS if expected is None else expected)
        self._pending: collections.deque[JobHandle] = collections.deque()
        self._ids = itertools.count(1)
        self._closing = False
        self.completed = 0
        self.failed = 0

    @abc.abstractmethod
    def _running(self) -> list[JobHandle]: ...

    @abc.abstractmethod
    def _has_free(self) -> bool: ...

    @abc.abstractmethod
    def _dispatch(self) -> None: ...

    def _queue_full(self) -> bool:
        return len(self._pending) >= self.max_queue

    def submit(self, spec: JobSpec) -> JobHandle:
        if self._closing:
            raise PoolBusy(len(self._pending), 0)
        idle = self._has_free() and not self._pending
        if self._queue_full() and not idle:
            raise PoolBusy(len(self._pending), self.max_queue)
        handle = JobHandle(next(self._ids), spec, self)
        self._pending.append(handle)
        self._dispatch()
        if not handle.started:
            self._announce_positions()
        return handle

    def _running_seconds(self) -> float:
        return sum(job.seconds for job in self._running())

    def _fits(self, job: JobHandle) -> bool:
        """Memory grows with the audio being converted: a job starts while the seconds
        of audio running of its kind (long or short, :func:`is_long`) stay within
        max_running_seconds with its own, or when none of its kind runs. Two budgets: the
        whole songs running never hold back the short jobs."""
        running = sum(j.seconds for j in self._running() if is_long(j.seconds) == is_long(job.seconds))
        return running == 0 or running + job.seconds <= self.max_running_seconds

    def _take_next(self) -> JobHandle | None:
        """The queued job that may start now on a free slot, taken off the queue; None
        when none may. Short jobs first, in their order, passing the long ones waiting;
        then long jobs in theirs, while long jobs hold fewer than all but one of the
        ``size`` slots (one, when there is only one)."""
        short = next((job for job in self._pending if not is_long(job.seconds)), None)
        if short is not None and self._fits(short):
            self._pending.remove(short)
            return short
        if sum(1 for j in self._running() if is_long(j.seconds)) >= max(1, self.size - 1):
            return None
        song = next((job for job in self._pending if is_long(job.seconds)), None)
        if song is None or not self._fits(song):
            return None
        self._pending.remove(song)
        return song

    def job_seconds(self, job: JobHandle) -> float:
        """Seconds the job is expected to run: the learnt seconds of its quality, per
        EXPECTED_PER_SECONDS of audio, scaled to its own audio (a whole song takes long)."""
        per = self.expected_seconds(job.spec.quality) / EXPECTED_PER_SECONDS
        return per * max(job.seconds, EXPECTED_PER_SECONDS)

    def time_limit(self, job: JobHandle) -> float:
        """Seconds a job may run before it is stopped as stuck: job_timeout per minute of
        its audio, and at least job_timeout."""
        return self.job_timeout * max(1.0, job.seconds / 60.0)

    def _announce_positions(self) -> None:
        busy = max(1, len(self._running()))
        ahead = 0.0
        for i, job in enumerate(self._pending):
            mine = self.job_seconds(job)
            position, eta = i + 1, round(ahead / busy + mine, 2)
            if (position, eta) != (job.position, job.eta):
                job.position, job.eta = position, eta
                job.events.put_nowait(Queued(position=position, eta=eta))
            ahead += mine

    def _progress(self, job: JobHandle, stage: str, fraction: float) -> Progress:
        elapsed = time.monotonic() - (job.started or time.monotonic())
        expected = self.job_seconds(job)
        eta = elapsed / fraction * (1 - fraction) if fraction > 0.05 else max(expected - elapsed, 0.0)
        return Progress(stage=stage, fraction=fraction, eta=max(eta, 0.0))

    def _conclude(self, job: JobHandle, kind: str, *payload) -> None:
        """End ``job`` with a worker's final message: ``"done", JobOutput``, ``"cancelled"``
        or ``"failed", code, message`` (worker.py's messages less the job id)."""
        if kind == "done":
            self._succeeded(job, payload[0])
        elif kind == "cancelled":
            job._finish(JobCancelled())
        else:
            self.failed += 1
            job._finish(Failed(code=payload[0], message=payload[1]))

    def _succeeded(self, job: JobHandle, output: JobOutput) -> None:
        # learnt per EXPECTED_PER_SECONDS of audio: a whole song's time says what a 10 s job takes
        seconds = (time.monotonic() - (job.started or time.monotonic())) * EXPECTED_PER_SECONDS / max(
            job.seconds, EXPECTED_PER_SECONDS)
        q = job.spec.quality
        self._expected[q] = 0.7 * self._expected.get(q, seconds) + 0.3 * seconds
        self.completed += 1
        job._finish(Done(output=output, queued_seconds=(job.started or job.submitted) - job.submitted))

    def _cancel_pending(self, handle: JobHandle) -> bool:
        """A cancelled job that had not started: gone from the queue (True), else False."""
        if handle not in self._pending:
            return False
        self._pending.remove(handle)
        handle._finish(JobCancelled())
        self._dispatch()  # it may have held back the jobs behind it
        self._announce_positions()
        return True

    def expected_seconds(self, quality: str) -> float:
        return round(self._expected.get(quality, max(self._expected.values(), default=2.0)), 2)

    def queue_stats(self) -> dict:
        running = self._running()
        return {"running": len(running), "running_audio_seconds": round(self._running_seconds(), 2),
                "max_running_seconds": self.max_running_seconds, "queued": len(self._pending),
                "queue_limit": self.max_queue, "completed": self.completed, "failed": self.failed}


class _Worker:
    """The parent's view of one worker process: its pipe and the jobs it runs."""

    def __init__(self, index: int, slots: int):
        self.index = index
        self.slots = slots
        self.process = None
        self.conn = None
        self.pid: int | None = None
        self.ready = False
        self.jobs: dict[int, JobHandle] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self.killed_by_us = False
        self.spawned = 0.0  # time.monotonic() at the last start
        self.start_seconds: float | None = None  # start → ready, the last start

    @property
    def free(self) -> int:
        return self.slots - len(self.jobs) if self.ready else 0


class ProcessPool(QueueingPool):
    """``workers`` conversions at once (0: one per core), in ``processes`` spawned worker
    processes (0: one per conversion; fewer: the rest run as threads inside them)."""

    def __init__(self, workers: int = 0, queue: int = 32, models: str = "models", job_timeout: float = 300.0,
                 cancel_grace: float = 10.0, expected: dict[str, float] | None = None, nice: int = 5,
                 processes: int = 0, preload: bool = True, max_running_seconds: float = 600.0):
        cores = usable_cores()
        workers, processes = pool_shape(max(workers, 0), max(processes, 0), cores)
        super().__init__(queue, expected, max_running_seconds)
        self.size = workers
        self.models = models
        self.job_timeout = job_timeout
        self.cancel_grace = cancel_grace
        self.nice = nice
        self.preload = preload
        self.threads = max(1, cores // workers)  # compute threads per job: the cores shared out, no more
        self._ctx = multiprocessing.get_context("spawn")
        self._workers = [_Worker(i, workers // processes + (1 if i < workers % processes else 0))
                         for i in range(processes)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self.restarts = 0

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for w in self._workers:
            self._spawn(w)

    def _spawn(self, w: _Worker) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=worker_mod.main, name=f"musicoder-worker-{w.index}",
                                 args=(child, self.models, w.slots, self.threads, self.nice, self.preload),
                                 daemon=True)
        proc.start()
        child.close()  # only the worker holds its end: EOF here when it dies
        w.process, w.conn, w.pid, w.ready, w.killed_by_us = proc, parent, proc.pid, False, False
        w.jobs, w.timers, w.spawned = {}, {}, time.monotonic()
        threading.Thread(target=self._reader, args=(w, parent, proc), name=f"pool-reader-{w.index}",
                         daemon=True).start()
        log.info("worker process %d starting, pid %d, %d slot(s)", w.index, proc.pid, w.slots)

    def _reader(self, w: _Worker, conn, proc) -> None:
        """Thread: every message from one worker process onto the event loop."""
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as err:  # an unpicklable message: treat the worker as broken
                log.error("worker %d sent a bad message: %s", w.index, err)
                proc.kill()
                break
            self._call(self._on_message, w, proc, msg)
        proc.join(timeout=5)
        self._call(self._on_exit, w, proc)

    def _call(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server has stopped
            pass

    async def close(self) -> None:
        """Cancel everything, stop the workers (killed if they do not stop in 5 s)."""
        self._closing = True
        while self._pending:
            self._pending.popleft()._finish(JobCancelled())
        for w in self._workers:
            for job in w.jobs.values():
                job._finish(JobCancelled())
            if w.conn is not None:
                try:
                    for job_id in w.jobs:
                        w.conn.send(("cancel", job_id))
                    w.conn.send(None)
                except (OSError, ValueError):
                    pass

        def join_all() -> None:
            deadline = time.monotonic() + 5
            for w in self._workers:
                if w.process is None:
                    continue
                w.process.join(timeout=max(0.1, deadline - time.monotonic()))
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(timeout=5)

        await asyncio.to_thread(join_all)

    # ---- jobs ---------------------------------------------------------------------------

    def _cancel(self, handle: JobHandle) -> None:
        if self._cancel_pending(handle):
            return
        for w in self._workers:
            if handle.id in w.jobs:
                try:
                    w.conn.send(("cancel", handle.id))
                except (OSError, ValueError):
                    pass
                self._arm(w, handle, self.cancel_grace, "did not stop after cancel")
                return

    def _arm(self, w: _Worker, job: JobHandle, seconds: float, why: str) -> None:
        old = w.timers.pop(job.id, None)
        if old is not None:
            old.cancel()
        w.timers[job.id] = self._loop.call_later(seconds, self._kill, w, job, why)

    def _kill(self, w: _Worker, job: JobHandle, why: str) -> None:
        """A job that overran: kill its process (its other jobs fail with it)."""
        if w.jobs.get(job.id) is job and w.process is not None and w.process.is_alive():
            log.warning("worker %d (pid %d) killed: job %d %s", w.index, w.pid, job.id, why)
            w.killed_by_us = True
            w.process.kill()

    def _running(self) -> list[JobHandle]:
        return [job for w in self._workers for job in w.jobs.values()]

    def _has_free(self) -> bool:
        return any(w.free > 0 for w in self._workers)

    def _dispatch(self) -> None:
        for w in self._workers:
            while w.free > 0:
                job = self._take_next()
                if job is None:
                    return
                w.jobs[job.id] = job
                job.started = time.monotonic()
                job.position, job.eta = 0, self.job_seconds(job)
                try:
                    w.conn.send((job.id, job.spec))
                except (OSError, ValueError) as err:  # the worker died just now: _on_exit fails the job
                    log.warning("worker %d: could not send job %d: %s", w.index, job.id, err)
                    continue
                limit = self.time_limit(job)
                self._arm(w, job, limit, f"ran past the {limit:g} s limit")
                job.events.put_nowait(Started(eta=job.eta))

    def _on_message(self, w: _Worker, proc, msg) -> None:
        if w.process is not proc:  # from a worker already replaced
            return
        kind = msg[0]
        if kind == "ready":
            info = msg[2]
            w.ready, w.start_seconds = True, time.monotonic() - w.spawned
            log.info("worker process %d ready, pid %d, in %.2f s (%s)", w.index, msg[1], w.start_seconds,
                     ", ".join(f"{k} {v:.2f} s" for k, v in info["phases"].items()))
            self._dispatch()
            return
        job = w.jobs.get(msg[1])
        if job is None:
            return
        if kind == "progress":
            job.events.put_nowait(self._progress(job, msg[2], msg[3]))
            return
        timer = w.timers.pop(job.id, None)
        if timer is not None:
            timer.cancel()
        del w.jobs[job.id]
        self._conclude(job, kind, *msg[2:])
        self._dispatch()
        self._announce_positions()

    def _on_exit(self, w: _Worker, proc) -> None:
        if w.process is not proc:
            return
        for timer in w.timers.values():
            timer.cancel()
        jobs, w.jobs, w.timers, w.ready = list(w.jobs.values()), {}, {}, False
        code = proc.exitcode
        for job in jobs:
            if job.cancel_requested:
                job._finish(JobCancelled())
            else:
                self.failed += 1
                why = "was stopped by the server" if w.killed_by_us else f"stopped (exit status {code})"
                job._finish(Failed(code="worker_failed",
                                   message=f"The worker running this conversion {why}; please try again."))
        if self._closing:
            return
        log.warning("worker %d (pid %s) exited with status %s%s; restarting", w.index, w.pid, code,
                    f", failing job(s) {', '.join(str(j.id) for j in jobs)}" if jobs else "")
        self.restarts += 1
        delay = 0.0 if w.killed_by_us or jobs else 1.0  # a worker that dies at start: no hot loop
        self._loop.call_later(delay, self._respawn, w)
        self._announce_positions()

    def _respawn(self, w: _Worker) -> None:
        if not self._closing:
            self._spawn(w)

    # ---- figures ------------------------------------------------------------------------

    def stats(self) -> dict:
        return {
            "workers": self.size,
            "workers_ready": sum(w.slots for w in self._workers if w.ready),
            "processes": len(self._workers),
            **self.queue_stats(),
            "restarts": self.restarts,
            "worker_pids": [w.pid for w in self._workers if w.pid is not None],
            "busy_pids": [w.pid for w in self._workers if w.jobs and w.pid is not None],
            "slots_per_process": [w.slots for w in self._workers],
            "compute_threads_per_job": self.threads,
            # start → ready of each process's last start (None: not ready yet)
            "worker_start_seconds": [None if w.start_seconds is None or not w.ready else round(w.start_seconds, 2)
                                     for w in self._workers],
        }
