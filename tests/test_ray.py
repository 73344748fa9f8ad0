"""Front ends on a Ray cluster (``musicoder-server --ray``), on one machine: Ray's own
``cluster_utils.Cluster`` with two worker nodes (2 CPUs each: two front ends of two
actors fit), loopback only (server.testing.LocalRayCluster). The real textures.

Two front ends sharing the cluster serve the whole flow (with Cancel and a user's own
exemplar); a node removed mid-job gets its job retried on another actor or ended with
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


def front_end(tmp_path, cluster: LocalRayCluster, name: str) -> ServerProcess:
    return ServerProcess(tmp_path / name, "--ray", cluster.address, "--cancel-grace", "5", env=cluster.env,
                         workers=ACTORS, models="models", ready_timeout=120)


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

        run(both(), timeout=240)
        for server in (a, b):
            h = wait_clean(server, timeout=30)
            assert h["failed"] == 0 and h["restarts"] == 0 and "Traceback" not in server.log(), h
        assert a.health()["completed"] == 2 and b.health()["completed"] == 1


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
