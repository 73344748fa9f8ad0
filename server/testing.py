"""A real server in a child process, for the tests, the benchmark and the GUI's own
loopback server.

    with ServerProcess(data_dir, "--workers", "1") as srv:
        srv.url, srv.health(), srv.kill9(), srv.terminate()

    with LocalRayCluster(nodes=2) as cluster:          # Ray's cluster_utils, loopback only
        with ServerProcess(data_dir, "--ray", cluster.address, env=cluster.env) as front_end: ...

It listens on 127.0.0.1 with a port the OS picks (read from its log), and is always
stopped on exit (SIGTERM, then SIGKILL of it and its workers). Given --certfile it
serves wss:// and https://.../healthz: pass ``cafile`` to trust its certificate.
"""
from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LISTENING = re.compile(r"listening on (wss?)://[^:]+:(\d+)")


def session_files(data_dir: str | os.PathLike, folders: bool = False) -> list[str]:
    """Every session file (and, with folders, folder) under data/receive and data/temp:
    what a server must not leave behind. Dot-files (the data directory's lock) aside."""
    out = []
    for top in ("receive", "temp"):
        for root, dirs, names in os.walk(os.path.join(data_dir, top)):
            out += [os.path.join(root, n) for n in names if not n.startswith(".")]
            out += [os.path.join(root, d) for d in dirs] if folders else []
    return out


class ServerProcess:
    def __init__(self, data_dir: str, *args: str, models: str = "models", workers: int | None = 2,
                 ready_timeout: float = 90.0, log_path: str | None = None, env: dict | None = None,
                 cafile: str | None = None):
        self.data_dir = str(data_dir)
        self.args = ["--host", "127.0.0.1", "--port", "0", "--data-dir", self.data_dir, "--models", models,
                     *(["--workers", str(workers)] if workers is not None else []), *args]  # None: the server's default
        self.workers = workers
        self.ready_timeout = ready_timeout
        self.log_path = log_path or os.path.join(self.data_dir, "server.log")
        self.env = env
        self.cafile = cafile
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.scheme = "ws"  # wss when it serves TLS
        self._log = None
        self._log_start = 0
        self.worker_pids: list[int] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait_workers: bool = True) -> "ServerProcess":
        os.makedirs(self.data_dir, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()  # a restart appends: read only this run's lines
        extra = dict(self.env or {})  # its PYTHONPATH goes after the repository's
        path = extra.pop("PYTHONPATH", None) or os.environ.get("PYTHONPATH", "")
        env = {**os.environ, **extra, "PYTHONPATH": REPO + os.pathsep + path}
        self.proc = subprocess.Popen([sys.executable, "-m", "server", *self.args], cwd=REPO, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.ready_timeout
        while self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start:\n{self.log()[-3000:]}")
            m = _LISTENING.search(self.log())
            if m:
                self.scheme, self.port = m[1], int(m[2])
            else:
                time.sleep(0.05)
        while wait_workers:
            h = self.health()
            self.worker_pids = h.get("worker_pids", [])  # none under --ray: its actors are the cluster's
            if h["ready"]:  # every worker process started, its models loaded
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"workers did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def health(self, timeout: float = 5.0) -> dict:
        tls = self.scheme == "wss"
        context = ssl.create_default_context(cafile=self.cafile) if tls else None
        with urllib.request.urlopen(f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/healthz", timeout=timeout,
                                    context=context) as r:
            return json.loads(r.read())

    def wait_health(self, predicate, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            h = self.health()
            if predicate(h) or time.monotonic() > deadline:
                return h
            time.sleep(0.05)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL the server only (its workers notice the closed pipe and exit)."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Whatever state it is in: SIGTERM, then SIGKILL, and its workers too."""
        pids = list(self.worker_pids)
        if self.proc is not None and self.proc.poll() is None:
            try:
                if self.port is not None:
                    pids = self.health(timeout=2).get("worker_pids", [])
            except Exception:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in pids:  # our own server's workers, by id, if still there
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"multiprocessing" not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError, PermissionError):
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ServerProcess":
        try:
            return self.start()
        except BaseException:  # a server that failed to start leaves no process behind
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# Ray resolves a loopback address to the machine's own IP, which its processes do not
# listen on when bound to 127.0.0.1; with this (Ray's own switch, named for the OSes
# where it is the default) it keeps 127.0.0.1, for this process and the front ends.
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


class LocalRayCluster:
    """A Ray cluster on this machine, loopback only: a head with no CPU (it runs no
    conversion) and ``nodes`` worker nodes of ``cpus`` CPU each, through Ray's own
    ``ray.cluster_utils.Cluster``. ``address`` for --ray, ``env`` for the front ends'
    processes, ``add_node()`` and ``remove_node(node)`` (a node that dies: no drain)."""

    def __init__(self, nodes: int = 2, cpus: int = 1):
        self.nodes_wanted, self.cpus = nodes, cpus
        self.cluster = None
        self.nodes: list = []
        self.env = dict(RAY_LOOPBACK)

    def __enter__(self) -> "LocalRayCluster":
        os.environ.update(self.env)  # before Ray is imported here
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
            # a dead node noticed in ~2 s, not Ray's default 15
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4}})
        for _ in range(self.nodes_wanted):
            self.add_node()
        return self

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_node(self):
        node = self.cluster.add_node(num_cpus=self.cpus, node_ip_address="127.0.0.1")
        self.nodes.append(node)
        return node

    def remove_node(self, node) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)

    def node_of(self, node_id: str):
        """The worker node whose id starts with node_id (as /healthz shows it)."""
        return next(n for n in self.nodes if n.node_id.startswith(node_id))

    def __exit__(self, *exc) -> None:
        self.cluster.shutdown()
