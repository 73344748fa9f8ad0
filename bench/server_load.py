"""Load: N connections at once to one server, M of them running the full flow together.

    python -m bench.server_load [--connections 200] [--flows 150] [--quality standard]
                                [--models models] [--workers N] [--processes P] [--queue Q]
                                [--url ws://HOST:PORT [--data-dir DIR]] [--json]
    python -m bench.server_load --pool-only ROUNDS [--jobs 16]   # processes against threads

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
whole server (and peak PSS, which counts the pages worker processes share once); files
left in data/ once the connections are closed. Where the time goes: each completed
flow's mean wall seconds per phase (upload with the server's decode, clip, convert; the
job's queueing and worker stages as the result reports them), and the CPU seconds per
completed flow of the event loop, its ffmpeg decoders, the workers and the clients
(this process and the pinger), with the throughput those allow on this machine's cores.
Goals: every flow completes or gets ``busy``, nothing left on disk, ping p99 < 100 ms,
peak RSS ≤ 1.0 GB; and, on the 2-core reference machine only, ≥ 90 flows/min (printed,
not in the exit status: it depends on the machine). The machine's load average at the
start is printed: figures taken beside other jobs are not comparable.
``--json``: one JSON object as the last line; exit status 1 when a goal is missed.

``--pool-only ROUNDS``: the conversions alone, through the worker pool with no server
(``--jobs`` Standard conversions of a 10 s window submitted at once), one single-slot
process per core against one process with a job thread per core, in turn, so that
both see the same load from the rest of the machine: jobs per minute and CPU seconds
per job of each shape.
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
from server.config import usable_cores
from server.testing import session_files

DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "demo.ogg")
PING_TARGET_S = 0.100
RSS_TARGET_BYTES = 1.0e9
THROUGHPUT_TARGET_PER_MIN = 90.0  # flows at Standard, on the 2-core reference machine
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


def _pss(pid: int) -> int:
    """Proportional set size in bytes (pages shared between processes counted once,
    split between them), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(its own, its reaped children's) user + system CPU seconds of a process, from
    /proc; (0, 0) if it is gone. The server's reaped children are its ffmpeg decoders."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / tick, (cutime + cstime) / tick


def _own_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_snapshot(server_pid: int | None, worker_pids: list[int]) -> dict[str, float]:
    """CPU seconds so far: the event loop, its ffmpeg decoders, the workers, this client."""
    loop, ffmpeg = cpu_seconds(server_pid) if server_pid is not None else (0.0, 0.0)
    return {"event loop": loop, "ffmpeg": ffmpeg, "workers": sum(sum(cpu_seconds(p)) for p in worker_pids),
            "client": _own_cpu()}  # (a worker's reaped children, an encoder's ffmpeg, count as the worker's)


class Sampler(threading.Thread):
    """Peak RSS of the whole server (every 50 ms, from /proc when it is ours, else from
    /healthz) and peak sessions (from /healthz every 250 ms)."""

    def __init__(self, health_url: str, pid: int | None):
        super().__init__(daemon=True)
        self.health_url, self.pid = health_url, pid
        self.peak_rss = self.peak_sessions = self.peak_pss = 0
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
                if self.pid is not None:  # (smaps_rollup walks the page tables: not every 50 ms)
                    self.peak_pss = max(self.peak_pss, sum(_pss(p) for p in _process_tree(self.pid)))
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
    results.send((rtts, failures, _own_cpu()))


# ---- the flows ----------------------------------------------------------------------------------

async def _flow(url: str, index: int, quality: str, go: asyncio.Event, connected: asyncio.Semaphore) -> tuple:
    """(outcome, seconds, phases): outcome "ok", "busy", or what else went wrong; phases
    (completed flows): wall seconds of upload (with the server's decode of the first
    window), clip (a second decode), convert (accepted → payloads downloaded) and the
    server's own timings of the job (queued, then the worker's stages)."""
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
        t1 = time.perf_counter()
        await c.clip(5.0, 10.0)
        t2 = time.perf_counter()
        result = await c.convert(TEXTURES[index % len(TEXTURES)], quality, "wav")
        t3 = time.perf_counter()
        if not result.audio or not result.spectrogram:
            return "empty result", 0.0, {}
        return "ok", t3 - t0, {"upload": t1 - t0, "clip": t2 - t1, "convert": t3 - t2,
                               **{f"job {k}": v for k, v in result.timings.items()}}
    except client.ServerError as err:
        return ("busy" if err.code == "busy" else f"error {err.code}"), 0.0, {}
    except client.ConnectionFailed as err:
        return f"connection: {str(err).split(':')[-1].strip()[:80]}", 0.0, {}
    except Exception as err:  # counted, not fatal to the measurement
        return f"{type(err).__name__}: {err}"[:100], 0.0, {}
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
    load_average = os.getloadavg()[0]  # other jobs on the machine: the figures mean little when high
    sampler = Sampler(url.replace("ws://", "http://", 1).rstrip("/") + "/healthz", pid)
    ctx = multiprocessing.get_context("spawn")
    opened, stop = ctx.Event(), ctx.Event()
    results, child_end = ctx.Pipe(duplex=False)
    pinger = ctx.Process(target=_ping_process, args=(url, idle, opened, stop, child_end), daemon=True)
    pinger.start()
    if not opened.wait(120):
        raise RuntimeError("the idle connections did not open in 120 s")
    sampler.start()
    worker_pids = (sampler.health() or {}).get("worker_pids", []) if pid is not None else []
    cpu_before = _cpu_snapshot(pid, worker_pids)
    out = asyncio.run(_load(url, flows, quality))
    cpu_after = _cpu_snapshot(pid, worker_pids)
    stop.set()
    rtts, ping_failures, pinger_cpu = results.recv() if results.poll(30) else ([], ["the pinger did not report"], 0.0)
    pinger.join(10)
    files_left = _files_left(data_dir, sampler)
    sampler.stop.set()
    sampler.join()
    outcomes = collections.Counter(o for o, _, _ in out["outcomes"])
    latencies = [s for o, s, _ in out["outcomes"] if o == "ok"]
    completed, busy = outcomes.pop("ok", 0), outcomes.pop("busy", 0)
    cpu = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_before}
    cpu["pinger"] = round(pinger_cpu, 2)  # (its whole life: opening 50 connections too)
    return {
        "connections": connections, "flows": flows, "idle": idle, "quality": quality,
        "completed": completed, "busy": busy, "other_failures": sum(outcomes.values()),
        "other_reasons": dict(outcomes), "seconds": round(out["wall"], 2),
        "throughput_per_min": round(60 * completed / out["wall"], 2),
        "latency_p50_s": round(_percentile(latencies, 0.5), 2), "latency_p99_s": round(_percentile(latencies, 0.99), 2),
        "ping_p50_ms": round(1000 * _percentile(rtts, 0.5), 1), "ping_p99_ms": round(1000 * _percentile(rtts, 0.99), 1),
        "ping_max_ms": round(1000 * max(rtts, default=float("nan")), 1), "pings": len(rtts),
        "ping_failures": ping_failures[:5], "peak_sessions": sampler.peak_sessions,
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1), "peak_pss_mb": round(sampler.peak_pss / 2**20, 1),
        "load_average": load_average, "peak_rss_parts_mb": [p >> 20 for p in sampler.peak_parts],
        "files_left": files_left,
        "phases_mean_s": _mean_phases([ph for o, _, ph in out["outcomes"] if o == "ok"]),
        "cpu_s": cpu if pid is not None else None,  # CPU seconds during the flows, by process kind
    }


