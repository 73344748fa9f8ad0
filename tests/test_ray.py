"""Front ends on a Ray cluster (``musicoder-server --ray``), on one machine: Ray's own
``cluster_utils.Cluster`` (server.testing.LocalRayCluster), loopback only: a head with
no CPU and one worker node of 2 CPUs, as the deploy README's one-machine try. The real
textures, through the Ray Serve deployment the front ends share.

Two front ends started with default flags both convert (with Cancel, a disconnect
mid-job, a user's own exemplar and a whole stereo song); a replica killed mid-job gets its job retried; a
front end killed mid-job leaves its client to fail over to the other; a cluster at
capacity answers ``busy`` within a second and a job no replica starts within
``--queue-timeout`` ends with ``busy``; a 10-minute song split over two replicas at once
(on a cluster of two 1-CPU nodes of its own) gives the very bytes of one replica's
whole-song conversion.

Needs the ray extra (``pip install '.[ray]'``); skipped without it, except where
MUSICODER_REQUIRE_RAY=1 (CI) makes its absence a failure.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

if os.environ.get("MUSICODER_REQUIRE_RAY") != "1":
    pytest.importorskip("ray")
    pytest.importorskip("ray.serve")

import client
import protocol
from server.testing import REPO, LocalRayCluster, ServerProcess

from .test_server import run, stereo_wav_bytes, wait_clean, wav_bytes
from .test_server_lifecycle import _gone, _wait

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    with LocalRayCluster(nodes=1, cpus=2) as c:
        yield c


def front_end(tmp_path, cluster: LocalRayCluster, name: str, *args: str) -> ServerProcess:
    """A front end with the server's default flags (no --workers), joined to ``cluster``."""
    return ServerProcess(tmp_path / name, "--ray", cluster.address, "--cancel-grace", "5", *args, env=cluster.env,
                         workers=None, models="models", ready_timeout=180)


def running_job(server: ServerProcess) -> dict:
    """The replica (pid, node, actor) of the job ``server`` has on one now."""
    h = server.wait_health(lambda h: h["jobs"], timeout=10)
    assert h["jobs"], h
    return h["jobs"][0]


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


def test_two_front_ends_with_default_flags_share_the_replicas(tmp_path, cluster):
    song = wav_bytes(8.0)
    with front_end(tmp_path, cluster, "a") as a, front_end(tmp_path, cluster, "b") as b:
        for server in (a, b):
            h = server.health()
            assert h["ready"] and h["backend"] == "ray", h
            assert h["deployment"]["replicas_running"] >= 1 and h["deployment"]["status"] == "RUNNING", h
        assert a.health()["deployment"]["deployed_here"] and not b.health()["deployment"]["deployed_here"]
        assert a.health()["deployment"]["max_replicas"] == b.health()["deployment"]["max_replicas"] == 2, \
            "the default: the cluster's 2 CPUs, as deployed by a"
        assert a.health()["cluster"]["nodes_alive"] == 2 and a.health()["cluster"]["cpus"] == 2

        async def both():
            await asyncio.gather(full_flow(a.url, song), full_flow(b.url, song, exemplar=wav_bytes(3.0)))

            async with client.Client(b.url, name="ray-song") as c:  # a whole stereo song, past the 60 s window
                await c.upload(stereo_wav_bytes(75.0), name="song.wav")
                r = await c.convert("future", "lofi", "flac", whole=True, strength=0.5)
                assert (r.channels, r.strength) == (2, 0.5) and abs(r.duration - 75.0) < 0.05, r.timings

            async with client.Client(a.url, name="ray-cancel") as c:  # Cancel reaches the replica
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
                r = await c.convert("future", "lofi", "flac")  # the replicas are free again
                assert abs(r.duration - 60.0) < 0.05

            c = client.Client(b.url, name="ray-gone")  # a disconnect mid-job cancels its request
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
            assert h["failed"] == 0 and h["retried"] == 0 and "Traceback" not in server.log(), h
        assert a.health()["completed"] == 2 and b.health()["completed"] == 2
        assert "1 job(s) cancelled" in b.log(), b.log()[-2000:]


