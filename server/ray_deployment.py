"""The conversions as a Ray Serve deployment, shared by every front end of a service.

:class:`Conversions` is one replica: a ``worker.Converter`` (engine and textures loaded
once) converting one job at a time (``max_ongoing_requests`` 1), its ``convert`` a
streaming response. A long song is cut into parts that several replicas render at once
(:meth:`Conversions.render_part`) and one replica joins and finishes
(:meth:`Conversions.finish`): ``server.ray_pool`` says when and how. :func:`application` binds it with its options; front ends deploy it
when the cluster has none (``server.ray_pool``), or a Serve config deploys it through
:func:`app` (``serve deploy``, KubeRay's RayService: deploy/README.md).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import gc
import os
import threading
import time
import traceback

import numpy as np
import ray
from ray import serve

from .worker import PROGRESS_INTERVAL, Converter, failure_message, trim_heap, tune_malloc

APP_NAME = "musicoder"
DEPLOYMENT_NAME = "Conversions"
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# seconds an autoscaling decision waits: up soon (a conversion takes seconds), down slowly
UPSCALE_DELAY = 2.0
DOWNSCALE_DELAY = 120.0


@dataclasses.dataclass(frozen=True)
class Options:
    """The deployment's shape: ``min_replicas``..``max_replicas`` replicas, scaled for
    ``target_ongoing`` requests each (a replica runs one at a time: above 1 the
    autoscaler counts queued requests as load it tolerates); each replica reserves
    ``cpus`` CPUs and runs that many compute threads; up to ``queue`` requests wait per
    front end before Serve answers the next with backpressure."""

    models: str = "models"
    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing: float = 1.0
    cpus: float = 1.0
    queue: int = 32
    preload: bool = True


class Conversions:
    """One replica: a Converter loaded once, one job at a time, the job's engine in a
    thread so that the replica's event loop stays free to stream progress and to take
    the cancellation."""

    def __init__(self, models: str, threads: int, preload: bool):
        t0 = time.monotonic()
        tune_malloc()
        self.converter = Converter(models, threads)
        self.info = self.converter.start(preload, {"imports": time.monotonic() - t0})
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
        gc.freeze()  # what start-up made lives for ever: no collection walks it again

    def where(self) -> dict:
        """This replica: its process, node and actor name (for a kill after cancel_grace)."""
        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node_id": ctx.get_node_id(), "actor": ctx.get_actor_name()}

    async def convert(self, spec, samples: np.ndarray, exemplar: np.ndarray | None):
        """Streams ``("started", where)``, ``("progress", stage, fraction)`` items, then one
        final ``("done", JobOutput)``, ``("cancelled",)`` or ``("failed", code, message)``."""
        c = self.converter

        def work(progress, cancelled):
            # the object store's arrays are read-only: the engine gets its own copies
            return c.convert(spec, np.array(samples), None if exemplar is None else np.array(exemplar),
                             progress, cancelled)

        async for item in self._stream(work):
            yield item

    async def render_part(self, spec, samples: np.ndarray, exemplar: np.ndarray | None, part: int, parts: int):
        """Part ``part`` of ``parts`` of a long song (``engine.part_blocks``: whole blocks),
        rendered before any level is set. ``samples`` is the whole song ((channels, n) or
        (n,) float32, put in the object store once for all parts): the texture's plan is
        made from all of it, so the part is exactly those blocks of one pass. Streams as
        :meth:`convert`, its ``done`` carrying (the reference of its (channels, m) float32
        samples in the object store, owned by this replica, timings)."""
        c = self.converter
        if isinstance(samples, ray.ObjectRef):  # Serve passed the reference through: fetched once here
            samples = await samples

        def work(progress, cancelled):
            out, timings = c.render_part(spec, samples, None if exemplar is None else np.array(exemplar),
                                         part, parts, progress, cancelled)
            # by reference: the part goes from this node to the finishing replica's, not through the front end
            return ray.put(out), timings

        async for item in self._stream(work):
            yield item

    async def finish(self, spec, parts: list, timings: dict[str, float]):
        """The parts of a long song :meth:`render_part` rendered (their references), joined in
        order and finished as one replica's whole song is (``Converter.finish_parts``,
        streamed: the level over the whole song, the encoding, the spectrogram, the peaks).
        Streams as :meth:`convert`."""
        c = self.converter
        parts = await asyncio.gather(*parts)  # the parts' references, fetched from their nodes

        def work(progress, cancelled):
            return c.finish_parts(spec, parts, timings, progress, cancelled)

        async for item in self._stream(work):
            yield item

    async def _stream(self, work):
        """``work(progress, should_cancel)`` run in the job thread, streamed: ``("started",
        where)``, its ``("progress", stage, fraction)`` (at most every PROGRESS_INTERVAL s,
        and at each new stage), then ``("done", its result)``, ``("cancelled",)`` or
        ``("failed", code, message)``."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        c = self.converter
        yield ("started", self.where())

        def run() -> None:
            def report(*item) -> None:
                loop.call_soon_threadsafe(items.put_nowait, item)

            last = [0.0, ""]

            def progress(stage: str, fraction: float) -> None:
                now = time.monotonic()
                if stage != last[1] or now - last[0] >= PROGRESS_INTERVAL:
                    last[0], last[1] = now, stage
                    report("progress", stage, min(max(float(fraction), 0.0), 1.0))

            try:
                report("done", work(progress, cancel.is_set))
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
        finally:  # ended, or cancelled (the caller's cancel or disconnect): the engine stops at its next check
            cancel.set()
            await asyncio.wait([job])


def application(options: Options):
    """The Serve application of ``options``: the Conversions deployment, bound."""
    threads = max(1, int(options.cpus))
    deployment = serve.deployment(
        Conversions, name=DEPLOYMENT_NAME,
        ray_actor_options={"num_cpus": options.cpus,
                           "runtime_env": {"env_vars": {var: str(threads) for var in THREAD_VARIABLES}}},
        max_ongoing_requests=1, max_queued_requests=options.queue,
        autoscaling_config={"min_replicas": options.min_replicas, "initial_replicas": options.min_replicas,
                            "max_replicas": max(options.max_replicas, options.min_replicas),
                            "target_ongoing_requests": options.target_ongoing,
                            "upscale_delay_s": UPSCALE_DELAY, "downscale_delay_s": DOWNSCALE_DELAY},
        health_check_period_s=5.0, health_check_timeout_s=30.0)
    return deployment.bind(options.models, threads, options.preload)


def app(args: dict):
    """The application builder for a Serve config (``import_path: server.ray_deployment:app``),
    its ``args`` the fields of :class:`Options`."""
    fields = {f.name: f.type for f in dataclasses.fields(Options)}
    unknown = set(args) - set(fields)
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}: use {', '.join(fields)}")
    defaults = Options()
    return application(dataclasses.replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in args.items()}))
