"""Server start to ready, and to a first result: how long a (re)started server keeps users waiting.

    python -m bench.server_start [--repeat 5] [--models models] [--no-convert] [-- SERVER ARGS...]

Each round starts ``python -m server`` as a subprocess (loopback, a free port, a
temporary data dir, real models, default settings unless SERVER ARGS), then polls
``/healthz`` every 10 ms and reports, in seconds from the moment before the process is
created:

* **listening**: /healthz first answers (the event loop is up; workers may still start);
* **ready**: /healthz says ``"ready": true`` (every worker process spawned, its libraries
  imported, warmed up and the texture models loaded); the goal is ≤ 3 s;
* **first result**: one client uploads the demo clip, converts a 10 s window at Standard
  and has its result (the whole first flow; unless ``--no-convert``).

Each worker's own start → ready and its phases (imports, warm-up, models) come from
the server's log. References, measured in the same rounds on the same machine, since
the old server (TensorFlow in the worker, 5–8 s to import) cannot run any more: a bare
interpreter (``python -c pass``), ``python -c "import numpy"``, and the worker's start-up
alone in one process with no server around it (the imports, the warm-up job, the models:
what a worker does before it can say ready). The medians are printed, and every round.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CLIP = os.path.join(REPO, "examples", "demo.ogg")
READY_TARGET_S = 3.0
POLL_S = 0.01
_LISTENING = re.compile(r"listening on wss?://[^:]+:(\d+)")
_WORKER_READY = re.compile(r"worker process (\d+) ready, pid \d+, in ([\d.]+) s \(([^)]*)\)")
_SPAWNED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ \S+: worker process \d+ starting", re.M)

# What a worker does before its ready message (server/worker.py), in one bare process.
WORKER_ALONE = """
import time; t0 = time.monotonic()
import os, sys
from server import worker
worker.limit_threads(1)
import numpy as np
from musicoder import audio, engine, render
import {models} as models
worker._warm_up(engine, audio, render)
for name in models.TEXTURES:
    models.load(name).transform(np.zeros((1025, 8), dtype=np.float32))
print(time.monotonic() - t0)
"""


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def timed_subprocess(code: str) -> float:
    """Seconds for ``python -c code`` from before its creation to its exit."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process so far (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_seconds(stamp: str) -> float:
    """A log line's asctime (local time, ms) as seconds since the epoch."""
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:]) / 1000


def _health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


async def _first_result(url: str) -> None:
    import client

    async with client.Client(url, name="server-start", request_timeout=120) as c:
        await c.upload(DEMO_CLIP)
        await c.clip(5.0, 10.0)
        await c.convert("laser", "standard", "wav")


def one_start(models: str, server_args: list[str], convert: bool, timeout: float = 120.0) -> dict:
    """Start a server, time it to listening, ready and (convert) a first result; stop it."""
    with tempfile.TemporaryDirectory(prefix="musicoder-start-") as tmp:
        log_path = os.path.join(tmp, "server.log")
        with open(log_path, "wb") as log:
            t0, wall0 = time.monotonic(), time.time()
            proc = subprocess.Popen([sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", "0",
                                     "--data-dir", os.path.join(tmp, "data"), "--models", models, *server_args],
                                    cwd=REPO, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            port = listening = ready = first = None
            health: dict = {}
            while ready is None:
                if proc.poll() is not None or time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"the server did not get ready:\n{open(log_path).read()[-3000:]}")
                if port is None:
                    m = _LISTENING.search(open(log_path, errors="replace").read())
                    port = int(m[1]) if m else None
                if port is not None:
                    health = _health(port) or {}
                    if health and listening is None:
                        listening = time.monotonic() - t0
                    if health.get("ready"):
                        ready = time.monotonic() - t0
                        cpu = {"event loop": _cpu_seconds(proc.pid),
                               "workers": [round(_cpu_seconds(p), 2) for p in health["worker_pids"]]}
                        break
                time.sleep(POLL_S)
            if convert:
                asyncio.run(_first_result(f"ws://127.0.0.1:{port}"))
                first = time.monotonic() - t0
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        text = open(log_path, errors="replace").read()
    workers = [{"index": int(i), "seconds": float(s), "phases": phases} for i, s, phases in _WORKER_READY.findall(text)]
    spawned = _SPAWNED.search(text)
    return {"spawned_s": _log_seconds(spawned[1]) - wall0 if spawned else None, "listening_s": listening,
            "ready_s": ready, "first_result_s": first, "workers": workers, "cpu_to_ready_s": cpu,
            "processes": health.get("processes"), "slots": health.get("slots_per_process")}