def _mean_phases(phases: list[dict]) -> dict[str, float]:
    """Mean seconds of each phase over the completed flows."""
    keys = sorted({k for ph in phases for k in ph}, key=lambda k: (k.startswith("job"), k))
    return {k: round(sum(ph.get(k, 0.0) for ph in phases) / len(phases), 3) for k in keys} if phases else {}


def run(connections: int = 200, flows: int = 150, quality: str = "standard", models: str = "models",
        workers: int | None = None, queue: int | None = None, processes: int | None = None) -> dict:
    """Against a server of our own: started, warmed up (one flow per worker), measured."""
    from server.testing import ServerProcess

    # room for all the connections and the warm-up's; the pinging ones send no message (a
    # ping is no request) and would be closed as idle in a run longer than the default 300 s
    args = ["--max-clients", str(connections + 64), "--idle-timeout", "3600"]
    if queue is not None:
        args += ["--queue", str(queue)]
    if processes is not None:
        args += ["--processes", str(processes)]
    with tempfile.TemporaryDirectory(prefix="musicoder-load-") as tmp:
        data = os.path.join(tmp, "data")
        with ServerProcess(data, *args, models=models, workers=workers, ready_timeout=180) as srv:
            workers = srv.health()["workers"]
            warm = asyncio.run(_load(srv.url, workers, quality))  # caches warm before measuring
            if any(o != "ok" for o, _, _ in warm["outcomes"]):
                raise RuntimeError(f"the warm-up failed: {warm['outcomes']}\n{srv.log()[-3000:]}")
            result = measure(srv.url, connections, flows, quality, srv.proc.pid, data)
            health = srv.health()
    return {**result, "models": models, "workers": workers, "processes": health["processes"], "cores": usable_cores(),
            "queue": health["queue_limit"],
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
             f"{r.get('workers', '?')} workers in {r.get('processes', '?')} process(es), queue {r.get('queue', '?')}; "
             f"{r['seconds']:.1f} s; load average {r.get('load_average', float('nan')):.1f} at the start", head, row]
    if "peak_rss_server_mb" in r:
        lines.append(f"peak RSS: at the whole server's peak, each process {r['peak_rss_parts_mb']} MB (the server "
                     f"first); each process's own peak: server {r['peak_rss_server_mb']:.0f} MB, "
                     f"workers {r['peak_rss_workers_mb']:.0f} MB")
    if r.get("peak_pss_mb"):
        lines.append(f"peak PSS (shared pages counted once, every 250 ms): {r['peak_pss_mb']:.0f} MB")
    if r.get("phases_mean_s"):
        lines.append("per completed flow, mean wall s: " + ", ".join(f"{k} {v:.2f}" for k, v in r["phases_mean_s"].items()))
    if r.get("cpu_s") and r["completed"]:
        cpu, n = r["cpu_s"], r["completed"]
        total = sum(v for k, v in cpu.items() if k != "pinger")
        lines.append("CPU s per completed flow: " + ", ".join(f"{k} {v / n:.2f}" for k, v in cpu.items())
                     + f"; server + client {total / n:.2f} → at most {60 * r.get('cores', 1) * n / total:.0f} flows/min "
                       f"on {r.get('cores', 1)} cores (busy flows' uploads included)")
    if r["other_reasons"]:
        lines.append(f"other failures: {r['other_reasons']}")
    if r["ping_failures"]:
        lines.append(f"idle connections that failed: {r['ping_failures']}")
    lines.append(f"goals (every flow done or busy, no files left, ping p99 < {1000 * PING_TARGET_S:.0f} ms, "
                 f"RSS <= {RSS_TARGET_BYTES / 1e9:.1f} GB): {'met' if goals_met(r) else 'NOT met'}; "
                 f"throughput >= {THROUGHPUT_TARGET_PER_MIN:.0f} flows/min (2 cores, Standard): "
                 f"{'met' if r['throughput_per_min'] >= THROUGHPUT_TARGET_PER_MIN else 'not met'}")
    return "\n".join(lines)


