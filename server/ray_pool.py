"""Conversions on a Ray cluster: :class:`RayPool`, the server's ``WorkerPool`` over Ray actors.

``musicoder-server --ray ADDRESS`` uses it instead of the local worker processes; only
then is Ray imported. Sessions, limits, cleanup and the protocol do not change.

- **Actors.** This front end keeps ``workers`` :class:`ConversionActor` s on the cluster,
  spread over its nodes, each holding one ``worker.Converter`` (engine and textures
  loaded once) and converting one job at a time. They are this front end's own
  (non-detached): when the front end dies, Ray ends them, and with them its jobs; the
  other front ends' actors and jobs go on.
- **Jobs.** The window's (and the user exemplar's) samples go through Ray's object store
  (``ray.put``), not a path; the actor's ``convert`` is a streaming generator whose
  items are the progress messages and the result, forwarded as pool events while the
  job runs. Cancel (or a disconnect) is ``ray.cancel`` of that task; an actor that has
  not stopped ``cancel_grace`` s later is killed and replaced.
- **Faults.** An actor lost mid-job (its node died, its process was killed) is replaced,
  and its job is retried once, first in the queue, on another actor; a second loss, or
  no actor free within ``RETRY_WAIT`` s, ends it with ``worker_failed``. A job running
  past ``job_timeout`` kills its actor. Nothing waits for ever.
- **The cluster's view.** Every front end reports its actors, running and queued jobs
  each second to one named :class:`Ledger` actor and gets all live reports back:
  admission is ``busy`` when the jobs waiting across the cluster reach ``queue``, and
  ``/healthz`` shows every front end's actors, their load and the queue.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import socket
import threading
import time
import traceback
import uuid

import numpy as np
import ray
from ray.exceptions import RayError, TaskCancelledError

from .pool import Failed, JobCancelled, JobHandle, QueueingPool, Started
from .worker import Converter, failure_message, read_samples, trim_heap, tune_malloc

log = logging.getLogger("musicoder.server.ray")

NAMESPACE = "musicoder"
LEDGER_NAME = "musicoder-ledger"
REPORT_INTERVAL = 1.0  # seconds between a front end's reports to the ledger
LEDGER_TTL = 5.0  # a front end not heard from for this long is gone
RETRY_WAIT = 30.0  # seconds a job retried after a lost actor may wait for another one
RESTART_DELAY = (1.0, 10.0)  # seconds before replacing an actor that failed to start: first, most
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@ray.remote
class ConversionActor:
    """One conversion slot on the cluster: a Converter loaded once, one job at a time
    (the pool sends no second), the job's engine in a thread so that the actor's event
    loop stays free to stream progress and to take the cancellation."""

    def __init__(self, models_module: str, threads: int, preload: bool):
        t0 = time.monotonic()
        tune_malloc()
        self.converter = Converter(models_module, threads)
        self.info = self.converter.start(preload, {"imports": time.monotonic() - t0})
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        gc.freeze()  # what start-up made lives for ever: no collection walks it again

    def ready(self) -> dict:
        """Where the actor runs and how its start went."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "node_ip": ray.util.get_node_ip_address(), **self.info}

    async def convert(self, spec, samples: np.ndarray, exemplar: np.ndarray | None):
        """Streams ``("progress", stage, fraction)`` items, then one final ``("done",
        JobOutput)``, ``("cancelled",)`` or ``("failed", code, message)``."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        c = self.converter

        def run() -> None:
            def report(*item) -> None:
                loop.call_soon_threadsafe(items.put_nowait, item)

            try:
                # the object store's arrays are read-only: the engine gets its own copies
                out = c.convert(spec, np.array(samples), None if exemplar is None else np.array(exemplar),
                                lambda stage, fraction: report("progress", stage, fraction), cancel.is_set)
                report("done", out)
            except c.Cancelled:
                report("cancelled")
            except c.InputError as err:
                report("failed", err.code, err.message)
            except Exception as err:  # a model or engine failure: report it, keep serving
                traceback.print_exc()
                report("failed", "internal", failure_message(err))
            finally:
                trim_heap()

        job = loop.run_in_executor(self.executor, run)
        try:
            while True:
                item = await items.get()
                yield item
                if item[0] != "progress":
                    break
        finally:  # ended, or cancelled (ray.cancel): the engine stops at its next check
            cancel.set()
            await asyncio.wait([job])


@ray.remote
class Ledger:
    """The front ends' last reports, by front end id: what each holds (actors, running,
    queued). A report older than LEDGER_TTL s is of a front end gone, and dropped."""

    def __init__(self):
        self.reports: dict[str, tuple[float, dict]] = {}

    def report(self, front_end: str, report: dict) -> dict[str, dict]:
        """Keep this front end's report; return every live one (this one included)."""
        now = time.monotonic()
        self.reports[front_end] = (now, report)
        self.reports = {k: v for k, v in self.reports.items() if now - v[0] <= LEDGER_TTL}
        return {k: r for k, (_, r) in self.reports.items()}

    def forget(self, front_end: str) -> None:
        self.reports.pop(front_end, None)


