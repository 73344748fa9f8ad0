"""Front ends on a Ray cluster (``musicoder-server --ray``), on one machine: Ray's own
``cluster_utils.Cluster`` with two worker nodes (2 CPUs each: two front ends of two
actors fit), loopback only (server.testing.LocalRayCluster). The real textures.

Two front ends sharing the cluster serve the whole flow (with Cancel, a disconnect
mid-job and a user's own exemplar); ``busy`` counts the jobs waiting on every front end;
a node removed mid-job gets its job retried on another actor or ended with
worker_failed, and nothing hangs or stays on disk; a front end killed mid-job has its
actors (and so its job) ended on the cluster, while the client, given both addresses,
fails over to the other front end and gets its result.

Needs the ray extra (``pip install '.[ray]'``); skipped without it, except where
MUSICODER_REQUIRE_RAY=1 (CI) makes its absence a failure.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

if os.environ.get("MUSICODER_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")

import client
import protocol
from server.testing import REPO, LocalRayCluster, ServerProcess

from .test_server import run, wait_clean, wav_bytes
from .test_server_lifecycle import _gone, _wait

pytestmark = pytest.mark.ray
ACTORS = 2  # per front end


@pytest.fixture(scope="module")
def cluster():
    with LocalRayCluster(nodes=2, cpus=2) as c:
        yield c


def front_end(tmp_path, cluster: LocalRayCluster, name: str, *args: str, workers: int = ACTORS) -> ServerProcess:
    return ServerProcess(tmp_path / name, "--ray", cluster.address, "--cancel-grace", "5", *args, env=cluster.env,
                         workers=workers, models="models", ready_timeout=120)


def busy_actor(server: ServerProcess) -> dict:
    h = server.wait_health(lambda h: any(a["busy"] for a in h["actors"]), timeout=10)
    return next(a for a in h["actors"] if a["busy"])


async def full_flow(url, song: bytes, texture: str = "laser", exemplar: bytes | None = None) -> client.Result:
    async with client.Client(url, name="ray-test") as c:
        await c.upload(song, name="song.wav")
        await c.clip(1.0, 4.0)
        if exemplar is not None:
            await c.upload_exemplar(exemplar, name="mine.wav")
            texture = protocol.EXEMPLAR
        r = await c.convert(texture, "standard", "flac")
        assert abs(r.duration - 4.0) < 0.05 and r.audio[:4] == b"fLaC" and r.spectrogram[:4] == b"\x89PNG"
        return r


def test_two_front_ends_share_the_cluster_and_serve_the_whole_flow(tmp_path, cluster):
    song = wav_bytes(8.0)
    with front_end(tmp_path, cluster, "a") as a, front_end(tmp_path, cluster, "b") as b:
        view = a.wait_health(lambda h: h["cluster"]["actors_ready"] == 2 * ACTORS, timeout=10)["cluster"]
        assert view["front_ends"] == 2 and view["actors"] == view["actors_ready"] == 2 * ACTORS, view
        assert view["nodes_alive"] == 3 and view["cpus"] == 4, view  # the head and two worker nodes
        assert {x["node_id"] for x in a.health()["actors"]} == {x["node_id"] for x in b.health()["actors"]}, \
            "each front end's actors spread over both nodes"

        async def both():
            await asyncio.gather(full_flow(a.url, song), full_flow(b.url, song, exemplar=wav_bytes(3.0)))

            async with client.Client(a.url, name="ray-cancel") as c:  # Cancel reaches the Ray task
                await c.upload(wav_bytes(60.0), name="long.wav")
                await c.clip(0.0, 60.0)
                started, job = asyncio.Event(), []
                task = asyncio.create_task(c.convert(
                    "water", "hifi", "wav", on_accepted=lambda j, _: job.append(j),
                    on_progress=lambda stage, *_: stage != "queued" and started.set()))
                await started.wait()
                await c.cancel(job[0])
                with pytest.raises(client.JobCancelled):
                    await task
                r = await c.convert("future", "lofi", "flac")  # the actor is free again
                assert abs(r.duration - 60.0) < 0.05

            c = client.Client(b.url, name="ray-gone")  # a disconnect mid-job cancels its Ray task
            await c.connect()
            await c.upload(wav_bytes(60.0), name="long.wav")
            await c.clip(0.0, 60.0)
            started = asyncio.Event()
            task = asyncio.create_task(c.convert("laser", "hifi", "wav",
                                                 on_progress=lambda stage, *_: stage != "queued" and started.set()))
            await started.wait()
            await c.close()
            with pytest.raises(client.ConnectionFailed):
                await task

        run(both(), timeout=240)
        for server in (a, b):
            h = wait_clean(server, timeout=30)
            assert h["failed"] == 0 and h["restarts"] == 0 and "Traceback" not in server.log(), h
        assert a.health()["completed"] == 2 and b.health()["completed"] == 1
        assert "job 1 cancelled" in b.log() or "1 job(s) cancelled" in b.log(), b.log()[-2000:]


def test_busy_counts_the_jobs_waiting_across_the_cluster(tmp_path, cluster):
    """One actor and a queue of 2 on each front end: b's two waiting jobs fill the
    cluster's queue, so a's second job is refused with busy though a's own queue is empty."""
    song = wav_bytes(120.0)  # long jobs: b's first must still run when a's second is refused
    longer = ("--queue", "2", "--max-window-seconds", "120")
    with front_end(tmp_path, cluster, "a", *longer, workers=1) as a, \
            front_end(tmp_path, cluster, "b", *longer, workers=1) as b:
        async def flow():
            clients = [client.Client(url, name=f"ray-busy-{i}") for i, url in enumerate([b.url] * 3 + [a.url] * 2)]
            for c in clients:
                await c.connect()
                await c.upload(song, name="long.wav")
                await c.clip(0.0, 120.0)
            jobs = [asyncio.create_task(c.convert("water", "hifi", "wav")) for c in clients[:3]]  # b: one runs, two wait
            view = await asyncio.to_thread(a.wait_health, lambda h: h["cluster"]["queued"] == 2, 15)
            assert view["cluster"]["queued"] == 2, view["cluster"]
            first = asyncio.create_task(clients[3].convert("water", "hifi", "wav"))  # a's actor is free: it runs
            await asyncio.to_thread(a.wait_health, lambda h: h["running"] == 1, 10)
            with pytest.raises(client.ServerError) as refused:
                await clients[4].convert("water", "hifi", "wav")  # it would wait: the cluster's queue is full
            assert refused.value.code == "busy", refused.value
            results = await asyncio.gather(first, *jobs)
            assert all(abs(r.duration - 120.0) < 0.05 for r in results)
            for c in clients:
                await c.close()

        run(flow(), timeout=240)
        wait_clean(a)
        wait_clean(b)


