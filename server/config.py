"""Server settings: command-line flags over environment variables over defaults.

Every setting ``name`` can come from ``--name`` (dashes) or ``MUSICODER_NAME``
(upper case), e.g. ``--max-upload-mb 50`` or ``MUSICODER_MAX_UPLOAD_MB=50``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os

ENV_PREFIX = "MUSICODER_"


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # 0.0.0.0 or :: to serve other machines
    port: int = 8765  # 0: any free port (the log says which)
    data_dir: str = "data"  # holds receive/<session>/ and temp/<session>/
    workers: int = 2  # conversions at once (worker threads, all processes together)
    processes: int = 1  # worker processes sharing them (each loads TensorFlow and the models: ~1 GB)
    max_clients: int = 64  # connections at once
    max_upload_mb: float = 200.0  # one upload, MiB
    max_track_seconds: float = 1800.0  # a track's duration
    max_window_seconds: float = 60.0  # a clip window's duration
    idle_timeout: float = 300.0  # seconds without a message (and no job running) before closing
    queue: int = 32  # conversions waiting for a worker, all sessions together
    max_running_seconds: float = 30.0  # seconds of audio converted at once (memory: ~8 MB per second)
    jobs_per_session: int = 2  # conversions queued or running per session
    job_timeout: float = 300.0  # a conversion running longer is killed (worker_failed)
    cancel_grace: float = 10.0  # seconds a cancelled job may take to stop before its worker is killed
    sweep_interval: float = 600.0  # seconds between sweeps of leftover session files
    sweep_age: float = 3600.0  # leftovers older than this (s) and of no live session are deleted
    shutdown_grace: float = 10.0  # on SIGTERM, seconds running jobs get to finish
    chunk_kb: int = 256  # binary frame payload the server sends, KiB
    preload: int = 1  # 1: workers load every texture model at start; 0: at first use
    models: str = "models"  # module with TEXTURES / texture() / load() (tests.passthrough_models: identity, for tests)
    log_level: str = "INFO"

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
    "workers": "conversions at once (default 2)",
    "processes": "worker processes they run in (default 1: TensorFlow and the models loaded once)",
    "max_clients": "connections at once (default 64)",
    "max_upload_mb": "largest upload in MiB (default 200)",
    "models": "texture model module (default models; tests.passthrough_models: identity, for the tests)",
}


def _convert(field: dataclasses.Field, raw: str):
    kind = type(field.default)
    return kind(raw)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="musicoder-server", description="The MusiCoder WebSocket server.",
                                epilog=f"Every option can also be set as an environment variable {ENV_PREFIX}NAME, "
                                       f"e.g. {ENV_PREFIX}PORT=9000.")
    p.add_argument("port_positional", nargs="?", type=int, metavar="PORT",
                   help="TCP port (the original's `server.py [port]`)")
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        p.add_argument(flag, dest=f.name, type=type(f.default), default=None,
                       help=_HELP.get(f.name, f"(default {f.default})"))
    return p


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Settings from flags (argv), then environment variables, then defaults."""
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(ENV_PREFIX + f.name.upper())
        if raw is not None and raw != "":
            try:
                values[f.name] = _convert(f, raw)
            except ValueError:
                raise SystemExit(f"musicoder-server: error: {ENV_PREFIX}{f.name.upper()}={raw!r} is not a "
                                 f"{type(f.default).__name__}")
        flag = getattr(args, f.name)
        if flag is not None:
            values[f.name] = flag
    if args.port_positional is not None and args.port is None:
        values["port"] = args.port_positional
    settings = Settings(**values)
    for name in ("workers", "processes", "max_clients", "queue", "jobs_per_session", "chunk_kb"):
        if getattr(settings, name) < 1:
            raise SystemExit(f"musicoder-server: error: {name} must be at least 1")
    if not 0 <= settings.port <= 65535:
        raise SystemExit("musicoder-server: error: port must be 0..65535")
    return settings
