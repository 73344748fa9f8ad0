"""The Ray path against the local worker pool, on this machine.

    python -m bench.ray_scaling [--flows 24] [--nodes 1,2] [--repeats 8] [--quality standard] [--idle 1000]
                                [--song-seconds 300] [--song-only] [--json]

Overhead: one whole flow at a time (upload the demo clip, choose a 10 s window,
convert, download), the median of ``repeats`` after one warm-up, through a front end
calling one replica of the Ray Serve deployment on a one-node Ray cluster (``--ray``),
against a server with one local worker process (the reference) in the same run; both
jobs compute on every core (the replica reserves them all: ``--ray-actor-cpus``).
Target: at most 15 % slower.

Throughput: ``flows`` flows at once (all connected first, then started together), in
flows per minute, through a front end and N replicas (autoscaling fixed at N) on N
single-CPU Ray nodes, for each N in ``--nodes``, beside the local pool with N worker
processes. On a machine with more
cores (the device machine's 16) ``--nodes 1,2,4,8`` gives the scaling: flows/min at N
over N × flows/min at 1 (target ≥ 0.8 at 8).

Idle connections: ``idle`` clients connected and greeted, then left idle for
``IDLE_SECONDS`` (pings only): the front end's resident memory and CPU per connection,
for the capacity plan of deploy/README.md.

One long song: a ``song_seconds`` (5-minute) stereo song (the demo clip over and over
at varied gains) converted whole, from the convert request to the result, through a
front end and N single-CPU replicas on N single-CPU nodes for each N in ``--nodes``: at
N ≥ 2 the pool cuts it into N parts that convert at once (``server.ray_pool``), beside
the whole song converted by one local process on every core (``musicoder.convert``).
Nodes on one machine share its cores: 2 nodes on a 2-core machine are 2 cores, as is
the one local process.

The clusters are Ray's own ``cluster_utils.Cluster`` on loopback (server.testing).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import os
import time

import numpy as np

from server.config import usable_cores
from server.testing import REPO, LocalRayCluster, ServerProcess

from .server_load import _flow, _load

OVERHEAD_TARGET = 1.15
IDLE_SECONDS = 30.0
SCALING_TARGET = 0.8
SONG_TEXTURE = "laser"


async def _one(url: str, quality: str) -> float:
    go, connected = asyncio.Event(), asyncio.Semaphore(0)
    go.set()
    outcome, seconds, _ = await _flow(url, 0, quality, go, connected)
    if outcome != "ok":
        raise RuntimeError(f"a flow failed: {outcome}")
    return seconds


def sequential(urls: list[str], repeats: int, quality: str) -> list[float]:
    """Median seconds of one whole flow through each of ``urls``, after one warm-up each;
    the flows take turns (one through each, ``repeats`` times), so that a machine's
    changing load weighs on every server alike."""
    for url in urls:
        asyncio.run(_one(url, quality))
    times: list[list[float]] = [[] for _ in urls]
    for _ in range(repeats):
        for i, url in enumerate(urls):
            times[i].append(asyncio.run(_one(url, quality)))
    return [statistics.median(t) for t in times]


def throughput(url: str, flows: int, quality: str) -> dict:
    r = asyncio.run(_load(url, flows, quality))
    ok = sum(1 for outcome, _, _ in r["outcomes"] if outcome == "ok")
    return {"flows": flows, "ok": ok, "wall": round(r["wall"], 2), "per_minute": round(60 * ok / r["wall"], 1)}


def idle_cost(server: ServerProcess, connections: int) -> dict:
    """The front end's RSS and CPU (its own process) per idle connection."""
    import client

    from server.app import rss

    from .server_load import cpu_seconds

    pid = server.proc.pid

    async def hold() -> dict:
        before = rss(pid)[0]
        clients = [client.Client(server.url, name=f"idle-{i}", open_timeout=60) for i in range(connections)]
        for i in range(0, connections, 50):  # in bursts of 50, as users arrive
            await asyncio.gather(*(c.connect() for c in clients[i:i + 50]))
        await asyncio.sleep(2)
        held = rss(pid)[0]
        cpu0, t0 = cpu_seconds(pid)[0], time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)
        cpu = (cpu_seconds(pid)[0] - cpu0) / (time.monotonic() - t0)
        await asyncio.gather(*(c.close() for c in clients))
        return {"connections": connections, "rss_before_mib": round(before / 2**20, 1),
                "rss_held_mib": round(held / 2**20, 1), "kib_per_connection": round((held - before) / 1024 / connections, 1),
                "cpu_fraction": round(cpu, 4), "cpu_per_connection": cpu / connections}

    return asyncio.run(hold())


