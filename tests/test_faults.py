"""Faults against real server processes: clients that vanish at any point of the flow, a
worker killed mid-job, SIGTERM mid-job, a full disk under data/temp, a client that sends
a byte a second, oversize frames, idle connections. After each, the server is healthy,
serves a full flow and keeps no session file. Identity textures (the plumbing).

Abrupt disconnects: 300 here (``MUSICODER_FAULT_DISCONNECTS``), 1000 in
``python -m bench.disconnects`` (about three minutes on two busy cores).
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

import client
import protocol
from bench import disconnects
from server.testing import ServerProcess, session_files

from .test_server import Raw, run, session_dirs, wait_clean, wav_bytes
from .test_server_lifecycle import _gone, _wait

PLUMBING = "tests.passthrough_models"
DISCONNECTS = int(os.environ.get("MUSICODER_FAULT_DISCONNECTS", "300"))  # python -m bench.disconnects: 1000


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("faults"), "--idle-timeout", "4", models=PLUMBING) as server:
        yield server


def assert_healthy(server: ServerProcess, workers: int = 2) -> dict:
    """No session, job or file left; every worker ready; no traceback in the log; and a
    full flow (upload, clip, convert, download) works."""
    h = wait_clean(server, timeout=60)
    assert h["workers_ready"] == workers, h

    async def full_flow():
        async with client.Client(server.url, name="after-faults") as c:
            await c.upload(wav_bytes(3.0), name="after.wav")
            await c.clip(0.5, 2.0)
            r = await c.convert("water", "lofi", "flac")
            assert abs(r.duration - 2.0) < 0.05 and r.audio[:4] == b"fLaC" and r.spectrogram[:4] == b"\x89PNG"

    run(full_flow())
    assert "Traceback" not in server.log()
    return wait_clean(server)


# ---- abrupt disconnects -----------------------------------------------------------------

def test_abrupt_disconnects_at_random_points_leave_a_healthy_clean_server(srv):
    """Sessions vanish (TCP closed, no close frame) mid-upload, after the upload,
    mid-convert and mid-download; bench.disconnects (1000 by default) says how."""
    before = srv.health()
    t0 = time.monotonic()
    points = run(disconnects.storm(srv.url, DISCONNECTS), timeout=600)
    h = assert_healthy(srv)
    print(f"{DISCONNECTS} disconnects in {time.monotonic() - t0:.1f} s: {dict(points)}")
    assert min(points[p] for p in disconnects.POINTS) >= DISCONNECTS // 8  # every stage hit
    assert h["restarts"] == before["restarts"] and h["failed"] == before["failed"]


# ---- a worker killed mid-job ------------------------------------------------------------------

def test_a_worker_killed_mid_job_fails_that_job_the_pool_recovers_and_the_others_finish(tmp_path):
    """Two workers make, by default, two processes of one slot each: killing the one that runs
    job A fails A with worker_failed; B (running in the other) and C (queued) still
    finish, and a new process takes the killed one's place."""
    server = ServerProcess(tmp_path / "data", models=PLUMBING)
    try:
        server.start()

        async def main():
            async with client.Client(server.url) as a, client.Client(server.url) as b, \
                    client.Client(server.url) as c:
                for session, seconds in ((a, 20.0), (b, 5.0), (c, 5.0)):  # 20 + 5 s fit max_running_seconds
                    await session.upload(wav_bytes(seconds))
                    await session.clip(0.0, seconds)
                running = asyncio.Event()
                job_a = asyncio.create_task(a.convert("laser", "hifi", on_progress=lambda stage, *_: (
                    stage == "reconstructing" and running.set())))
                await asyncio.wait_for(running.wait(), 30)
                before = server.health()
                (pid,) = before["busy_pids"]
                positions = {}
                job_b = asyncio.create_task(b.convert("water", "lofi", on_accepted=lambda j, p: positions.update(b=p)))
                while "b" not in positions:  # B accepted before C is sent: their order is the test's, not a race's
                    await asyncio.sleep(0.01)
                job_c = asyncio.create_task(c.convert("future", "lofi", on_accepted=lambda j, p: positions.update(c=p)))
                while len(positions) < 2:
                    await asyncio.sleep(0.01)
                assert positions == {"b": 0, "c": 1}, positions  # B runs in the other process, C waits
                os.kill(pid, 9)
                with pytest.raises(client.ServerError) as e:
                    await job_a
                assert e.value.code == "worker_failed" and e.value.job is not None
                result_b, result_c = await asyncio.wait_for(asyncio.gather(job_b, job_c), 120)
                assert abs(result_b.duration - 5.0) < 0.05 and abs(result_c.duration - 5.0) < 0.05
                return before, pid

        before, pid = run(main(), timeout=240)
        h = server.wait_health(lambda h: h["ready"], timeout=60)
        assert before["slots_per_process"] == [1, 1] and h["slots_per_process"] == [1, 1]
        assert h["restarts"] == before["restarts"] + 1 and pid not in h["worker_pids"] and len(h["worker_pids"]) == 2
        assert h["failed"] == before["failed"] + 1 and h["completed"] >= before["completed"] + 2
        assert_healthy(server)
    finally:
        server.stop()