def test_a_node_lost_mid_job_is_retried_or_ends_with_worker_failed(tmp_path, cluster):
    with front_end(tmp_path, cluster, "a") as a:
        async def flow():
            async with client.Client(a.url, name="ray-node-loss") as c:
                await c.upload(wav_bytes(60.0), name="long.wav")
                await c.clip(0.0, 60.0)
                removed = []

                def on_progress(*_):
                    if not removed:
                        removed.append(busy_actor(a))
                        cluster.remove_node(cluster.node_of(removed[0]["node_id"]))

                t0 = time.monotonic()
                try:
                    r = await c.convert("laser", "hifi", "wav", on_progress=on_progress)
                    outcome = "retried" if abs(r.duration - 60.0) < 0.05 else "bad result"
                except client.ServerError as err:
                    outcome = err.code
                return outcome, time.monotonic() - t0, removed

        outcome, seconds, removed = run(flow(), timeout=180)
        assert removed, "the job ran no progress"
        assert outcome in ("retried", "worker_failed"), outcome
        h = wait_clean(a, timeout=30)
        assert (h["retried"], h["failed"]) in ((1, 0), (1, 1)), h
        assert h["restarts"] >= 1, h  # the lost actor is replaced

        cluster.add_node()  # the cluster heals: the replacement finds a place
        h = a.wait_health(lambda h: h["workers_ready"] == ACTORS, timeout=60)
        assert h["workers_ready"] == ACTORS, h
        run(full_flow(a.url, wav_bytes(6.0)))
        wait_clean(a)
        print(f"node lost mid-job: {outcome} after {seconds:.1f} s")


def test_a_front_end_killed_mid_job_ends_its_jobs_and_the_client_fails_over(tmp_path, cluster):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(40.0))
    with front_end(tmp_path, cluster, "a") as a, front_end(tmp_path, cluster, "b") as b:
        killed = []

        def on_progress(stage, fraction):
            if not killed and stage not in ("uploading", "queued"):
                actor = busy_actor(b)
                b.kill9()
                killed.append(actor)

        info = client.convert_file([b.url, a.url], song, tmp_path / "out.flac", "water", "hifi", duration=30.0,
                                   on_progress=on_progress, retry_delays=(0.5, 1, 2))
        assert killed, "front end b ran no job"
        assert info.url == a.url and abs(info.duration - 30.0) < 0.05, info
        assert (tmp_path / "out.flac").stat().st_size > 0
        # Ray ends the dead front end's actors, and so the job it was running
        assert _wait(lambda: _gone(killed[0]["pid"]), 30), f"actor {killed[0]} of the killed front end still runs"
        h = a.wait_health(lambda h: h["cluster"]["front_ends"] == 1, timeout=15)
        assert h["cluster"]["front_ends"] == 1 and h["cluster"]["actors"] == ACTORS, h["cluster"]
        run(full_flow(a.url, wav_bytes(6.0)))
        h = wait_clean(a)
        assert h["failed"] == 0 and "Traceback" not in a.log(), h


def test_an_address_with_no_cluster_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "server", "--ray", "127.0.0.1:1", "--port", "0",
                        "--data-dir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "no Ray cluster answers at 127.0.0.1:1" in r.stderr, r.stderr


def test_auto_takes_ray_address(monkeypatch):
    from server.ray_pool import resolve_address

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve_address("auto") == "10.0.0.1:6379" and resolve_address("10.0.0.9:6379") == "10.0.0.9:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    assert resolve_address("auto") == "auto"  # Ray's own detection: this machine's node
