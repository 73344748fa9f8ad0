"""The server process: websockets' asyncio server, one Session per connection, the
worker pool, GET /healthz on the same port, the sweeper of leftover files, and a
graceful stop on SIGTERM / SIGINT.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import http
import importlib
import json
import logging
import os
import resource
import shutil
import signal
import sys
import threading
import time

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

import protocol
from musicoder import audio, reconstruct

from . import __version__, access
from .config import Settings
from .pool import ProcessPool, WorkerPool
from .session import Session

log = logging.getLogger("musicoder.server")

# the biggest frame websockets accepts; protocol limits inside it give error frames
MAX_FRAME_BYTES = 2 * protocol.frames.MAX_CHUNK_BYTES
# niceness of the decoder threads and their ffmpeg processes, as the workers' (pool.py): the
# event loop's thread, at 0, answers pings first
DECODE_NICE = 5
# frames read ahead per connection before reading pauses (websockets' default is 16): with
# 200 clients uploading at once, what waits in memory stays a few chunks each
MAX_QUEUED_FRAMES = 4


def rss(pid: int | str = "self") -> tuple[int, int]:
    """(current, peak) resident set size in bytes of a process, 0 if unreadable."""
    cur = peak = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return cur, peak


def lower_thread_priority(nice: int) -> None:
    """Run the calling thread, and the processes it starts (ffmpeg), at ``nice``. Linux
    keeps a nice value per thread and a child inherits its thread's: the event loop's
    own thread keeps its priority. Elsewhere, or not allowed: nothing."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def is_ready(stats: dict, stopping: bool) -> bool:
    """Ready to convert at full speed: every worker slot's process has started and loaded
    the models (a worker being replaced makes it false for that while), and not stopping.
    Connections are served before: their conversions queue until a worker is ready."""
    return not stopping and stats.get("workers_ready", 0) >= stats.get("workers", 1)


def make_pool(settings: Settings) -> WorkerPool:
    """The local worker processes, or with ``ray`` set, the replicas of the Serve
    deployment on that Ray cluster (only then is Ray imported)."""
    common = dict(workers=settings.workers, queue=settings.queue, models=settings.models,
                  job_timeout=settings.job_timeout, cancel_grace=settings.cancel_grace,
                  preload=bool(settings.preload), max_running_seconds=settings.max_running_seconds)
    if settings.ray:
        try:
            from .ray_pool import RayPool
        except ImportError as err:
            raise SystemExit(f"musicoder-server: error: --ray needs Ray: pip install '.[ray]' ({err})")
        del common["workers"]  # Serve's autoscaling sizes the shared deployment
        return RayPool(settings.ray, cpus_per_actor=settings.ray_actor_cpus, min_replicas=settings.ray_min_replicas,
                       max_replicas=settings.ray_max_replicas, target_ongoing=settings.ray_target_ongoing,
                       queue_timeout=settings.queue_timeout, app_name=settings.ray_app, **common)
    return ProcessPool(processes=settings.processes, **common)


