"""Load: N connections at once to one server, M of them running the full flow together.

    python -m bench.server_load [--connections 200] [--flows 150] [--quality standard]
                                [--models models] [--workers 2] [--queue Q]
                                [--url ws://HOST:PORT [--data-dir DIR]] [--json]

Starts a real server on loopback (a free port, a temporary data dir, room for the
connections), or targets ``--url``. All N connections are opened and greeted first;
then M of them run the whole flow at once: upload the demo clip, choose a 10 s window,
convert (textures in turn), download the result's three payloads. The other N−M stay
idle and, from a separate process (so that the flows' client work does not delay them),
ping the server (WebSocket ping → pong) every 250 ms each: the event loop's
responsiveness under the load. A sampler reads the resident memory of the server and all
its processes (workers, ffmpeg) from /proc every 50 ms (from /healthz with ``--url``).

Reports: flows completed, failed with a clear ``busy`` error, failed otherwise (by
reason); throughput (completed flows per minute); flow latency p50 / p99 (connect →
result downloaded, queueing included); ping p50 / p99; peak sessions; peak RSS of the
whole server; files left in data/ once the connections are closed. Goals: every flow
completes or gets ``busy``, nothing left on disk, ping p99 < 100 ms, peak RSS ≤ 1.3 GB.
``--json``: one JSON object as the last line; exit status 1 when a goal is missed.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request

from server.app import raise_open_files_limit
from server.app import rss as process_rss
from server.testing import session_files

DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "demo.ogg")
PING_TARGET_S = 0.100
RSS_TARGET_BYTES = 1.3e9
PING_INTERVAL_S = 0.25
TEXTURES = ("laser", "water", "future")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# ---- the server's memory ----------------------------------------------------------------------

def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return None


def _process_tree(pid: int) -> list[int]:
    """pid and all its descendants (worker processes, ffmpeg), less children between fork
    and exec: those still share their parent's pages, and their RSS would count them twice."""
    tree, todo = [], [(pid, None)]
    while todo:
        p, parent_cmdline = todo.pop()
        cmdline = _cmdline(p)
        if cmdline is None or cmdline == parent_cmdline:
            continue
        tree.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [(int(c), cmdline) for c in f.read().split()]
        except OSError:
            pass
    return tree


class Sampler(threading.Thread):
    """Peak RSS of the whole server (every 50 ms, from /proc when it is ours, else from
    /healthz) and peak sessions (from /healthz every 250 ms)."""

    def __init__(self, health_url: str, pid: int | None):
        super().__init__(daemon=True)
        self.health_url, self.pid = health_url, pid
        self.peak_rss = self.peak_sessions = 0
        self.peak_parts: list[int] = []  # each process's RSS at that peak, the server first
        self.stop = threading.Event()

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(self.health_url, timeout=5) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def run(self) -> None:
        last_health = 0.0
        while not self.stop.is_set():
            if self.pid is not None:
                rss = [process_rss(p)[0] for p in _process_tree(self.pid)]
                if sum(rss) > self.peak_rss:
                    self.peak_rss, self.peak_parts = sum(rss), rss
            if time.monotonic() - last_health >= 0.25:
                last_health = time.monotonic()
                h = self.health()
                if h is not None:
                    self.peak_sessions = max(self.peak_sessions, h["sessions"])
                    if self.pid is None:
                        self.peak_rss = max(self.peak_rss, h["rss_bytes"]["total"])
            self.stop.wait(0.05)


# ---- idle connections that ping, in their own process -------------------------------------------

def _ping_process(url: str, count: int, opened, stop, results) -> None:
    raise_open_files_limit()  # N client sockets need more than the usual 1024
    asyncio.run(_ping_idle(url, count, opened, stop, results))


async def _ping_idle(url: str, count: int, opened, stop, results) -> None:
    from websockets.asyncio.client import connect

    import protocol

    rtts: list[float] = []
    failures: list[str] = []

    async def one(i: int) -> None:
        try:
            async with connect(url, ping_interval=None, compression=None, open_timeout=60) as ws:
                await ws.send(protocol.encode(protocol.Hello(id=1, version=protocol.PROTOCOL_VERSION,
                                                             client=f"load-idle-{i}")))
                await ws.recv()  # welcome (or too_many_clients)
                ready.release()
                await asyncio.sleep(random.random() * PING_INTERVAL_S)  # spread the pings out
                while not stop.is_set():
                    t0 = time.perf_counter()
                    await asyncio.wait_for(await ws.ping(), 10)
                    rtts.append(time.perf_counter() - t0)
                    await asyncio.sleep(PING_INTERVAL_S)
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}"[:200])
            ready.release()

    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    for _ in range(count):
        await ready.acquire()
    opened.set()
    await asyncio.gather(*tasks)
    results.send((rtts, failures))