def _median(values: list) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server_start", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="rounds (default 5); medians reported")
    ap.add_argument("--models", default="models", help="texture model module (default models)")
    ap.add_argument("--no-convert", dest="convert", action="store_false", help="skip the first-result flow")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("server_args", nargs="*", help="after --: more server flags, e.g. -- --processes 1")
    a = ap.parse_args(argv)
    rounds, refs = [], {"python -c pass": [], "python -c 'import numpy'": [], "one worker's start-up alone": []}
    alone = WORKER_ALONE.format(models=a.models)
    for i in range(a.repeat):  # references and server interleaved: the machine's load hits both alike
        refs["python -c pass"].append(timed_subprocess("pass"))
        refs["python -c 'import numpy'"].append(timed_subprocess("import numpy"))
        refs["one worker's start-up alone"].append(timed_subprocess(alone))
        r = one_start(a.models, a.server_args, a.convert)
        rounds.append(r)
        print(f"round {i + 1}: workers spawned {r['spawned_s']:.2f} s, listening {r['listening_s']:.2f} s, "
              f"ready {r['ready_s']:.2f} s"
              + (f", first result {r['first_result_s']:.2f} s" if r["first_result_s"] is not None else "")
              + f" | CPU s to ready: event loop {r['cpu_to_ready_s']['event loop']:.2f}, workers "
                f"{r['cpu_to_ready_s']['workers']}"
              + f" | workers: " + "; ".join(f"{w['index']}: {w['seconds']:.2f} s ({w['phases']})" for w in r["workers"])
              + f" | refs: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in refs.items()), flush=True)
    summary = {
        "rounds": a.repeat, "server_args": a.server_args, "processes": rounds[-1]["processes"],
        "slots_per_process": rounds[-1]["slots"], "load_average": os.getloadavg()[0],
        "spawned_s": _median([r["spawned_s"] for r in rounds]),
        "listening_s": _median([r["listening_s"] for r in rounds]),
        "cpu_to_ready_s": {"event loop": _median([r["cpu_to_ready_s"]["event loop"] for r in rounds]),
                           "each worker": _median([c for r in rounds for c in r["cpu_to_ready_s"]["workers"]])},
        "ready_s": _median([r["ready_s"] for r in rounds]), "ready_max_s": max(r["ready_s"] for r in rounds),
        "first_result_s": _median([r["first_result_s"] for r in rounds]),
        "references_s": {k: _median(v) for k, v in refs.items()},
    }
    print(f"server start, median of {a.repeat} ({summary['processes']} worker process(es), slots "
          f"{summary['slots_per_process']}, load average {summary['load_average']:.1f}): workers spawned "
          f"{summary['spawned_s']:.2f} s, listening {summary['listening_s']:.2f} s, ready {summary['ready_s']:.2f} s "
          f"(max {summary['ready_max_s']:.2f} s)" + (f", first result {summary['first_result_s']:.2f} s" if a.convert else ""))
    cpu = summary["cpu_to_ready_s"]
    print(f"CPU seconds to ready: event loop {cpu['event loop']:.2f}, each worker {cpu['each worker']:.2f} "
          f"(on an idle machine with a core per process, ready comes near the spawn time + one worker's CPU)")
    print("references, same rounds: " + ", ".join(f"{k} {v:.2f} s" for k, v in summary["references_s"].items()))
    met = summary["ready_s"] <= READY_TARGET_S
    print(f"goal (ready <= {READY_TARGET_S:g} s): {'met' if met else 'NOT met'}")
    if a.json:
        print(json.dumps({**summary, "each": rounds}))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