# ---- SIGTERM mid-job --------------------------------------------------------------------------

def test_sigterm_mid_job_ends_each_job_clearly_closes_every_client_cleans_and_exits_0(tmp_path):
    """Clients running jobs, one mid-upload, one idle: each gets ``shutdown``; each job
    its result or ``cancelled`` (none is left hanging); every connection a 1001 close;
    then no file is left, the workers are gone and the exit status is 0."""
    server = ServerProcess(tmp_path / "data", "--shutdown-grace", "3", models=PLUMBING)
    try:
        server.start()
        pids = list(server.worker_pids)

        async def main():
            async with Raw(server.url) as long, Raw(server.url) as short, Raw(server.url) as uploading, \
                    Raw(server.url) as idle:
                await asyncio.gather(long.open_window(wav_bytes(20.0), 20), short.open_window(wav_bytes(5.0), 5))
                await idle.hello()
                await uploading.hello()
                await uploading.upload(wav_bytes(10.0), end=False, chunk=100_000)  # the part stays on disk
                jobs = {}
                for r, quality in ((long, "hifi"), (short, "lofi")):
                    await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": quality})
                    jobs[r] = (await r.expect("accepted")).job
                while (await long.expect("progress")).stage != "reconstructing":
                    pass
                assert server.health()["running"] >= 1
                server.proc.send_signal(15)
                for r in (long, short, uploading, idle):
                    assert (await r.expect("shutdown", timeout=10)).grace == 3.0
                for r, job in jobs.items():
                    end = await r.expect("result", "cancelled", timeout=30)
                    assert end.job == job and (end.TYPE == "result" or end.re is None)
                for r in (long, short, uploading, idle):
                    with pytest.raises(ConnectionClosed):
                        while True:
                            await r.recv(timeout=20)
                    assert r.ws.close_code == 1001, r.ws.close_code

        run(main())
        assert server.proc.wait(timeout=30) == 0
        assert not session_dirs(server)
        assert _wait(lambda: all(_gone(p) for p in pids), 10), "a worker outlived the server"
        assert "Traceback" not in server.log()
    finally:
        server.stop()


