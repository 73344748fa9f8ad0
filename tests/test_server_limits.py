"""Limits over loopback: upload size, track length, queue and per-session jobs,
connections — against one server with small limits (idle timeouts: test_faults.py)."""
from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed

import protocol
from server.testing import ServerProcess

PLUMBING = "tests.passthrough_models"  # identity textures: these tests are about the server, not the textures

from .conftest import DEMO_CLIP
from .test_server import Raw, run, session_dirs, wait_clean, wav_bytes


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("small"), "--queue", "1", "--jobs-per-session", "1",
                       "--max-clients", "3", "--max-upload-mb", "1", "--max-track-seconds", "20",
                       "--idle-timeout", "4", workers=1, models=PLUMBING,
                       env={"MUSICODER_PASSTHROUGH_FAIL": "future"}) as server:
        yield server


def test_upload_and_track_limits(small):
    async def main():
        async with Raw(small.url) as r:
            welcome = await r.hello()
            assert welcome.limits["upload_bytes"] == 2**20 and welcome.limits["track_seconds"] == 20
            await r.error({"type": "upload", "id": r.id(), "name": "big.wav", "size": 2**20 + 1}, "too_large")
            await r.upload(DEMO_CLIP.read_bytes(), name="demo.ogg")  # 28 s > 20 s
            assert (await r.expect("error")).code == "too_long"
            # a failure inside the worker (here: a model that cannot load) is an error frame
            await r.upload(wav_bytes(2.0))
            await r.expect("track")
            await r.send({"type": "convert", "id": r.id(), "texture": "future", "quality": "lofi"})
            accepted = await r.expect("accepted")
            failed = await r.expect("error")
            assert (failed.code, failed.job) == ("internal", accepted.job) and "set to fail" in failed.message
            await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "lofi"})
            await r.expect("result")  # the session and the worker go on
        wait_clean(small)

    run(main())


def test_busy_queue_and_session_share_and_too_many_clients(small):
    track = wav_bytes(15.0, 22050)  # 0.66 MB, 15 s

    async def main():
        async with Raw(small.url) as a, Raw(small.url) as b, Raw(small.url) as c:
            await asyncio.gather(*(r.open_window(track, 15) for r in (a, b, c)))  # well inside the idle timeout
            await a.send({"type": "convert", "id": a.id(), "texture": "laser", "quality": "hifi"})
            assert (await a.expect("accepted")).position == 0
            e = await a.error({"type": "convert", "id": a.id(), "texture": "laser"}, "busy")  # one per session
            await b.send({"type": "convert", "id": b.id(), "texture": "water", "quality": "lofi"})
            assert (await b.expect("accepted")).position == 1  # queued behind a's
            e = await c.error({"type": "convert", "id": c.id(), "texture": "future"}, "busy")  # queue full
            assert e.queue == 1 and "1" in e.message
            # a fourth connection is refused with a reason
            async with Raw(small.url) as d:
                msg = await d.recv()
                assert isinstance(msg, protocol.Error) and msg.code == "too_many_clients"
                with pytest.raises(ConnectionClosed):
                    await d.recv(timeout=10)
                assert d.ws.close_code == 1013
            await a.expect("result", timeout=120)
            await b.expect("result", timeout=120)
        wait_clean(small)

    run(main(), timeout=240)
