"""The Ray path against the local worker pool, on this machine.

    python -m bench.ray_scaling [--flows 24] [--nodes 1,2] [--repeats 8] [--quality standard] [--idle 1000] [--json]

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

The clusters are Ray's own ``cluster_utils.Cluster`` on loopback (server.testing).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time

from server.config import usable_cores
from server.testing import LocalRayCluster, ServerProcess

from .server_load import _flow, _load

OVERHEAD_TARGET = 1.15
IDLE_SECONDS = 30.0
SCALING_TARGET = 0.8


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


def run(flows: int = 24, nodes: tuple[int, ...] = (1, 2), repeats: int = 8, quality: str = "standard",
        idle: int = 1000) -> dict:
    out: dict = {"quality": quality, "flows": flows, "repeats": repeats, "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
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


def table(r: dict) -> str:
    lines = [f"One whole flow ({r['quality']}, demo clip, 10 s window), median of {r['repeats']}:",
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
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = run(args.flows, tuple(int(n) for n in args.nodes.split(",") if n), args.repeats, args.quality, args.idle)
    print(table(r))
    if args.json:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