# ---- a full disk under data/temp ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["tmpfs", "file-size-limit"])
def test_a_full_disk_gives_disk_full_keeps_no_partial_file_and_the_session_goes_on(tmp_path, how):
    """data/temp on a 1 MiB tmpfs (where this test may mount one), or the server held to
    1 MiB files (RLIMIT_FSIZE: writes past it fail with EFBIG). An upload that does not
    fit, then a track whose window does not, each get ``disk_full`` and leave nothing
    behind; then a smaller track converts."""
    temp = tmp_path / "data" / "temp"
    temp.mkdir(parents=True)
    if how == "tmpfs":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "musicoder-test", str(temp)],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the file-size-limit case runs")
    server = ServerProcess(tmp_path / "data", workers=1, models=PLUMBING, log_path=str(tmp_path / "server.log"))
    try:
        server.start()
        if how == "file-size-limit":
            resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (2**20, 2**20))

        async def main():
            async with Raw(server.url) as r:
                await r.hello()
                uid = await r.upload(wav_bytes(30.0), end=False, chunk=256 * 1024)  # 2.6 MB
                e = await r.expect("error")
                assert (e.code, e.re, e.request) == ("disk_full", uid, "upload"), e
                assert not session_files(server.data_dir)  # no partial upload
                uid = await r.upload(wav_bytes(12.0, 8000))  # 190 KB fits; its 10 s window (1.7 MB) does not
                e = await r.expect("error")
                assert e.code == "disk_full" and e.request == "upload_end", e
                assert not session_files(server.data_dir)  # neither the upload nor a partial window
                await r.error({"type": "clip", "id": r.id(), "start": 0, "duration": 2}, "not_ready")
                await r.upload(wav_bytes(2.0, 8000))  # its window: 350 KB
                await r.expect("track")
                await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "lofi"})
                assert (await r.expect("result")).duration == pytest.approx(2.0, abs=0.05)

        run(main())
        assert_healthy(server, workers=1)
        if how == "tmpfs":
            fs = os.statvfs(temp)
            assert (fs.f_blocks - fs.f_bfree) * fs.f_frsize < 64 * 1024  # the space came back
    finally:
        server.stop()
        if how == "tmpfs":
            subprocess.run(["umount", "-l", str(temp)], check=False)


# ---- a client that sends a byte a second --------------------------------------------------------

def test_a_client_sending_a_byte_a_second_blocks_no_one_and_times_out_clearly(srv):
    """A frame trickled a byte a second is no message: the session goes idle and is
    closed with ``idle_timeout`` after limits.idle_seconds (4 s here), though bytes keep
    coming. A handshake trickled the same way is dropped at websockets' open timeout
    (10 s). Meanwhile other clients are served as usual."""
    async def trickle(ws, data: bytes, stop: asyncio.Event) -> None:
        for i in range(len(data)):
            if stop.is_set() or ws.transport.is_closing():
                return
            ws.transport.write(data[i:i + 1])
            await asyncio.sleep(1.0)

    async def slow_frame() -> float:
        async with Raw(srv.url) as r:
            await r.hello()
            stop = asyncio.Event()
            frame = Frame(Opcode.TEXT, json.dumps({"type": "clip", "id": 9, "start": 0, "duration": 5}).encode())
            t0 = time.monotonic()
            task = asyncio.create_task(trickle(r.ws, frame.serialize(mask=True), stop))
            e = await r.expect("error", timeout=30)
            waited = time.monotonic() - t0
            assert e.code == "idle_timeout" and not task.done()  # bytes were still coming
            with pytest.raises(ConnectionClosed):
                await r.recv(timeout=10)
            stop.set()
            await task
            assert r.ws.close_code == 1000
            return waited

    async def slow_handshake() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        t0 = time.monotonic()

        async def write_slowly():
            for i in range(len(request)):
                writer.write(request[i:i + 1])
                await asyncio.sleep(1.0)

        task = asyncio.create_task(write_slowly())
        assert await asyncio.wait_for(reader.read(), 30) == b""  # closed: no answer to half a request
        waited = time.monotonic() - t0
        assert not task.done()
        task.cancel()
        writer.close()
        return waited

    async def others() -> list[float]:
        times = []
        for i in range(3):
            t0 = time.monotonic()
            async with client.Client(srv.url, name=f"meanwhile-{i}") as c:
                await c.upload(wav_bytes(2.0))
                await c.convert("water", "lofi")
            times.append(time.monotonic() - t0)
        return times

    async def main():
        return await asyncio.gather(slow_frame(), slow_handshake(), others())

    frame_wait, handshake_wait, flows = run(main())
    assert 3.5 < frame_wait < 12, frame_wait
    assert 9 < handshake_wait < 25, handshake_wait
    assert max(flows) < 15, flows  # not held up
    wait_clean(srv)