# ---- the pool alone: processes against threads --------------------------------------------------

async def _pool_round(window: str, jobs: int, workers: int, processes: int, quality: str, models: str) -> dict:
    """One pool of ``workers`` slots in ``processes`` processes: ``jobs`` conversions of the
    window submitted at once; wall seconds to the last result and the workers' CPU seconds
    (their start-up excluded)."""
    from server.pool import Done, ProcessPool
    from server.worker import JobSpec

    pool = ProcessPool(workers=workers, processes=processes, queue=jobs, models=models)
    await pool.start()
    try:
        while pool.stats()["workers_ready"] < workers:
            await asyncio.sleep(0.05)
        pids = pool.stats()["worker_pids"]
        cpu0 = sum(sum(cpu_seconds(p)) for p in pids)
        t0 = time.perf_counter()
        handles = [pool.submit(JobSpec(window_path=window, seconds=10.0, texture=TEXTURES[i % len(TEXTURES)],
                                       quality=quality, format="wav", normalize=True, title="pool")) for i in range(jobs)]
        for h in handles:
            while not isinstance(ev := await h.events.get(), Done):
                if ev.__class__.__name__ in ("Failed", "JobCancelled"):
                    raise RuntimeError(f"a pool job ended with {ev}")
        wall = time.perf_counter() - t0
        return {"wall_s": wall, "jobs_per_min": 60 * jobs / wall,
                "cpu_per_job_s": (sum(sum(cpu_seconds(p)) for p in pids) - cpu0) / jobs}
    finally:
        await pool.close()