# ---- the flows ----------------------------------------------------------------------------------

async def _flow(url: str, index: int, quality: str, go: asyncio.Event, connected: asyncio.Semaphore) -> tuple:
    """(outcome, seconds): outcome "ok", "busy", or what else went wrong."""
    import client

    c = client.Client(url, name=f"load-{index}", open_timeout=60, request_timeout=600)
    try:
        try:
            await c.connect()
        finally:
            connected.release()
        await go.wait()
        t0 = time.perf_counter()
        await c.upload(DEMO_CLIP)
        await c.clip(5.0, 10.0)
        result = await c.convert(TEXTURES[index % len(TEXTURES)], quality, "wav")
        if not result.audio or not result.spectrogram:
            return "empty result", 0.0
        return "ok", time.perf_counter() - t0
    except client.ServerError as err:
        return ("busy" if err.code == "busy" else f"error {err.code}"), 0.0
    except client.ConnectionFailed as err:
        return f"connection: {str(err).split(':')[-1].strip()[:80]}", 0.0
    except Exception as err:  # counted, not fatal to the measurement
        return f"{type(err).__name__}: {err}"[:100], 0.0
    finally:
        await c.close()


async def _load(url: str, flows: int, quality: str) -> dict:
    """Every flow connected first, then all of them at once."""
    go, connected = asyncio.Event(), asyncio.Semaphore(0)
    tasks = [asyncio.create_task(_flow(url, i, quality, go, connected)) for i in range(flows)]
    for _ in range(flows):
        await connected.acquire()
    t0 = time.perf_counter()
    go.set()
    outcomes = await asyncio.gather(*tasks)
    return {"outcomes": outcomes, "wall": time.perf_counter() - t0}