# ---- oversize frames ----------------------------------------------------------------------------

def test_oversize_frames_get_1009_or_a_clear_error(srv):
    """Past websockets' 2 MiB frame limit the connection closes with 1009 (a frame that
    claims 2^62 bytes at once, a 3 MiB frame mid-upload, a message fragmented past the
    limit); under it, a control message over 64 KiB gets ``too_large`` and the session
    goes on. No file is left either way."""
    async def closed_1009(r: Raw) -> None:
        with pytest.raises(ConnectionClosed):
            while True:
                await r.recv(timeout=20)
        assert r.ws.close_code == 1009, (r.ws.close_code, r.ws.close_reason)

    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            r.ws.transport.write(b"\x82\xff" + (2**62).to_bytes(8, "big") + b"mask")  # header only
            await closed_1009(r)
        async with Raw(srv.url) as r:
            await r.hello()
            uid = await r.upload(wav_bytes(10.0), end=False, chunk=100_000)
            while not session_dirs(srv):
                await asyncio.sleep(0.02)
            await r.send(protocol.encode_chunk(protocol.Kind.UPLOAD, uid, 9, False, b"") + b"x" * (3 * 2**20))
            await closed_1009(r)
        async with Raw(srv.url) as r:
            await r.hello()
            await r.ws.send([b"x" * 2**20, b"x" * 2**20, b"x" * 2**20])  # one message in three fragments
            await closed_1009(r)
        async with Raw(srv.url) as r:
            await r.hello()
            await r.error(json.dumps({"type": "hello", "id": 5, "version": 1, "client": "x" * (3 * 2**19)}),
                          "too_large")
            await r.hello()  # the session goes on

    run(main())
    assert_healthy(srv)


# ---- idle connections ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_srv(tmp_path_factory):
    """The same server, its stand-in transform 6 s long: a job outlasts the idle timeout
    however fast the machine is."""
    with ServerProcess(tmp_path_factory.mktemp("slow"), "--idle-timeout", "4", models=PLUMBING,
                       env={"MUSICODER_PASSTHROUGH_DELAY_S": "6"}) as server:
        yield server


def test_idle_connections_past_the_timeout_are_closed_and_their_files_removed(slow_srv):
    """Silent for limits.idle_seconds (4 s): one never greeted, one mid-upload (its part
    on disk), one with a track and a window; each gets ``idle_timeout`` and a 1000 close,
    and its files go. A silent client whose job runs longer than that is not idle."""
    srv = slow_srv
    async def silent_until_closed(r: Raw) -> float:
        t0 = time.monotonic()
        e = await r.expect("error", timeout=30)
        assert e.code == "idle_timeout", e
        with pytest.raises(ConnectionClosed):
            await r.recv(timeout=10)
        assert (r.ws.close_code, r.ws.close_reason) == (1000, "idle timeout")
        return time.monotonic() - t0

    async def waiting_for_a_long_job(r: Raw) -> float:
        await r.open_window(wav_bytes(10.0), 10)
        t0 = time.monotonic()
        await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "lofi"})
        await r.expect("result", timeout=120)
        return time.monotonic() - t0

    async def main():
        async with Raw(srv.url) as never, Raw(srv.url) as uploading, Raw(srv.url) as windowed, \
                Raw(srv.url) as converting:
            job = asyncio.create_task(waiting_for_a_long_job(converting))
            await uploading.hello()
            await uploading.upload(wav_bytes(10.0), end=False, chunk=100_000)
            await windowed.open_window(wav_bytes(5.0), 3)
            assert len(session_dirs(srv)) >= 3  # converting's, uploading's part, windowed's files
            waits = await asyncio.gather(*(silent_until_closed(r) for r in (never, uploading, windowed)))
            assert all(w < 4 + 6 for w in waits), waits
            assert [d for d in session_dirs(srv)]  # the converting session's files stay
            job_seconds = await job
            assert job_seconds > 4, f"the job ({job_seconds:.1f} s) should outlast the idle timeout"

    run(main(), timeout=240)
    wait_clean(srv)