def _local(data_dir: str, workers: int) -> ServerProcess:
    return ServerProcess(data_dir, "--queue", "256", "--max-clients", "512", workers=workers, ready_timeout=120)


def _front_end(data_dir: str, cluster: LocalRayCluster, replicas: int, actor_cpus: int = 1) -> ServerProcess:
    """A front end that deploys ``replicas`` replicas (no more, no fewer) of ``actor_cpus`` CPUs."""
    return ServerProcess(data_dir, "--ray", cluster.address, "--ray-actor-cpus", str(actor_cpus),
                         "--ray-min-replicas", str(replicas), "--ray-max-replicas", str(replicas), "--queue", "256",
                         "--queue-timeout", "600", "--max-clients", "5000", "--idle-timeout", "3600", env=cluster.env,
                         workers=None, ready_timeout=180)


def demo_song(seconds: float) -> np.ndarray:
    """(2, seconds at 44.1 kHz) float32 stereo music: the demo clip over and over, each pass
    at its own gain (−14..0 dB) and every third with its channels swapped, so that no two
    blocks of the engine's are alike."""
    from musicoder import audio

    clip = audio.load(os.path.join(REPO, "examples", "demo.ogg"), duration=None, stereo=True).samples
    n = int(round(seconds * audio.SAMPLE_RATE))
    rng = np.random.default_rng(7)
    passes = []
    for i in range(-(-n // clip.shape[1])):
        x = clip * np.float32(10 ** (-rng.uniform(0, 14) / 20))
        passes.append(x[::-1] if i % 3 == 2 else x)
    return np.ascontiguousarray(np.concatenate(passes, axis=1)[:, :n])


def _song_flow(url: str, song: bytes, quality: str) -> tuple[float, dict]:
    """Seconds from the whole song's convert request to its result, and its stage timings."""
    import client

    async def flow():
        async with client.Client(url, name="song", open_timeout=60) as c:
            await c.upload(song, name="song.wav")
            t0 = time.perf_counter()
            r = await c.convert(SONG_TEXTURE, quality, "flac", whole=True)
            return time.perf_counter() - t0, r.timings

    return asyncio.run(flow())


def long_song(tmp: str, nodes: tuple[int, ...], seconds: float, quality: str) -> dict:
    """One ``seconds`` stereo song converted whole: by one local process (in this one, on
    every core) and through a front end on N single-CPU nodes and replicas for each N."""
    import io

    import soundfile

    import models
    from musicoder import convert

    song = demo_song(seconds)
    t0 = time.perf_counter()
    convert.convert(song, quality, models.resolve(SONG_TEXTURE).transfer)
    out = {"seconds": seconds, "quality": quality, "local_s": round(time.perf_counter() - t0, 2), "ray": []}
    buf = io.BytesIO()
    soundfile.write(buf, song.T, 44100, format="WAV", subtype="FLOAT")
    data = buf.getvalue()
    for n in nodes:
        with LocalRayCluster(nodes=n, cpus=1) as cluster, _front_end(f"{tmp}/song{n}", cluster, n) as fe:
            took, timings = _song_flow(fe.url, data, quality)
        out["ray"].append({"nodes": n, "seconds": round(took, 2),
                           "timings": {k: round(v, 2) for k, v in timings.items()}})
    return out


def run(flows: int = 24, nodes: tuple[int, ...] = (1, 2), repeats: int = 8, quality: str = "standard",
        idle: int = 1000, song_seconds: float = 300.0, song_only: bool = False) -> dict:
    out: dict = {"quality": quality, "flows": flows, "repeats": repeats, "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        if song_seconds:
            out["song"] = long_song(tmp, nodes, song_seconds, quality)
        if song_only:
            return out
        # one worker process alone uses every core (its compute threads): so does the one replica here
        cores = usable_cores()
        with _local(f"{tmp}/local1", 1) as srv, LocalRayCluster(nodes=1, cpus=cores) as cluster, \
                _front_end(f"{tmp}/ray1", cluster, 1, cores) as fe:
            local_s, ray_s = sequential([srv.url, fe.url], repeats, quality)
            out["local_one_flow_s"], out["ray_one_flow_s"] = round(local_s, 3), round(ray_s, 3)
            if idle:
                out["idle"] = idle_cost(fe, idle)
        out["overhead"] = round(out["ray_one_flow_s"] / out["local_one_flow_s"], 3)
        for n in nodes:
            with _local(f"{tmp}/local{n}x", n) as srv:
                local = throughput(srv.url, flows, quality)
            with LocalRayCluster(nodes=n, cpus=1) as cluster, _front_end(f"{tmp}/ray{n}x", cluster, n) as fe:
                t0 = time.monotonic()
                ray = throughput(fe.url, flows, quality)
                ray["seconds"] = round(time.monotonic() - t0, 1)
            out["throughput"].append({"nodes": n, "local": local, "ray": ray})
    base = out["throughput"][0]["ray"]["per_minute"] / out["throughput"][0]["nodes"] if out["throughput"] else 0
    for row in out["throughput"]:
        row["ray"]["of_linear"] = round(row["ray"]["per_minute"] / (base * row["nodes"]), 2) if base else None
    return out


def song_table(r: dict) -> list[str]:
    s = r["song"]
    lines = [f"One {s['seconds'] / 60:g}-minute stereo song converted whole ({s['quality']}):",
             f"  one local process, every core: {s['local_s']:.1f} s"]
    for row in s["ray"]:
        lines.append(f"  Ray Serve, {row['nodes']} node(s) of 1 CPU, {row['nodes']} part(s): {row['seconds']:.1f} s "
                     f"({s['local_s'] / row['seconds']:.2f}× the local process)")
    return lines


def table(r: dict) -> str:
    if "overhead" not in r:
        return "\n".join(song_table(r))
    lines = [*(song_table(r) if "song" in r else []),f"One whole flow ({r['quality']}, demo clip, 10 s window), median of {r['repeats']}:",
             f"  local pool, 1 worker process: {r['local_one_flow_s']:.3f} s",
             f"  Ray Serve, 1 replica, 1 node:  {r['ray_one_flow_s']:.3f} s  ({100 * (r['overhead'] - 1):+.1f} %; "
             f"target ≤ {100 * (OVERHEAD_TARGET - 1):.0f} %: {'met' if r['overhead'] <= OVERHEAD_TARGET else 'missed'})",
             *([f"{r['idle']['connections']} idle connections on a front end: "
                f"{r['idle']['kib_per_connection']:.0f} KiB each ({r['idle']['rss_before_mib']:.0f} → "
                f"{r['idle']['rss_held_mib']:.0f} MiB), {100 * r['idle']['cpu_fraction']:.2f} % of a core for all"]
               if "idle" in r else []),
             f"{r['flows']} flows at once, flows per minute:",
             "  nodes/replicas | Ray (of linear) | local pool, as many processes"]
    for row in r["throughput"]:
        ray, local = row["ray"], row["local"]
        lines.append(f"  {row['nodes']:>14} | {ray['per_minute']:>6.1f} ({ray['of_linear']:.2f}) "
                     f"[{ray['ok']}/{ray['flows']} ok] | {local['per_minute']:>6.1f} [{local['ok']}/{local['flows']} ok]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ray_scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--flows", type=int, default=24)
    p.add_argument("--nodes", default="1,2", help="comma-separated node counts (one replica per node)")
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--quality", default="standard")
    p.add_argument("--idle", type=int, default=1000, help="idle connections held on a front end (0: none)")
    p.add_argument("--song-seconds", type=float, default=300.0, help="the long song's length (0: none)")
    p.add_argument("--song-only", action="store_true", help="only the long song's rows")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = run(args.flows, tuple(int(n) for n in args.nodes.split(",") if n), args.repeats, args.quality, args.idle,
            args.song_seconds, args.song_only)
    print(table(r))
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