def _files_left(data_dir: str | None, sampler: Sampler, timeout: float = 20.0) -> int | None:
    """Session files still in data/ once every session has ended (None: data dir unknown)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = sampler.health()
        if h is not None and h["sessions"] == 0 and (data_dir is None or not session_files(data_dir, folders=True)):
            break
        time.sleep(0.1)
    return None if data_dir is None else len(session_files(data_dir, folders=True))


def measure(url: str, connections: int, flows: int, quality: str, pid: int | None, data_dir: str | None) -> dict:
    idle = connections - flows
    sampler = Sampler(url.replace("ws://", "http://", 1).rstrip("/") + "/healthz", pid)
    ctx = multiprocessing.get_context("spawn")
    opened, stop = ctx.Event(), ctx.Event()
    results, child_end = ctx.Pipe(duplex=False)
    pinger = ctx.Process(target=_ping_process, args=(url, idle, opened, stop, child_end), daemon=True)
    pinger.start()
    if not opened.wait(120):
        raise RuntimeError("the idle connections did not open in 120 s")
    sampler.start()
    out = asyncio.run(_load(url, flows, quality))
    stop.set()
    rtts, ping_failures = results.recv() if results.poll(30) else ([], ["the pinger did not report"])
    pinger.join(10)
    files_left = _files_left(data_dir, sampler)
    sampler.stop.set()
    sampler.join()
    outcomes = collections.Counter(o for o, _ in out["outcomes"])
    latencies = [s for o, s in out["outcomes"] if o == "ok"]
    completed, busy = outcomes.pop("ok", 0), outcomes.pop("busy", 0)
    return {
        "connections": connections, "flows": flows, "idle": idle, "quality": quality,
        "completed": completed, "busy": busy, "other_failures": sum(outcomes.values()),
        "other_reasons": dict(outcomes), "seconds": round(out["wall"], 2),
        "throughput_per_min": round(60 * completed / out["wall"], 2),
        "latency_p50_s": round(_percentile(latencies, 0.5), 2), "latency_p99_s": round(_percentile(latencies, 0.99), 2),
        "ping_p50_ms": round(1000 * _percentile(rtts, 0.5), 1), "ping_p99_ms": round(1000 * _percentile(rtts, 0.99), 1),
        "ping_max_ms": round(1000 * max(rtts, default=float("nan")), 1), "pings": len(rtts),
        "ping_failures": ping_failures[:5], "peak_sessions": sampler.peak_sessions,
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1), "peak_rss_parts_mb": [p >> 20 for p in sampler.peak_parts],
        "files_left": files_left,
    }


def run(connections: int = 200, flows: int = 150, quality: str = "standard", models: str = "models",
        workers: int = 2, queue: int | None = None) -> dict:
    """Against a server of our own: started, warmed up (one flow per worker), measured."""
    from server.testing import ServerProcess

    args = ["--max-clients", str(connections + workers + 8)]
    if queue is not None:
        args += ["--queue", str(queue)]
    with tempfile.TemporaryDirectory(prefix="musicoder-load-") as tmp:
        data = os.path.join(tmp, "data")
        with ServerProcess(data, *args, models=models, workers=workers, ready_timeout=180) as srv:
            warm = asyncio.run(_load(srv.url, workers, quality))  # caches warm before measuring
            if any(o != "ok" for o, _ in warm["outcomes"]):
                raise RuntimeError(f"the warm-up failed: {warm['outcomes']}\n{srv.log()[-3000:]}")
            result = measure(srv.url, connections, flows, quality, srv.proc.pid, data)
            health = srv.health()
    return {**result, "models": models, "workers": workers, "queue": health["queue_limit"],
            "restarts": health["restarts"],  # and each process's own peak (VmHWM), for the breakdown
            "peak_rss_server_mb": round(health["peak_rss_bytes"]["server"] / 2**20, 1),
            "peak_rss_workers_mb": round(health["peak_rss_bytes"]["workers"] / 2**20, 1)}


def goals_met(r: dict) -> bool:
    return (r["other_failures"] == 0 and not r["files_left"] and r["ping_p99_ms"] < 1000 * PING_TARGET_S
            and r["peak_rss_mb"] * 2**20 <= RSS_TARGET_BYTES and not r["ping_failures"])


def table(r: dict) -> str:
    head = (f"{'conns':>5s} {'flows':>5s} {'done':>5s} {'busy':>5s} {'other':>5s} {'per min':>7s} {'p50 s':>6s} "
            f"{'p99 s':>6s} | {'ping p50':>8s} {'p99 ms':>6s} | {'sessions':>8s} {'RSS MB':>6s} {'files':>5s}")
    row = (f"{r['connections']:5d} {r['flows']:5d} {r['completed']:5d} {r['busy']:5d} {r['other_failures']:5d} "
           f"{r['throughput_per_min']:7.1f} {r['latency_p50_s']:6.1f} {r['latency_p99_s']:6.1f} | "
           f"{r['ping_p50_ms']:8.1f} {r['ping_p99_ms']:6.1f} | {r['peak_sessions']:8d} {r['peak_rss_mb']:6.0f} "
           f"{'-' if r['files_left'] is None else r['files_left']:>5}")
    lines = [f"load: {r['connections']} connections, {r['flows']} flows at once ({r['quality']}, 10 s window), "
             f"{r['idle']} idle ones pinging ({r['pings']} pings); models {r.get('models', '?')}, "
             f"{r.get('workers', '?')} workers, queue {r.get('queue', '?')}; {r['seconds']:.1f} s", head, row]
    if "peak_rss_server_mb" in r:
        lines.append(f"peak RSS: at the whole server's peak, each process {r['peak_rss_parts_mb']} MB (the server "
                     f"first); each process's own peak: server {r['peak_rss_server_mb']:.0f} MB, "
                     f"workers {r['peak_rss_workers_mb']:.0f} MB")
    if r["other_reasons"]:
        lines.append(f"other failures: {r['other_reasons']}")
    if r["ping_failures"]:
        lines.append(f"idle connections that failed: {r['ping_failures']}")
    lines.append(f"goals (every flow done or busy, no files left, ping p99 < {1000 * PING_TARGET_S:.0f} ms, "
                 f"RSS <= {RSS_TARGET_BYTES / 1e9:.1f} GB): {'met' if goals_met(r) else 'NOT met'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=200, help="connections open at once (default 200)")
    ap.add_argument("--flows", type=int, default=150, help="of them, running the full flow at once (default 150)")
    ap.add_argument("--quality", default="standard")
    ap.add_argument("--models", default="models", help="texture model module (default models)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=None, help="the server's queue limit (default: its own)")
    ap.add_argument("--url", help="load this server instead of starting one (ws://HOST:PORT)")
    ap.add_argument("--data-dir", help="with --url: its data dir, to count the files left")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.flows < a.connections:
        ap.error("need 1 <= flows < connections (the rest stay idle and measure ping)")
    raise_open_files_limit()  # N client sockets need more than the usual 1024
    if a.url:
        result = measure(a.url, a.connections, a.flows, a.quality, None, a.data_dir)
    else:
        result = run(a.connections, a.flows, a.quality, a.models, a.workers, a.queue)
    print(table(result))
    if a.json:
        print(json.dumps(result))
    return 0 if goals_met(result) else 1


if __name__ == "__main__":
    sys.exit(main())