def test_a_replica_killed_mid_job_gets_the_job_retried(tmp_path, cluster):
    with front_end(tmp_path, cluster, "a") as a:
        async def flow():
            async with client.Client(a.url, name="ray-replica-loss") as c:
                await c.upload(wav_bytes(60.0), name="long.wav")
                await c.clip(0.0, 60.0)
                killed = []

                def on_progress(stage, *_):
                    if not killed and stage not in ("uploading", "queued"):
                        killed.append(running_job(a))
                        os.kill(killed[0]["pid"], signal.SIGKILL)

                r = await c.convert("laser", "hifi", "wav", on_progress=on_progress)
                assert abs(r.duration - 60.0) < 0.05
                return killed

        killed = run(flow(), timeout=180)
        assert killed and _wait(lambda: _gone(killed[0]["pid"]), 10)
        h = wait_clean(a, timeout=30)
        assert (h["retried"], h["failed"], h["completed"]) == (1, 0, 1), h
        h = a.wait_health(lambda h: h["deployment"]["replicas_running"] >= 1, timeout=60)  # Serve replaced it
        run(full_flow(a.url, wav_bytes(6.0)))


def test_a_front_end_killed_mid_job_leaves_the_client_to_fail_over(tmp_path, cluster):
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(40.0))
    with front_end(tmp_path, cluster, "a") as a, front_end(tmp_path, cluster, "b") as b:
        killed = []

        def on_progress(stage, fraction):
            if not killed and stage not in ("uploading", "queued"):
                killed.append(running_job(b))
                b.kill9()

        info = client.convert_file([b.url, a.url], song, tmp_path / "out.flac", "water", "hifi", duration=30.0,
                                   on_progress=on_progress, retry_delays=(0.5, 1, 2))
        assert killed, "front end b ran no job"
        assert info.url == a.url and abs(info.duration - 30.0) < 0.05, info
        assert (tmp_path / "out.flac").stat().st_size > 0
        run(full_flow(a.url, wav_bytes(6.0)))
        h = wait_clean(a)
        assert h["failed"] == 0 and "Traceback" not in a.log(), h


def test_a_cluster_at_capacity_answers_busy_and_no_job_waits_past_the_queue_timeout(tmp_path):
    """One CPU: one replica (the default ceiling), a queue of one request per front end.
    The first job runs, the second waits, the third is refused within a second, and a
    client given a second address (here a local server) converts there; the second job,
    not started within --queue-timeout, ends with busy too."""
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes(12.0))
    with LocalRayCluster(nodes=1, cpus=1) as small, ServerProcess(tmp_path / "local", workers=1) as other, \
            front_end(tmp_path, small, "a", "--queue", "1", "--queue-timeout", "4",
                      "--max-window-seconds", "120") as a:
        async def flow():
            clients = [client.Client(a.url, name=f"ray-busy-{i}") for i in range(3)]
            for c in clients:
                await c.connect()
                await c.upload(wav_bytes(120.0), name="long.wav")
                await c.clip(0.0, 120.0)
            first = asyncio.create_task(clients[0].convert("water", "hifi", "wav"))
            await asyncio.to_thread(a.wait_health, lambda h: h["running"] == 1, 30)
            t0 = time.monotonic()
            second = asyncio.create_task(clients[1].convert("water", "hifi", "wav"))
            await asyncio.to_thread(a.wait_health, lambda h: h["queued"] == 1, 5)
            t1 = time.monotonic()
            with pytest.raises(client.ServerError) as refused:
                await clients[2].convert("water", "hifi", "wav")
            assert refused.value.code == "busy" and time.monotonic() - t1 < 1.0, refused.value
            info = await asyncio.to_thread(client.convert_file, [a.url, other.url], song, tmp_path / "out.flac",
                                           "laser", retry_delays=(0.5,))
            assert info.url == other.url and "was busy" in " ".join(info.warnings), info
            with pytest.raises(client.ServerError) as waited:
                await second
            assert waited.value.code == "busy" and "within 4 s" in waited.value.message, waited.value
            assert 3.5 < time.monotonic() - t0 < 10, time.monotonic() - t0
            assert not first.done(), "the first job should still run: make it longer"
            r = await first
            assert abs(r.duration - 120.0) < 0.05
            for c in clients:
                await c.close()

        run(flow(), timeout=240)
        h = wait_clean(a)
        assert h["completed"] == 1 and h["deployment"]["max_replicas"] == 1, h


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


