"""Server settings: command-line flags over environment variables over defaults.

Every setting ``name`` can come from ``--name`` (dashes) or ``MUSICODER_NAME``
(upper case), e.g. ``--max-upload-mb 50`` or ``MUSICODER_MAX_UPLOAD_MB=50``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os

ENV_PREFIX = "MUSICODER_"


def usable_cores(cgroup_cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """CPU cores this process may run on: its affinity mask (taskset, a container's
    cpuset) where the OS has one, else every core; fewer where a cgroup v2 CPU quota
    (``docker --cpus``, a systemd ``CPUQuota=``) allows less time than that."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        cores = max(1, os.cpu_count() or 1)
    try:
        with open(cgroup_cpu_max) as f:
            quota = quota_cores(f.read())
    except OSError:  # no cgroup v2 here
        quota = None
    return min(cores, quota) if quota else cores


def quota_cores(cpu_max: str) -> int | None:
    """Whole cores a cgroup v2 ``cpu.max`` ("QUOTA PERIOD" in µs, or "max PERIOD") allows,
    rounded up (1.5 CPUs keep two workers busy part of the time); None when unlimited
    or unreadable."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, -(-quota // period)) if quota > 0 and period > 0 else None


def pool_shape(workers: int, processes: int, cores: int) -> tuple[int, int]:
    """(conversions at once, worker processes) from the settings, 0 meaning the default:
    one conversion per core, each in a process of its own (no GIL shared between jobs,
    and a crash or kill takes one job down). More processes than conversions would idle."""
    workers = workers or cores
    return workers, min(processes or workers, workers)


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # 0.0.0.0 or :: to serve other machines
    port: int = 8765  # 0: any free port (the log says which)
    data_dir: str = "data"  # holds receive/<session>/ and temp/<session>/
    workers: int = 0  # conversions at once, all worker processes together (0: one per core)
    processes: int = 0  # worker processes they run in (0: one per conversion; fewer: threads share a process)
    max_clients: int = 64  # connections at once
    max_connections_per_ip: int = 0  # connections at once from one client address (0: no cap)
    token: str = dataclasses.field(default="", repr=False)  # clients send "Authorization: Bearer TOKEN"; "": none
    token_file: str = ""  # a file holding the token: keeps it out of `ps` and the environment
    allowed_origin: tuple[str, ...] = ()  # browser Origins allowed (repeatable; env: comma-separated); (): any
    certfile: str = ""  # TLS certificate chain (PEM): serve wss:// (and https://.../healthz)
    keyfile: str = ""  # its private key (PEM), unless certfile holds it
    max_upload_mb: float = 200.0  # one upload, MiB
    max_track_seconds: float = 1800.0  # a track's duration
    max_window: float = 600.0  # s one conversion takes of a track (a window or the whole track); ≤ max_track_seconds
    idle_timeout: float = 300.0  # seconds without a message (and no job running) before closing
    queue: int = 32  # conversions waiting for a worker, all sessions together
    max_running_seconds: float = 600.0  # seconds of audio converted at once, whole songs and short jobs each (memory)
    jobs_per_session: int = 2  # conversions queued or running per session
    job_timeout: float = 300.0  # a conversion running longer per minute of its audio is killed (worker_failed)
    cancel_grace: float = 10.0  # seconds a cancelled job may take to stop before its worker is killed
    sweep_interval: float = 600.0  # seconds between sweeps of leftover session files
    sweep_age: float = 3600.0  # leftovers older than this (s) and of no live session are deleted
    shutdown_grace: float = 10.0  # on SIGTERM, seconds running jobs get to finish
    chunk_kb: int = 256  # binary frame payload the server sends, KiB
    preload: int = 1  # 1: workers load every texture model at start; 0: at first use
    ray: str = ""  # a Ray cluster's address (host:port, ray://..., or auto): convert on its actors; "": local processes
    ray_actor_cpus: float = 1.0  # CPUs each replica reserves on its node, and the compute threads its jobs use
    ray_app: str = "musicoder"  # the Serve application every front end of the service shares
    ray_min_replicas: int = 1  # conversion replicas always running (when this front end deploys them)
    ray_max_replicas: int = 0  # most replicas autoscaling starts (0: the cluster's CPUs when deployed)
    ray_target_ongoing: float = 1.0  # requests per replica the autoscaler aims at (a replica runs one at once)
    queue_timeout: float = 60.0  # under --ray, a conversion no replica starts within this (s) ends with busy
    models: str = "models"  # module with TEXTURES / texture() / load() (tests.passthrough_models: identity, for tests)
    log_level: str = "INFO"

    def __post_init__(self):
        # 0 resolved here, once, so that every reader (pool, logs, /healthz) sees the same
        # numbers; a negative is left as it is for load() to refuse
        if self.workers >= 0 and self.processes >= 0:
            workers, processes = pool_shape(self.workers, self.processes, usable_cores())
            object.__setattr__(self, "workers", workers)  # (frozen: set once, at construction)
            object.__setattr__(self, "processes", processes)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def receive_dir(self) -> str:
        return os.path.join(self.data_dir, "receive")

    @property
    def temp_dir(self) -> str:
        return os.path.join(self.data_dir, "temp")


_HELP = {
    "host": "address to listen on (default 127.0.0.1; 0.0.0.0 for all)",
    "port": "TCP port (default 8765; 0 picks a free one)",
    "data_dir": "folder for per-session files (default ./data)",
    "workers": "conversions at once (default 0: one per core, {cores} here)",
    "processes": "worker processes they run in (default 0: one per conversion, each running one at a time; "
                 "fewer: the conversions of a process run in threads)",
    "max_clients": "connections at once (default 64)",
    "max_upload_mb": "largest upload in MiB (default 200)",
    "max_connections_per_ip": "connections at once from one client address; more get HTTP 429 (default 0: no cap)",
    "token": "shared secret clients must send (Authorization: Bearer TOKEN); prefer MUSICODER_TOKEN or "
             "--token-file, which `ps` does not show (default: none)",
    "token_file": "file holding the token (default: none)",
    "allowed_origin": "a browser Origin allowed, e.g. https://app.example.org (repeatable; default: any); "
                      "clients that send no Origin (scripts, the CLI, the GUI) are always allowed",
    "certfile": "TLS certificate chain, PEM: serve wss:// (default: none, plain ws://)",
    "keyfile": "TLS private key, PEM (default: in --certfile)",
    "ray": "convert on the Ray cluster at this address (host:port of its head, or auto: $RAY_ADDRESS), on "
           "the replicas of a Ray Serve deployment every front end shares (needs the ray extra; default: none, "
           "local worker processes)",
    "ray_actor_cpus": "under --ray, CPUs each replica reserves on its node and uses for its job's compute "
                      "threads (default 1: one replica per core)",
    "ray_app": "under --ray, the Serve application's name: the front ends of one service give the same "
               "(default musicoder)",
    "ray_min_replicas": "under --ray, replicas always running, when this front end deploys the application "
                        "(default 1)",
    "ray_max_replicas": "under --ray, the most replicas autoscaling starts, when this front end deploys the "
                        "application (default 0: as many as the cluster's CPUs hold then)",
    "ray_target_ongoing": "under --ray, conversions per replica the autoscaler aims at; each replica runs one "
                          "at a time, so above 1 queued ones count as load it tolerates (default 1)",
    "queue_timeout": "under --ray, seconds a conversion may wait for a replica; then it ends with busy "
                     "(default 60)",
    "max_window": "the longest audio one conversion takes, s: a window or the whole track (default 600: a "
                  "10-minute song; at most --max-track-seconds)",
    "max_running_seconds": "seconds of audio converted at once, whole songs (over 60 s) and shorter jobs each "
                           "counted apart, so that songs never hold back short jobs; a job alone always starts "
                           "(default 600)",
    "job_timeout": "seconds a conversion may run per minute of its audio (at least this) before its worker is "
                   "stopped (default 300)",
    "models": "texture model module (default models; tests.passthrough_models: identity, for the tests)",
}


# flags and variables a setting had before its rename: still read
_FORMER_FLAGS = {"max_window": ("--max-window-seconds",)}
_FORMER_ENV = {"max_window": "MAX_WINDOW_SECONDS"}


def _convert(field: dataclasses.Field, raw: str):
    kind = type(field.default)
    if kind is tuple:  # a list in one variable: comma-separated
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    return kind(raw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicoder-server", description="The MusiCoder WebSocket server.",
                                epilog=f"Every option can also be set as an environment variable {ENV_PREFIX}NAME, "
                                       f"e.g. {ENV_PREFIX}PORT=9000.")
    p.add_argument("port_positional", nargs="?", type=int, metavar="PORT",
                   help="TCP port (the original's `server.py [port]`)")
    cores = usable_cores()  # read here, not when the module is imported
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        repeatable = isinstance(f.default, tuple)
        helptext = _HELP.get(f.name, f"(default {f.default})").format(cores=cores)
        p.add_argument(flag, *_FORMER_FLAGS.get(f.name, ()), dest=f.name,
                       type=str if repeatable else type(f.default), default=None,
                       action="append" if repeatable else "store", help=helptext)
    return p


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from flags (argv), then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(ENV_PREFIX + f.name.upper()) or environ.get(ENV_PREFIX + _FORMER_ENV.get(f.name, "-"))
        if raw is not None and raw != "":
            try:
                values[f.name] = _convert(f, raw)
            except ValueError:
                raise SystemExit(f"musicoder-server: error: {ENV_PREFIX}{f.name.upper()}={raw!r} is not a "
                                 f"{type(f.default).__name__}")
        flag = getattr(args, f.name)
        if flag is not None:
            values[f.name] = tuple(flag) if isinstance(flag, list) else flag
    if args.port_positional is not None and args.port is None:
        values["port"] = args.port_positional
    settings = Settings(**values)
    for name in ("workers", "processes"):
        if getattr(settings, name) < 1:  # 0 became the default in Settings: only a negative is left
            raise SystemExit(f"musicoder-server: error: {name} must be 0 (the default) or more")
    for name in ("max_clients", "queue", "jobs_per_session", "chunk_kb", "ray_min_replicas"):
        if getattr(settings, name) < 1:
            raise SystemExit(f"musicoder-server: error: {name} must be at least 1")
    if not 0 <= settings.port <= 65535:
        raise SystemExit("musicoder-server: error: port must be 0..65535")
    if settings.max_connections_per_ip < 0:
        raise SystemExit("musicoder-server: error: max_connections_per_ip must be 0 (no cap) or more")
    if "max_window" not in values:  # the default never asks for more than the tracks taken
        settings = dataclasses.replace(settings, max_window=min(settings.max_window, settings.max_track_seconds))
    if not 1.0 <= settings.max_window <= settings.max_track_seconds:
        raise SystemExit(f"musicoder-server: error: max_window must be 1 to max_track_seconds "
                         f"({settings.max_track_seconds:g}) s")
    if settings.keyfile and not settings.certfile:
        raise SystemExit("musicoder-server: error: keyfile needs certfile")
    if settings.token_file:
        settings = dataclasses.replace(settings, token=_read_token(settings))
    return settings


def _read_token(settings: Settings) -> str:
    if settings.token:
        raise SystemExit("musicoder-server: error: give token or token_file, not both")
    try:
        with open(settings.token_file) as f:
            token = f.read().strip()
    except OSError as err:
        raise SystemExit(f"musicoder-server: error: cannot read the token file {settings.token_file}: "
                         f"{err.strerror or err}")
    if not token:
        raise SystemExit(f"musicoder-server: error: the token file {settings.token_file} is empty")
    return token