class _Slot:
    """This front end's view of one actor: its handle, whether it is ready, its job."""

    def __init__(self, index: int):
        self.index = index
        self.actor = None
        self.ready = False
        self.info: dict = {}
        self.job: JobHandle | None = None
        self.stream = None  # the running job's ObjectRefGenerator
        self.failures = 0  # starts that failed in a row

    def describe(self) -> dict:
        return {"ready": self.ready, "busy": self.job is not None, "node_ip": self.info.get("node_ip"),
                "node_id": (self.info.get("node_id") or "")[:12] or None, "pid": self.info.get("pid")}


def resolve_address(address: str) -> str:
    """``auto`` is RAY_ADDRESS where set (else Ray's own auto-detection); else as given."""
    if address == "auto":
        return os.environ.get("RAY_ADDRESS") or "auto"
    return address


class RayPool(QueueingPool):
    """``workers`` conversion actors on the Ray cluster at ``address``; the interface of
    ``pool.WorkerPool``."""

    def __init__(self, address: str, workers: int = 2, queue: int = 32, models: str = "models",
                 job_timeout: float = 300.0, cancel_grace: float = 10.0, preload: bool = True,
                 max_running_seconds: float = 30.0, expected: dict[str, float] | None = None,
                 cpus_per_actor: float = 1.0):
        super().__init__(queue, expected, max_running_seconds)
        self.address = resolve_address(address)
        self.size = max(workers, 1)
        self.models = models
        self.job_timeout = job_timeout
        self.cancel_grace = cancel_grace
        self.preload = preload
        self.cpus_per_actor = cpus_per_actor
        self.front_end = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._slots = [_Slot(i) for i in range(self.size)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ledger = None
        self._cluster: dict[str, dict] = {}  # the ledger's last answer
        self._nodes: dict = {}
        self._tasks: set[asyncio.Task] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self.restarts = 0
        self.retried = 0

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _check_reachable(self.address)
        try:
            ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise SystemExit(f"musicoder-server: error: cannot join the Ray cluster at {self.address}: {err}")
        log.info("joined the Ray cluster at %s as front end %s: %d actor(s) of %g CPU", self.address,
                 self.front_end, self.size, self.cpus_per_actor)
        for slot in self._slots:
            self._start_actor(slot)
        self._spawn(self._report_loop())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_actor(self, slot: _Slot) -> None:
        threads = max(1, int(self.cpus_per_actor))
        actor = ConversionActor.options(
            num_cpus=self.cpus_per_actor, scheduling_strategy="SPREAD", max_restarts=0,
            runtime_env={"env_vars": {var: str(threads) for var in THREAD_VARIABLES}},
        ).remote(self.models, threads, self.preload)
        slot.actor, slot.ready, slot.info, slot.job, slot.stream = actor, False, {}, None, None
        self._spawn(self._await_ready(slot, actor))

    async def _await_ready(self, slot: _Slot, actor) -> None:
        """Waits (as long as the cluster needs to place it) for an actor to start."""
        try:
            info = await actor.ready.remote()
        except RayError as err:
            if slot.actor is not actor or self._closing:
                return
            slot.failures += 1
            delay = min(RESTART_DELAY[0] * 2 ** (slot.failures - 1), RESTART_DELAY[1])
            log.warning("actor %d failed to start (%s); again in %g s", slot.index, _first_line(err), delay)
            await asyncio.sleep(delay)
            if slot.actor is actor and not self._closing:
                self.restarts += 1
                self._start_actor(slot)
            return
        if slot.actor is not actor or self._closing:
            return
        slot.ready, slot.info, slot.failures = True, info, 0
        log.info("actor %d ready on node %s (pid %s), %s", slot.index, info["node_ip"], info["pid"],
                 ", ".join(f"{k} {v:.2f} s" for k, v in info["phases"].items()))
        self._dispatch()

    def _replace(self, slot: _Slot, why: str) -> None:
        """The slot's actor is lost or must go: killed (if it still runs) and started anew."""
        old = slot.actor
        log.warning("actor %d (node %s, pid %s) %s; replacing it", slot.index, slot.info.get("node_ip"),
                    slot.info.get("pid"), why)
        if old is not None:
            try:
                ray.kill(old, no_restart=True)
            except Exception:  # already gone
                pass
        self.restarts += 1
        self._start_actor(slot)

    async def close(self) -> None:
        """Cancel every job, end this front end's actors, leave the cluster."""
        self._closing = True
        while self._pending:
            self._pending.popleft()._finish(JobCancelled())
        for slot in self._slots:
            if slot.job is not None:
                slot.job._finish(JobCancelled())
            if slot.actor is not None:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except Exception:
                    pass
        for task in list(self._tasks):
            task.cancel()
        if self._ledger is not None:
            try:
                await asyncio.wait_for(self._ledger.forget.remote(self.front_end), timeout=2)
            except Exception:
                pass
        if ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)

    # ---- jobs ---------------------------------------------------------------------------

    def _running(self) -> list[JobHandle]:
        return [slot.job for slot in self._slots if slot.job is not None]

    def _has_free(self) -> bool:
        return any(slot.ready and slot.job is None for slot in self._slots)

    def _fits(self, job: JobHandle) -> bool:
        """Always: each actor converts one job at a time in its own node's memory, so
        the local rule of max_running_seconds (audio summed over one machine) is moot;
        a window is at most max_window_seconds."""
        return True

    def _queue_full(self) -> bool:
        """Busy when this front end's queue is full, or the cluster's (every live front
        end's waiting jobs, as last reported, this one's counted now)."""
        others = sum(r.get("queued", 0) for fe, r in self._cluster.items() if fe != self.front_end)
        return len(self._pending) >= self.max_queue or others + len(self._pending) >= self.max_queue

    def _dispatch(self) -> None:
        if self._closing:
            return
        for slot in self._slots:
            if self._pending and slot.ready and slot.job is None and self._fits(self._pending[0]):
                job = self._pending.popleft()
                self._disarm(job)
                slot.job = job
                job.started = time.monotonic()
                job.position, job.eta = 0, self.expected_seconds(job.spec.quality)
                job.events.put_nowait(Started(eta=job.eta))
                self._spawn(self._run(slot, job))

    def _disarm(self, job: JobHandle) -> None:
        timer = self._timers.pop(job.id, None)
        if timer is not None:
            timer.cancel()

    async def _run(self, slot: _Slot, job: JobHandle) -> None:
        """One job on one actor: its samples into the object store, its stream forwarded."""
        spec = job.spec
        lost = None
        try:
            try:  # off the loop: a 60 s window is 10 MB to read and to copy into the object store
                samples, exemplar = await asyncio.to_thread(_put_samples, spec)
            except FileNotFoundError:  # its session ended, and deleted it, before the job started
                job._finish(JobCancelled())
                return
            if job.cancel_requested:
                job._finish(JobCancelled())
                return
            stream = slot.actor.convert.options(num_returns="streaming").remote(spec, samples, exemplar)
            slot.stream = stream
            async with asyncio.timeout(self.job_timeout):
                async for ref in stream:
                    item = await ref
                    if item[0] == "progress":
                        job.events.put_nowait(self._progress(job, item[1], item[2]))
                    else:
                        self._conclude(job, *item)
            if not job.done:  # the stream ended with no final item
                lost = "ended its job with no result"
        except TaskCancelledError:
            job._finish(JobCancelled())
        except TimeoutError:
            self.failed += 1
            job._finish(Failed(code="worker_failed", message=f"The conversion ran past the server's "
                                                            f"{self.job_timeout:g} s limit; please try again."))
            lost = f"ran past the {self.job_timeout:g} s limit"
        except RayError as err:
            if job.cancel_requested:  # killed after cancel_grace
                job._finish(JobCancelled())
            lost = _first_line(err)
            if not job.done:
                self._lost(job, lost)
        except asyncio.CancelledError:  # the pool is closing
            job._finish(JobCancelled())
            raise
        finally:
            self._disarm(job)
            if slot.job is job:
                slot.job, slot.stream = None, None
                if lost is not None and not self._closing:
                    self._replace(slot, lost)
            self._dispatch()
            self._announce_positions()

    def _lost(self, job: JobHandle, why: str) -> None:
        """A job whose actor was lost: retried once, at the head of the queue; after a
        second loss, or RETRY_WAIT s without an actor, worker_failed."""
        job.losses += 1
        if job.losses > 1 or self._closing:
            self.failed += 1
            job._finish(Failed(code="worker_failed", message="The worker running this conversion stopped "
                                                             f"({why}); please try again."))
            return
        self.retried += 1
        log.warning("job %d lost its actor (%s): retrying it on another", job.id, why)
        job.started = None
        self._pending.appendleft(job)
        self._timers[job.id] = self._loop.call_later(RETRY_WAIT, self._give_up, job)

    def _give_up(self, job: JobHandle) -> None:
        self._timers.pop(job.id, None)
        if job in self._pending:
            self._pending.remove(job)
            self.failed += 1
            job._finish(Failed(code="worker_failed", message="The worker running this conversion stopped and no "
                                                             "other was free to retry it; please try again."))
            self._announce_positions()

    def _cancel(self, handle: JobHandle) -> None:
        if self._cancel_pending(handle):
            self._disarm(handle)
            return
        for slot in self._slots:
            if slot.job is handle:
                if slot.stream is not None:
                    ray.cancel(slot.stream)
                self._timers[handle.id] = self._loop.call_later(self.cancel_grace, self._kill_stuck, slot, handle)
                return

    def _kill_stuck(self, slot: _Slot, job: JobHandle) -> None:
        """A cancelled job still running after cancel_grace: its actor is killed."""
        self._timers.pop(job.id, None)
        if slot.job is job:
            log.warning("job %d did not stop after cancel", job.id)
            if slot.actor is not None:
                ray.kill(slot.actor, no_restart=True)  # its stream fails: _run replaces the actor

    # ---- the cluster's view -------------------------------------------------------------

    def _report(self) -> dict:
        return {"actors": [slot.describe() for slot in self._slots], "running": len(self._running()),
                "queued": len(self._pending), "queue_limit": self.max_queue}

    async def _report_loop(self) -> None:
        while not self._closing:
            try:
                if self._ledger is None:
                    self._ledger = Ledger.options(name=LEDGER_NAME, lifetime="detached", get_if_exists=True,
                                                  num_cpus=0, max_restarts=-1).remote()
                self._cluster = await asyncio.wait_for(self._ledger.report.remote(self.front_end, self._report()),
                                                       timeout=5)
                self._nodes = await asyncio.to_thread(_node_summary)
            except (RayError, TimeoutError, ValueError) as err:
                log.warning("cannot reach the cluster's ledger: %s", _first_line(err))
                self._ledger = None  # made or found again next time
            await asyncio.sleep(REPORT_INTERVAL)

    def stats(self) -> dict:
        cluster = dict(self._cluster)
        cluster[self.front_end] = self._report()  # this front end's, as of now
        actors = [a for r in cluster.values() for a in r["actors"]]
        return {
            "backend": "ray",
            "ray_address": self.address,
            "front_end": self.front_end,
            "workers": self.size,
            "workers_ready": sum(slot.ready for slot in self._slots),
            **self.queue_stats(),
            "restarts": self.restarts,
            "retried": self.retried,
            "actors": [slot.describe() for slot in self._slots],
            "cluster": {
                "front_ends": len(cluster),
                "actors": len(actors),
                "actors_ready": sum(a["ready"] for a in actors),
                "actors_busy": sum(a["busy"] for a in actors),
                "running": sum(r["running"] for r in cluster.values()),
                "queued": sum(r["queued"] for r in cluster.values()),
                "queue_limit": self.max_queue,
                **self._nodes,
            },
        }


def _put_samples(spec):
    """The job's window and exemplar (or None) from their files into the object store."""
    window, exemplar = read_samples(spec)
    return ray.put(window), None if exemplar is None else ray.put(exemplar)


def _check_reachable(address: str) -> None:
    """A host:port that does not answer is told at once (ray.init would retry for
    minutes); ``auto`` and ``ray://`` addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as err:
        raise SystemExit(f"musicoder-server: error: no Ray cluster answers at {address}: {err.strerror or err}")


def _node_summary() -> dict:
    """The cluster's live nodes and CPUs, total and free (Ray's own figures)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"nodes_alive": len(nodes), "cpus": ray.cluster_resources().get("CPU", 0.0),
            "cpus_free": ray.available_resources().get("CPU", 0.0)}


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__
