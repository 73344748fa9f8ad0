"""Server row of the benchmark: N concurrent scripted clients doing the full flow.

    python -m bench.server_load [--clients 8] [--rounds 2] [--quality standard]
                                [--models models] [--workers 2] [--json]

Starts a real server (127.0.0.1, a free port, a temporary data dir), then N clients
at once each: connect, upload the demo clip, take the default 10 s window, convert
``rounds`` times (textures in turn). Meanwhile one more connection pings the server
every 50 ms (WebSocket ping → pong: the event loop's responsiveness while the workers
convert), and a sampler reads the resident memory of the server and its workers
every 50 ms from /proc. Reports throughput (conversions/min), conversion latency p50 /
p99 (convert sent → result received, queueing included), ping round trip p50 / p99,
and peak RSS of the server and its workers together. Targets on this 2-core machine:
ping p99 < 100 ms during conversions, peak RSS ≤ 1.3 GB. ``--json``: one JSON object
as the last line.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time

DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "demo.ogg")
PING_TARGET_S = 0.100
RSS_TARGET_BYTES = 1.3e9
TEXTURES = ("laser", "water", "future")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class RssSampler(threading.Thread):
    """Peak of (server RSS + its child processes' RSS), sampled every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.peak_server = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            server = _rss(self.pid)
            total = server + sum(_rss(c) for c in _children(self.pid))
            self.peak = max(self.peak, total)
            self.peak_server = max(self.peak_server, server)
            self.stop.wait(0.05)


async def _client(url: str, index: int, rounds: int, quality: str, latencies: list[float]) -> None:
    import client

    async with client.Client(url, name=f"bench-{index}", request_timeout=600) as c:
        await c.upload(DEMO_CLIP)
        for r in range(rounds):
            t0 = time.perf_counter()
            await c.convert(TEXTURES[(index + r) % len(TEXTURES)], quality, "wav")
            latencies.append(time.perf_counter() - t0)


async def _pinger(url: str, rtts: list[float], stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, ping_interval=None) as ws:
        while not stop.is_set():
            t0 = time.perf_counter()
            pong = await ws.ping()
            await asyncio.wait_for(pong, 10)
            rtts.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)


async def _load(url: str, clients: int, rounds: int, quality: str) -> dict:
    latencies: list[float] = []
    rtts: list[float] = []
    stop = asyncio.Event()
    pinger = asyncio.create_task(_pinger(url, rtts, stop))
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(url, i, rounds, quality, latencies) for i in range(clients)))
    wall = time.perf_counter() - t0
    stop.set()
    await pinger
    return {"latencies": latencies, "rtts": rtts, "wall": wall}


def run(clients: int = 8, rounds: int = 2, quality: str = "standard", models: str = "models",
        workers: int = 2) -> dict:
    from server.testing import ServerProcess

    with tempfile.TemporaryDirectory(prefix="musicoder-bench-") as tmp:
        with ServerProcess(os.path.join(tmp, "data"), "--queue", str(max(32, clients * rounds)), models=models,
                           workers=workers, ready_timeout=180) as srv:
            # one conversion per worker first: models loaded (TensorFlow, ~10 s), caches warm
            asyncio.run(_load(srv.url, workers, 1, quality))
            sampler = RssSampler(srv.proc.pid)
            sampler.start()
            out = asyncio.run(_load(srv.url, clients, rounds, quality))
            sampler.stop.set()
            sampler.join()
            health = srv.health()
    lat, rtts = out["latencies"], out["rtts"]
    return {
        "clients": clients, "rounds": rounds, "quality": quality, "models": models, "workers": workers,
        "conversions": len(lat), "seconds": round(out["wall"], 2),
        "throughput_per_min": round(60 * len(lat) / out["wall"], 2),
        "latency_p50_s": round(_percentile(lat, 0.5), 3), "latency_p99_s": round(_percentile(lat, 0.99), 3),
        "ping_p50_ms": round(1000 * _percentile(rtts, 0.5), 2), "ping_p99_ms": round(1000 * _percentile(rtts, 0.99), 2),
        "ping_max_ms": round(1000 * max(rtts, default=float("nan")), 2), "pings": len(rtts),
        "peak_rss_mb": round(sampler.peak / 2**20, 1), "peak_rss_server_mb": round(sampler.peak_server / 2**20, 1),
        "failed": health["failed"], "restarts": health["restarts"],
    }


def table(r: dict) -> str:
    ok_ping = r["ping_p99_ms"] < 1000 * PING_TARGET_S
    ok_rss = r["peak_rss_mb"] * 2**20 <= RSS_TARGET_BYTES
    return "\n".join([
        f"server: {r['clients']} clients x {r['rounds']} conversions, {r['quality']}, 10 s window, models "
        f"{r['models']}, {r['workers']} workers",
        f"{'conversions':>11s} {'s':>7s} {'per min':>8s} {'p50 s':>7s} {'p99 s':>7s} | {'ping p50':>8s} "
        f"{'p99 ms':>7s} | {'peak RSS MB':>11s} (server)",
        f"{r['conversions']:11d} {r['seconds']:7.1f} {r['throughput_per_min']:8.1f} {r['latency_p50_s']:7.2f} "
        f"{r['latency_p99_s']:7.2f} | {r['ping_p50_ms']:8.1f} {r['ping_p99_ms']:7.1f} | {r['peak_rss_mb']:11.0f} "
        f"({r['peak_rss_server_mb']:.0f})",
        f"targets: ping p99 < {1000 * PING_TARGET_S:.0f} ms {'yes' if ok_ping else 'NO'}, "
        f"peak RSS <= {RSS_TARGET_BYTES / 1e9:.1f} GB {'yes' if ok_rss else 'NO'}; failed jobs {r['failed']}",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.server_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quality", default="standard")
    ap.add_argument("--models", default="models", help="texture model module (default models)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    result = run(a.clients, a.rounds, a.quality, a.models, a.workers)
    print(table(result))
    if a.json:
        print(json.dumps(result))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
