"""Conversions on a Ray cluster: :class:`RayPool`, the server's ``WorkerPool`` over the
Ray Serve deployment of ``ray_deployment`` that every front end of the service shares.

``musicoder-server --ray ADDRESS`` uses it instead of the local worker processes; only
then is Ray imported. Sessions, limits, cleanup and the protocol do not change.

- **The deployment.** At start the front end joins the cluster and takes a handle to the
  Serve application ``--ray-app`` (default ``musicoder``), deploying it first when the
  cluster has none, with this front end's ``--ray-min-replicas``, ``--ray-max-replicas``
  (0: the cluster's CPUs at that moment, over ``--ray-actor-cpus``) and
  ``--ray-target-ongoing``. Serve places, scales, health-checks and restarts the
  replicas; the front ends own none of them, so any number of front ends share them all.
- **Jobs.** A job's window (and a user's exemplar) go to a replica as the request's
  arguments (Ray's object store); its items come back as a streaming response: the
  replica's ``started``, the progress messages and the result, forwarded as pool events.
  Cancel (or a disconnect) cancels the request; a job still running ``cancel_grace`` s
  later has its replica killed (Serve starts another).
- **Long songs over many replicas.** A job of more than a minute of audio is cut into
  as many parts as the deployment may run replicas (:func:`part_count`), each whole
  blocks of the engine's (``musicoder.engine.part_blocks``). The song goes to the object
  store once; every part's request takes its reference, renders its blocks (the
  texture's plan made from the whole song, so each part is exactly those blocks of one
  pass) and streams its progress (the job's is the parts' mean); the parts' samples stay
  in the object store (their references come back) and go, joined in order, to one
  replica that finishes the song as one replica would (the level over the whole song,
  the encoding, the spectrogram, streamed: ``musicoder.convert.finish_stream``). A part whose replica is
  gone before the finish took its samples is lost with it: the finish's one retry then
  fails too (``worker_failed``).
  The result is the one-replica result to float rounding; Cancel cancels every part;
  a part that fails ends the job and cancels the others.
- **No job waits for ever.** Serve's backpressure (``max_queued_requests``: ``--queue``
  per front end) answers ``busy`` at once; a job that no replica starts within
  ``queue_timeout`` s ends with ``busy`` too; one running past its time limit
  (``job_timeout`` per minute of audio) ends with ``worker_failed``. A replica lost
  mid-job gets its request (the job, or one part of a long song, or its finish) retried
  once (on any replica), else ``worker_failed``.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import os
import socket
import time

import ray
from ray import serve
from ray.exceptions import RayError, TaskCancelledError
from ray.serve.context import _get_global_client
from ray.serve.exceptions import BackPressureError, RayServeException
from ray.serve.schema import ServeInstanceDetails

from . import ray_deployment
from .pool import Failed, JobCancelled, JobHandle, QueueingPool, Started, is_long
from .worker import read_samples

log = logging.getLogger("musicoder.server.ray")

NAMESPACE = "musicoder"
STATUS_INTERVAL = 1.0  # seconds between looks at the deployment's replicas
LIVE_REPLICAS = ("RUNNING",)
STARTING_REPLICAS = ("STARTING", "UPDATING", "RECOVERING")
PART_SECONDS = 30.0  # of audio: the least a part of a long song is given


def resolve_address(address: str) -> str:
    """``auto`` is RAY_ADDRESS where set (else Ray's own auto-detection); else as given."""
    if address == "auto":
        return os.environ.get("RAY_ADDRESS") or "auto"
    return address


def busy_message(seconds: float) -> str:
    """What a job that no replica started within ``seconds`` is told."""
    return (f"No converter was free within {seconds:g} s: the service is at capacity; please try again shortly "
            f"or on another server.")


def part_count(seconds: float, replicas: int) -> int:
    """Parts a job of ``seconds`` of audio is cut into: 1 up to a minute (``pool.is_long``),
    else one per replica the deployment may run, at most one per PART_SECONDS (a part
    repeats the song's whole-song plan pass, and a replica's start-up is not free)."""
    if not is_long(seconds):
        return 1
    return max(1, min(int(replicas), math.ceil(seconds / PART_SECONDS)))


def merge_timings(parts: list[dict[str, float]]) -> dict[str, float]:
    """The seconds per stage of parts that ran at once: each stage's longest."""
    return {stage: max(t.get(stage, 0.0) for t in parts) for stage in dict.fromkeys(k for t in parts for k in t)}


def default_max_replicas(cluster_cpus: float, cpus_per_replica: float) -> int:
    """Replicas the cluster's CPUs hold (at least one): the default ceiling of autoscaling."""
    return max(1, int(cluster_cpus // max(cpus_per_replica, 1e-9)))


class RayPool(QueueingPool):
    """Jobs sent to the shared Serve deployment at ``address``; the interface of
    ``pool.WorkerPool``. Its queue is this front end's requests that no replica has
    started yet."""

    def __init__(self, address: str, queue: int = 32, models: str = "models", job_timeout: float = 300.0,
                 cancel_grace: float = 10.0, preload: bool = True, max_running_seconds: float = 30.0,
                 expected: dict[str, float] | None = None, cpus_per_actor: float = 1.0, min_replicas: int = 1,
                 max_replicas: int = 0, target_ongoing: float = 1.0, queue_timeout: float = 60.0,
                 app_name: str = ray_deployment.APP_NAME):
        super().__init__(queue, expected, max_running_seconds)
        self.address = resolve_address(address)
        self.job_timeout = job_timeout
        self.cancel_grace = cancel_grace
        self.queue_timeout = queue_timeout
        self.app_name = app_name
        self.options = ray_deployment.Options(models=models, min_replicas=max(1, min_replicas),
                                              max_replicas=max_replicas, target_ongoing=target_ongoing,
                                              cpus=cpus_per_actor, queue=queue, preload=preload)
        self._handle = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: dict[int, JobHandle] = {}  # job id -> job a replica runs
        self._tasks: dict[int, asyncio.Task] = {}  # job id -> its _run
        self._responses: dict[int, dict] = {}  # job id -> its streaming responses, by request
        self._where: dict[int, dict] = {}  # job id -> its replicas (pid, node, actor name), by request
        self._parts: dict[int, dict] = {}  # job id -> (stage, fraction) of each part of a long song
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._status: dict = {}
        self._nodes: dict = {}
        self._watcher: asyncio.Task | None = None
        self.retried = 0
        self.deployed = False  # by this front end

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _check_reachable(self.address)
        try:
            ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False,
                     logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise SystemExit(f"musicoder-server: error: cannot join the Ray cluster at {self.address}: {err}")
        self._handle = await asyncio.to_thread(self._join)
        self._status = await asyncio.to_thread(self._read_status)
        self._watcher = asyncio.ensure_future(self._watch())

    def _join(self):
        """The application's streaming handle, deploying it first where the cluster has none."""
        serve.start(proxy_location="Disabled")  # handles only; an existing Serve instance keeps its own
        if self.app_name not in serve.status().applications:
            options = self.options
            if options.max_replicas <= 0:
                cpus = ray.cluster_resources().get("CPU", 0.0)
                options = dataclasses.replace(options, max_replicas=default_max_replicas(cpus, options.cpus))
            log.info("deploying the Serve application %s: %d to %d replica(s) of %g CPU, %g request(s) each",
                     self.app_name, options.min_replicas, options.max_replicas, options.cpus, options.target_ongoing)
            serve._run(ray_deployment.application(options), _blocking=False, name=self.app_name, route_prefix=None)
            self.options, self.deployed = options, True
        else:
            log.info("using the Serve application %s already on the cluster", self.app_name)
        log.info("joined the Ray cluster at %s", self.address)
        return serve.get_app_handle(self.app_name).options(stream=True)

    async def close(self) -> None:
        """Cancel every job of this front end and leave the cluster (the deployment stays:
        the other front ends use it)."""
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
        jobs = [*self._pending, *self._started.values()]
        for job in jobs:
            job._finish(JobCancelled())
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if ray.is_initialized():
            await asyncio.to_thread(ray.shutdown)

    # ---- jobs ---------------------------------------------------------------------------

    def _running(self) -> list[JobHandle]:
        return list(self._started.values())

    def _has_free(self) -> bool:
        """Never known here: Serve places the jobs."""
        return False

    def _queue_full(self) -> bool:
        """Never here: Serve's backpressure is the admission (a ``busy`` job event)."""
        return False

    def _fits(self, job: JobHandle) -> bool:
        """Always: each replica converts one job at a time in its own node's memory."""
        return True

    def _dispatch(self) -> None:
        """Every waiting job is a request to the deployment already: send the new ones."""
        if self._closing:
            return
        for job in self._pending:
            if job.id not in self._tasks:
                task = asyncio.ensure_future(self._run(job))
                self._tasks[job.id] = task
                task.add_done_callback(lambda _, i=job.id: self._tasks.pop(i, None))

    async def _run(self, job: JobHandle) -> None:
        """One job: its samples read, sent, and its streams forwarded (one request, or a
        long song's parts and their finish); a lost replica's request retried once."""
        try:
            try:  # off the loop: a 60 s window is 10 MB to read
                samples, exemplar = await asyncio.to_thread(read_samples, job.spec)
            except FileNotFoundError:  # its session ended, and deleted it, before the job started
                job._finish(JobCancelled())
                return
            parts = part_count(job.seconds, self._status.get("autoscaling", {}).get("max_replicas") or 1)
            if parts > 1:
                await self._run_parts(job, samples, exemplar, parts)
                return
            item = await self._retried(job, 0, "convert", (job.spec, samples, exemplar), requeue=True)
            if item is not None:
                self._conclude(job, *item)
        except asyncio.CancelledError:  # cancelled while waiting, or the pool is closing
            job._finish(JobCancelled())
        except Exception as err:  # a bug here must not leave the client waiting for ever
            log.exception("job %d: internal error", job.id)
            self._fail(job, Failed(code="internal", message=f"The server failed running this conversion "
                                                            f"({_first_line(err)}); please try again."))
        finally:
            self._forget(job)
            self._announce_positions()

    async def _run_parts(self, job: JobHandle, samples, exemplar, parts: int) -> None:
        """A long song as ``parts`` parts rendered on as many replicas at once (the song put
        in the object store once, every part given its reference), then joined in order
        and finished on one replica. The job's progress is the parts' mean; when one part
        ends the job (failed, cancelled) the others are cancelled."""
        log.info("job %d: %.0f s of audio in %d parts", job.id, job.seconds, parts)
        ref = await asyncio.to_thread(ray.put, samples)
        del samples
        self._parts[job.id] = {k: ("analysing", 0.0) for k in range(parts)}
        tasks = [asyncio.ensure_future(self._part(job, ref, exemplar, k, parts)) for k in range(parts)]
        try:
            waiting = set(tasks)
            while waiting and not job.done:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:  # a bug: the job ends at once (internal), its siblings too
                        raise task.exception()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        if job.done:
            return
        results = [task.result() for task in tasks]
        del ref
        self._parts.pop(job.id, None)
        item = await self._retried(job, "finish", "finish",
                                   (job.spec, [r[0] for r in results], merge_timings([r[1] for r in results])))
        if item is not None:
            self._conclude(job, *item)

    async def _part(self, job: JobHandle, ref, exemplar, part: int, parts: int):
        """Part ``part`` of ``parts``: (the reference of its (channels, m) float32 samples,
        timings), or None when the job ended."""
        item = await self._retried(job, part, "render_part", (job.spec, ref, exemplar, part, parts))
        if item is None or job.done:
            return None
        if item[0] != "done":
            self._conclude(job, *item)
            return None
        return item[1]

    async def _retried(self, job: JobHandle, key, method: str, args: tuple, requeue: bool = False):
        """The final item of the request ``method(*args)`` (``key`` names it among the job's
        requests), retried once after a lost replica (``requeue``: the job waits in the
        queue again meanwhile); None when the job ended otherwise."""
        for attempt in (0, 1):
            lost = await self._request(job, key, method, args)
            if not isinstance(lost, str) or job.done:
                return lost
            job.losses += 1
            if attempt == 1 or self._closing:
                self._fail(job, Failed(code="worker_failed", message=f"The converter running this conversion "
                                                                     f"stopped ({lost}); please try again."))
                return None
            self.retried += 1
            log.warning("job %d lost its replica (%s): retrying its request %s", job.id, lost, key)
            if requeue:
                self._started.pop(job.id, None)
                job.started = None
                self._pending.appendleft(job)
                self._announce_positions()
        return None

    def _forget(self, job: JobHandle) -> None:
        if job in self._pending:
            self._pending.remove(job)
        self._started.pop(job.id, None)
        self._where.pop(job.id, None)
        self._parts.pop(job.id, None)
        for response in self._responses.pop(job.id, {}).values():
            if not job.done:
                response.cancel()
        timer = self._timers.pop(job.id, None)
        if timer is not None:
            timer.cancel()

    async def _request(self, job: JobHandle, key, method: str, args: tuple):
        """One request of ``job``: its final item (``("done", ...)``, ``("cancelled",)``,
        ``("failed", code, message)``), a str saying why its replica was lost, or None
        when the job ended here (busy, timed out, cancelled, no service)."""
        response = getattr(self._handle, method).remote(*args)
        self._responses.setdefault(job.id, {})[key] = response
        stream = response.__aiter__()
        try:
            try:
                # a job not started yet is busy when no replica takes it in queue_timeout; a part of
                # one already running waits for a replica as long as the job may run
                first = await asyncio.wait_for(anext(stream), self.queue_timeout if job.started is None
                                               else self.time_limit(job))
            except TimeoutError:
                if job.started is not None:
                    raise
                response.cancel()
                self._fail(job, Failed(code="busy", message=busy_message(self.queue_timeout)))
                return None
            self._begin(job, key, first[1])
            async with asyncio.timeout(self.time_limit(job)):
                async for item in stream:
                    if item[0] == "progress":
                        self._on_progress(job, key, item[1], item[2])
                    else:
                        return item
            return "it ended the job with no result"
        except BackPressureError:
            self._fail(job, Failed(code="busy", message=f"The service is at capacity: {self.max_queue} conversion(s) "
                                                        f"already wait for a converter here; please try again shortly "
                                                        f"or on another server."))
        except TimeoutError:
            response.cancel()
            self._fail(job, Failed(code="worker_failed",
                                   message=f"The conversion ran past the server's {self.time_limit(job):g} s limit; "
                                           f"please try again."))
        except TaskCancelledError:  # Serve's RequestCancelledError among them
            job._finish(JobCancelled())
        except RayError as err:
            if job.cancel_requested:  # its replica killed after cancel_grace
                job._finish(JobCancelled())
                return None
            return _first_line(err)
        except asyncio.CancelledError:  # Cancel before a replica took it, the pool closing, a sibling part's end
            response.cancel()
            raise
        except RayServeException as err:  # the application is gone or failed to deploy
            self._fail(job, Failed(code="worker_failed", message=f"The conversion service is unavailable "
                                                                 f"({_first_line(err)}); please try again."))
        finally:
            self._responses.get(job.id, {}).pop(key, None)
            self._where.get(job.id, {}).pop(key, None)
        return None

    def _fail(self, job: JobHandle, failure: Failed) -> None:
        """End ``job`` with ``failure``, counted once (a long song's parts may fail together)."""
        if not job.done:
            self.failed += 1
            job._finish(failure)

    def _on_progress(self, job: JobHandle, key, stage: str, fraction: float) -> None:
        """A request's progress as the job's: a part's is averaged with its siblings' (the
        stage the least advanced one's)."""
        parts = self._parts.get(job.id)
        if parts is not None and key in parts:
            parts[key] = (stage, fraction)
            stage = min(parts.values(), key=lambda p: p[1])[0]
            fraction = sum(f for _, f in parts.values()) / len(parts)
        job.events.put_nowait(self._progress(job, stage, fraction))

    def _begin(self, job: JobHandle, key, where: dict) -> None:
        """A replica took a request of ``job``: the first one takes the job out of the queue."""
        self._where.setdefault(job.id, {})[key] = where
        if job.id in self._started:
            return
        if job in self._pending:
            self._pending.remove(job)
        self._started[job.id] = job
        job.started = time.monotonic()
        job.position, job.eta = 0, self.job_seconds(job)
        job.events.put_nowait(Started(eta=job.eta))
        self._announce_positions()

    def _cancel(self, handle: JobHandle) -> None:
        task = self._tasks.get(handle.id)
        if handle.id not in self._started:  # waiting: the request is withdrawn
            if task is not None:
                task.cancel()
            self._cancel_pending(handle)
            return
        for response in list(self._responses.get(handle.id, {}).values()):
            response.cancel()
        self._timers[handle.id] = self._loop.call_later(self.cancel_grace, self._kill_stuck, handle)

    def _kill_stuck(self, job: JobHandle) -> None:
        """A cancelled job still running after cancel_grace: its replicas are killed (Serve
        starts others) and the job ends."""
        self._timers.pop(job.id, None)
        wheres = list(self._where.get(job.id, {}).values())
        if job.done or not wheres:
            return
        for where in wheres:
            log.warning("job %d did not stop after cancel: killing its replica %s", job.id, where.get("actor"))
            try:
                ray.kill(ray.get_actor(where["actor"], namespace="serve"), no_restart=False)
            except (ValueError, RayError) as err:
                log.warning("could not kill replica %s: %s", where.get("actor"), _first_line(err))
        job._finish(JobCancelled())
        task = self._tasks.get(job.id)
        if task is not None:
            task.cancel()

    # ---- the deployment's view ----------------------------------------------------------

    def _read_status(self) -> dict:
        """The application's status, its deployment's replicas by state and its autoscaling
        as deployed (whoever deployed it): Serve's own details."""
        details = ServeInstanceDetails(**_get_global_client().get_serve_details())
        app = details.applications.get(self.app_name)
        dep = app.deployments.get(ray_deployment.DEPLOYMENT_NAME) if app is not None else None
        if dep is None:
            return {"status": "NOT_DEPLOYED", "replicas": {}, "autoscaling": {}}
        states = collections.Counter(str(getattr(r.state, "value", r.state)) for r in dep.replicas)
        return {"status": str(getattr(app.status, "value", app.status)), "replicas": dict(states),
                "message": (dep.message or app.message)[:300],
                "autoscaling": dep.deployment_config.autoscaling_config or {}}

    async def _watch(self) -> None:
        while not self._closing:
            try:
                self._status = await asyncio.to_thread(self._read_status)
                self._nodes = await asyncio.to_thread(_node_summary)
            except Exception as err:  # the controller restarting: keep the last view
                log.warning("cannot read the deployment's status: %s", _first_line(err))
            await asyncio.sleep(STATUS_INTERVAL)

    def stats(self) -> dict:
        replicas = self._status.get("replicas", {})
        running = sum(replicas.get(s, 0) for s in LIVE_REPLICAS)
        scaling = self._status.get("autoscaling", {})
        return {
            "backend": "ray",
            "ray_address": self.address,
            # ready (app.is_ready) while one replica runs: a replica being replaced, or one
            # autoscaling cannot place, takes no front end out of its balancer
            "workers": 1,
            "workers_ready": running,
            **self.queue_stats(),
            "retried": self.retried,
            "deployment": {
                "app": self.app_name,
                "status": self._status.get("status"),
                "message": self._status.get("message", ""),
                "deployed_here": self.deployed,
                "replicas_running": running,
                "replicas_starting": sum(replicas.get(s, 0) for s in STARTING_REPLICAS),
                # as deployed, by this front end or another (or a Serve config)
                "min_replicas": scaling.get("min_replicas"),
                "max_replicas": scaling.get("max_replicas"),
                "target_ongoing": scaling.get("target_ongoing_requests"),
                # this front end's requests: on a replica, and waiting for one
                "ongoing": len(self._started),
                "queued": len(self._pending),
                "queue_timeout": self.queue_timeout,
            },
            "jobs": [{"job": job_id, "part": key, **{k: w.get(k) for k in ("pid", "actor")},
                      "node_id": (w.get("node_id") or "")[:12] or None}
                     for job_id, wheres in self._where.items() for key, w in wheres.items()],
            "cluster": dict(self._nodes),
        }


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