def pool_ab(rounds: int = 4, jobs: int = 16, quality: str = "standard", models: str = "models") -> dict:
    """Conversions alone (no network, no decoding), one single-slot process per core
    against one process with a thread per core, in turn for ``rounds`` rounds: the two
    see the same load from whatever else runs on the machine."""
    from musicoder import audio

    cores = usable_cores()
    shapes = {f"{cores} processes x 1": cores, f"1 process x {cores} threads": 1}
    out: dict[str, list[dict]] = {name: [] for name in shapes}
    with tempfile.TemporaryDirectory(prefix="musicoder-pool-") as tmp:
        window = os.path.join(tmp, "window.f32")
        audio.load(DEMO_CLIP, 5.0, 10.0).samples.astype("<f4").tofile(window)
        for i in range(rounds):
            for name, processes in shapes.items():
                r = asyncio.run(_pool_round(window, jobs, cores, processes, quality, models))
                out[name].append(r)
                print(f"round {i + 1}, {name}: {r['jobs_per_min']:.1f} jobs/min, {r['cpu_per_job_s']:.2f} CPU s "
                      f"per job (load average {os.getloadavg()[0]:.1f})", flush=True)
    for name, rs in out.items():
        print(f"{name}: median {_percentile([r['jobs_per_min'] for r in rs], 0.5):.1f} jobs/min, "
              f"{_percentile([r['cpu_per_job_s'] for r in rs], 0.5):.2f} CPU s per job ({rounds} rounds of {jobs} "
              f"{quality} conversions of a 10 s window)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=200, help="connections open at once (default 200)")
    ap.add_argument("--flows", type=int, default=150, help="of them, running the full flow at once (default 150)")
    ap.add_argument("--quality", default="standard")
    ap.add_argument("--models", default="models", help="texture model module (default models)")
    ap.add_argument("--workers", type=int, default=None, help="conversions at once (default: the server's, one per core)")
    ap.add_argument("--processes", type=int, default=None, help="worker processes they run in (default: the server's)")
    ap.add_argument("--queue", type=int, default=None, help="the server's queue limit (default: its own)")
    ap.add_argument("--url", help="load this server instead of starting one (ws://HOST:PORT)")
    ap.add_argument("--data-dir", help="with --url: its data dir, to count the files left")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pool-only", type=int, metavar="ROUNDS", default=0,
                    help="instead: the worker pool alone, processes against threads, ROUNDS rounds in turn")
    ap.add_argument("--jobs", type=int, default=16, help="with --pool-only: conversions per round (default 16)")
    a = ap.parse_args(argv)
    if a.pool_only:
        result = pool_ab(a.pool_only, a.jobs, a.quality, a.models)
        if a.json:
            print(json.dumps(result))
        return 0
    if not 1 <= a.flows < a.connections:
        ap.error("need 1 <= flows < connections (the rest stay idle and measure ping)")
    raise_open_files_limit()  # N client sockets need more than the usual 1024
    if a.url:
        result = measure(a.url, a.connections, a.flows, a.quality, None, a.data_dir)
    else:
        result = run(a.connections, a.flows, a.quality, a.models, a.workers, a.queue, a.processes)
    print(table(result))
    if a.json:
        print(json.dumps(result))
    return 0 if goals_met(result) else 1


if __name__ == "__main__":
    sys.exit(main())