class App:
    """What all sessions share: settings, the pool, the texture catalogue, the registry.
    It is the ``session.Services`` each Session is given (app imports session, never the
    reverse)."""

    def __init__(self, settings: Settings, pool: WorkerPool | None = None):
        self.settings = settings
        self.models = importlib.import_module(settings.models)
        self.pool = pool or make_pool(settings)
        self.sessions: dict[str, Session] = {}
        self.shutting_down = False
        self.started = time.monotonic()
        self.limits = audio.Limits(max_bytes=settings.max_upload_bytes, max_track_seconds=settings.max_track_seconds,
                                   max_window_seconds=settings.max_window)
        self._decoder = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode",
                                                              initializer=lower_thread_priority,
                                                              initargs=(DECODE_NICE,))
        self._exemplars: dict[str, tuple[str, bytes]] = {}
        self.gate = access.Gate(settings)
        self.server = None

    # ---- shared services ----------------------------------------------------------------

    def welcome(self, re: int, session_id: str) -> protocol.Welcome:
        s = self.settings
        return protocol.Welcome(
            re=re, version=protocol.PROTOCOL_VERSION, server=f"musicoder-server {__version__}", session=session_id,
            limits={"upload_bytes": s.max_upload_bytes, "track_seconds": s.max_track_seconds,
                    "window_seconds": s.max_window, "message_bytes": protocol.MAX_TEXT_BYTES,
                    "chunk_bytes": protocol.frames.MAX_CHUNK_BYTES, "idle_seconds": s.idle_timeout,
                    "jobs_per_session": s.jobs_per_session, "queue": s.queue,
                    "exemplar_min_seconds": audio.EXEMPLAR_MIN_SECONDS,
                    "exemplar_max_seconds": audio.EXEMPLAR_MAX_SECONDS,
                    "exemplar_file_seconds": audio.EXEMPLAR_MAX_FILE_SECONDS},
            textures=[{"name": t.name, "label": t.label, "description": t.description}
                      for t in self.models.TEXTURES.values()],
            qualities=[{"name": q.name, "label": q.label, "expected_seconds": self.pool.expected_seconds(q.name)}
                       for q in reconstruct.QUALITIES.values()],
            formats=list(audio.OUTPUT_FORMATS), default_window=audio.DEFAULT_WINDOW_SECONDS)

    def texture(self, name: str):
        """The models' Texture called name; InputError("unknown_texture") if none."""
        return self.models.texture(name[:64].lower())

    async def decode(self, path: str, start: float, duration: float, stereo: bool = False) -> audio.Clip:
        """audio.load in a thread: ffmpeg and resampling never block the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoder, functools.partial(audio.load, path, start, duration,
                                                                           limits=self.limits, stereo=stereo))

    async def decode_to_file(self, path: str, folder: str, duration: float) -> audio.DecodedFile:
        """audio.decode_to_file in a thread, within the server's limits."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoder, functools.partial(audio.decode_to_file, path, folder, 0.0,
                                                                           duration, self.limits))

    async def decode_exemplar(self, path: str) -> audio.Clip:
        """audio.load_exemplar in a thread, within the server's limits."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoder, functools.partial(audio.load_exemplar, path, self.limits))

    @staticmethod
    def peaks(samples, columns: int) -> bytes:
        from musicoder.render import waveform_peaks

        return protocol.peaks_to_bytes(waveform_peaks(samples, columns))

    async def exemplar(self, texture) -> tuple[str, bytes]:
        if texture.name not in self._exemplars:
            path = texture.exemplar_path
            data = await asyncio.to_thread(lambda: open(path, "rb").read())
            fmt = os.path.splitext(path)[1].lstrip(".").lower() or "flac"
            self._exemplars[texture.name] = (fmt, data)
        return self._exemplars[texture.name]

    # ---- HTTP and WebSocket -------------------------------------------------------------

    def health(self) -> dict:
        """/healthz: ``ready`` (every worker process started and its models loaded, and
        not stopping), counts, the pool's figures, memory (bytes)."""
        stats = self.pool.stats()
        server_rss, server_peak = rss()
        workers = {pid: rss(pid) for pid in stats.get("worker_pids", [])}
        return {
            "ready": is_ready(stats, self.shutting_down),
            "status": "stopping" if self.shutting_down else "ok",
            "version": __version__,
            "protocol": protocol.PROTOCOL_VERSION,
            "uptime": round(time.monotonic() - self.started, 1),
            "sessions": len(self.sessions),
            "max_clients": self.settings.max_clients,
            **stats,
            "rss_bytes": {"server": server_rss, "workers": sum(r for r, _ in workers.values()),
                          "total": server_rss + sum(r for r, _ in workers.values())},
            "peak_rss_bytes": {"server": server_peak, "workers": sum(p for _, p in workers.values())},
        }

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            body = json.dumps(self.health()).encode()
            status = http.HTTPStatus.OK if not self.shutting_down else http.HTTPStatus.SERVICE_UNAVAILABLE
            headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                               ("Cache-Control", "no-store"), ("Connection", "close")])
            return Response(status.value, status.phrase, headers, body)
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return connection.respond(http.HTTPStatus.NOT_FOUND, "MusiCoder: connect with WebSocket, or GET /healthz\n")
        return self.gate.admit(connection, request)  # the token and the per-address cap (/healthz is open)

    async def handler(self, ws: ServerConnection) -> None:
        session = Session(self, ws)
        peer = ws.remote_address[0] if ws.remote_address else "?"
        if self.shutting_down or len(self.sessions) >= self.settings.max_clients:
            code = "shutting_down" if self.shutting_down else "too_many_clients"
            session.log.info("refused from %s: %s (%d sessions)", peer, code, len(self.sessions))
            with contextlib.suppress(websockets.ConnectionClosed):
                await session.error(code, "The server has its maximum of connections; try again later."
                                    if code == "too_many_clients" else "The server is stopping.")
                await ws.close(1013, "try again later")
            return
        self.sessions[session.id] = session
        session.log.info("connected from %s (%d sessions)", peer, len(self.sessions))
        try:
            await session.run()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.sessions.pop(session.id, None)
            await session.close()
            session.log.info("disconnected (code %s)", ws.close_code)

    # ---- files --------------------------------------------------------------------------

    def sweep(self, max_age: float | None) -> int:
        """Delete session folders of no live session older than max_age s (None: all)."""
        removed = 0
        now = time.time()
        for top in (self.settings.receive_dir, self.settings.temp_dir):
            try:
                entries = list(os.scandir(top))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in self.sessions:
                    continue
                try:
                    age = now - entry.stat(follow_symlinks=False).st_mtime
                except OSError:
                    continue
                if max_age is not None and age < max_age:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.remove(entry.path)
                removed += 1
        return removed

    async def sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            removed = await asyncio.to_thread(self.sweep, self.settings.sweep_age)
            if removed:
                log.info("sweeper removed %d leftover folder(s)", removed)

    # ---- stopping -----------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop accepting, tell the clients, let running jobs finish for a grace period,
        cancel the rest, close the connections, stop the workers, delete the files."""
        self.shutting_down = True
        grace = self.settings.shutdown_grace
        log.info("stopping: %d session(s), grace %g s", len(self.sessions), grace)
        if self.server is not None:
            self.server.close(close_connections=False)  # no new connections
        sessions = list(self.sessions.values())
        await asyncio.gather(*(s.notify_shutdown(grace) for s in sessions), return_exceptions=True)
        tasks = [t for s in sessions for t in s.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for s in sessions:
            for handle in list(s.jobs.values()):
                handle.cancel()
        tasks = [t for s in sessions for t in s.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await asyncio.gather(*(s.ws.close(1001, "server shutting down") for s in sessions), return_exceptions=True)
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), timeout=10)
        for s in list(self.sessions.values()):
            await s.close()
        await self.pool.close()
        self._decoder.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.sweep, None)
        log.info("stopped")


def _lock_data_dir(settings: Settings):
    """Create the data folders and lock the data dir: one server per data dir, so that
    what the startup sweep finds is certainly left over."""
    for folder in (settings.receive_dir, settings.temp_dir):
        os.makedirs(folder, exist_ok=True)
    lock = open(os.path.join(settings.temp_dir, ".lock"), "w")  # in temp/: git and the sweeper ignore it
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise SystemExit(f"musicoder-server: error: another server uses the data dir {settings.data_dir}")
    return lock


async def serve_forever(settings: Settings, stop: asyncio.Future | None = None) -> None:
    """Run the server until SIGTERM/SIGINT (or ``stop`` is done), then stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = stop or loop.create_future()
    def on_signals() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda s=sig: stop.done() or stop.set_result(s))

    on_signals()
    tls = access.tls_context(settings)  # a bad certificate stops us before the workers start
    lock = _lock_data_dir(settings)
    app = App(settings)
    removed = app.sweep(None)
    log.info("startup sweep removed %d leftover folder(s) from %s", removed, os.path.abspath(settings.data_dir))
    await app.pool.start()
    on_signals()  # again: joining a Ray cluster installs Ray's own SIGTERM handler, which exits at once
    sweeper = asyncio.create_task(app.sweeper())
    try:
        async with serve(app.handler, settings.host, settings.port, process_request=app.process_request,
                         origins=access.origins(settings), ssl=tls,
                         max_size=MAX_FRAME_BYTES, max_queue=MAX_QUEUED_FRAMES, compression=None,
                         ping_interval=20, ping_timeout=20, close_timeout=5, server_header=f"musicoder-server/{__version__}") as server:
            app.server = server
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                log.info("listening on %s://%s:%d (workers %d in %d process(es), models %s, data %s)",
                         "wss" if tls else "ws", host, port, settings.workers, settings.processes, settings.models,
                         os.path.abspath(settings.data_dir))
            access.warn_if_exposed(settings, [sock.getsockname()[0] for sock in server.sockets])
            await stop
            await app.shutdown()
    finally:
        sweeper.cancel()
        if not app.shutting_down:
            await app.pool.close()
        lock.close()


def raise_open_files_limit() -> int:
    """Lift this process's soft limit of open files (usually 1024) to the hard one; returns
    the soft limit now in force. Each client holds a socket, and a file while it uploads;
    past the limit, accept() and open() fail (EMFILE) and clients get timeouts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft


def _check_open_files_limit(max_clients: int) -> None:
    soft = raise_open_files_limit()
    need = 2 * max_clients + 64
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning("only %d open files allowed: %d clients need about %d (raise LimitNOFILE / ulimit -n)",
                    soft, max_clients, need)


def run(settings: Settings) -> int:
    from .worker import tune_malloc

    tune_malloc()  # few malloc arenas for the decode and file threads too
    logging.basicConfig(level=getattr(logging, settings.log_level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    _check_open_files_limit(settings.max_clients)
    try:
        asyncio.run(serve_forever(settings))
    except OSError as err:
        log.error("cannot serve on %s:%d: %s", settings.host, settings.port, err.strerror or err)
        return 1
    return 0