def test_the_default_ceiling_is_what_the_cluster_holds_and_a_config_names_only_known_options():
    from server.ray_deployment import app
    from server.ray_pool import default_max_replicas

    assert default_max_replicas(2.0, 1.0) == 2 and default_max_replicas(16.0, 4.0) == 4
    assert default_max_replicas(0.0, 1.0) == 1  # a head alone: one replica, placed when a node joins
    with pytest.raises(ValueError, match="replicas_max"):
        app({"replicas_max": 4})


def _split_and_whole(address: str, spec, out: str) -> None:
    """In a process of its own (its own Ray driver, gone with it): ``spec``'s job through
    a RayPool, which splits it, then the same song through one replica's ``convert``;
    writes both WAVs, the job's progress fractions, the pids seen running its parts at
    once and the front end's log to ``out``."""
    import json
    import logging

    from ray import serve

    from server.pool import FINAL, Done, Progress
    from server.ray_pool import RayPool
    from server.worker import read_samples

    logging.basicConfig(filename=os.path.join(out, "log"), level=logging.INFO)

    async def flow():
        pool = RayPool(address, models="models", min_replicas=2, max_replicas=2)
        await pool.start()
        try:
            for _ in range(240):  # both replicas up before the job, so that its parts may run at once
                if pool.stats()["deployment"]["replicas_running"] >= 2:
                    break
                await asyncio.sleep(0.5)
            job = pool.submit(spec)
            fractions, pids_at_once = [], set()
            while not isinstance(event := await asyncio.wait_for(job.events.get(), 300), FINAL):
                if isinstance(event, Progress):
                    fractions.append(event.fraction)
                    running = {j["pid"] for j in pool.stats()["jobs"] if j["part"] in (0, 1)}
                    pids_at_once = max(pids_at_once, running, key=len)
            assert isinstance(event, Done), event
            with open(os.path.join(out, "split.wav"), "wb") as f:
                f.write(event.output.audio)
            handle = serve.get_app_handle("musicoder").options(stream=True)
            async for item in handle.convert.remote(spec, *read_samples(spec)):
                final = item
            assert final[0] == "done", final
            with open(os.path.join(out, "one.wav"), "wb") as f:
                f.write(final[1].audio)
            with open(os.path.join(out, "job.json"), "w") as f:
                json.dump({"fractions": fractions, "pids_at_once": sorted(pids_at_once)}, f)
        finally:
            await pool.close()

    asyncio.run(flow())


def test_a_ten_minute_song_split_over_two_replicas_is_the_one_replica_result(tmp_path):
    """On a cluster of two 1-CPU nodes of its own, where the pool deploys 2 replicas: the
    pool cuts a 10-minute stereo song into 2 parts, rendered on the 2 replicas at once,
    joined and finished on one: the WAV it returns is byte for byte the one a single
    replica converts (``convert``) from the same samples; the job's progress, the parts'
    mean, never goes back."""
    import json
    import multiprocessing

    from server.worker import JobSpec

    from bench.ray_scaling import demo_song

    song = demo_song(600.0)
    window = tmp_path / "song.f32"
    song.astype("<f4").tofile(window)
    spec = JobSpec(window_path=str(window), seconds=600.0, texture="future", quality="lofi", format="wav",
                   normalize=True, channels=2, strength=0.8)
    with LocalRayCluster(nodes=2, cpus=1) as cluster:
        child = multiprocessing.get_context("spawn").Process(target=_split_and_whole,
                                                             args=(cluster.address, spec, str(tmp_path)))
        child.start()
        child.join(360)
        if child.is_alive():
            child.kill()
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    assert child.exitcode == 0, log[-3000:]
    assert "600 s of audio in 2 parts" in log, log[-3000:]
    job = json.loads((tmp_path / "job.json").read_text())
    assert len(job["pids_at_once"]) == 2, "the two parts never ran on two replicas at once"
    fractions = job["fractions"]
    assert fractions == sorted(fractions) and fractions[-1] >= 0.95, fractions
    split, one = (tmp_path / "split.wav").read_bytes(), (tmp_path / "one.wav").read_bytes()
    assert len(split) == len(one) == 44 + 600 * 44100 * 2 * 2
    assert split == one
