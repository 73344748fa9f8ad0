"""End to end over loopback against real server processes (``server.testing``).

Most tests share one server with the identity textures of tests/passthrough_models.py
(the plumbing, not the texture transfer); servers with small limits, and servers that are killed
or stopped, are started by the tests that need them. Every server is stopped in a
finally. The real textures: tests/test_server_models.py.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from websockets.asyncio.client import connect

import client
import protocol
from server.session import Session
from server.testing import ServerProcess

PLUMBING = "tests.passthrough_models"  # identity textures: these tests are about the server, not the textures

from .conftest import DEMO_CLIP, REPO

TIMEOUT = 60


def run(coro, timeout: float = 120):
    """Run a test coroutine with an overall limit."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def music(seconds: float, rate: int = 44100) -> np.ndarray:
    """A few seconds of chords with a beat: something the engine can chew on."""
    t = np.arange(int(seconds * rate)) / rate
    y = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    y *= 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)
    return y.astype(np.float32)


def wav_bytes(seconds: float, rate: int = 44100) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, music(seconds, rate), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


FAKE_TENSORFLOW = """import os
with open(os.environ.get("TF_IMPORT_MARKER") or os.path.join(os.path.dirname(__file__), os.pardir, "imported"), "a") as f:
    f.write(f"{os.getpid()}\\n")
"""


def fake_tensorflow(folder: Path) -> Path:
    """A folder holding a package named tensorflow whose import writes the importing
    process's pid to folder/imported: on a server's path, it shows whether any of its
    processes imported TensorFlow (none may: the textures are numpy), even where the
    real one is not installed."""
    (folder / "tensorflow").mkdir(parents=True)
    (folder / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    return folder


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tf = fake_tensorflow(tmp_path_factory.mktemp("tf"))
    with ServerProcess(tmp_path_factory.mktemp("srv"), "--cancel-grace", "3", models=PLUMBING,
                       env={"PYTHONPATH": str(tf)}) as server:
        server.tensorflow_marker = tf / "imported"
        yield server


@pytest.fixture(scope="module")
def long_wav() -> bytes:
    return wav_bytes(60.0)


def session_dirs(server: ServerProcess) -> list[str]:
    out = []
    for top in ("receive", "temp"):
        folder = Path(server.data_dir) / top
        out += [f"{top}/{p.name}" for p in folder.iterdir() if not p.name.startswith(".")] if folder.exists() else []
    return out


def wait_clean(server: ServerProcess, timeout: float = 20) -> dict:
    """Wait until no session, no job and no session folder remain."""
    deadline = time.monotonic() + timeout
    while True:
        h = server.health()
        if h["sessions"] == 0 and h["running"] == 0 and h["queued"] == 0 and not session_dirs(server):
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"not clean: {h}, files {session_dirs(server)}")
        time.sleep(0.05)


class Raw:
    """A bare WebSocket client speaking the protocol frame by frame."""

    def __init__(self, url: str):
        self.url = url
        self.ws = None
        self.ids = iter(range(1, 10**6))
        self.seen: list[str] = []

    async def __aenter__(self):
        self.ws = await connect(self.url, max_size=4 * 2**20, compression=None, open_timeout=10)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    def id(self) -> int:
        return next(self.ids)

    async def send(self, obj) -> None:
        await self.ws.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def recv(self, timeout: float = TIMEOUT):
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(data, bytes):
            return protocol.parse_binary(data)
        msg = protocol.parse_text(data, sender="server")
        self.seen.append(msg.TYPE)
        return msg

    async def expect(self, *types: str, timeout: float = TIMEOUT):
        """The next control message of one of these types (progress and binaries skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(0.1, deadline - time.monotonic()))
            if isinstance(msg, protocol.Message) and msg.TYPE in types:
                return msg
            if isinstance(msg, protocol.Error) and "error" not in types:
                raise AssertionError(f"unexpected error {msg}")

    async def error(self, obj, code: str):
        await self.send(obj)
        msg = await self.expect("error")
        assert msg.code == code, msg
        return msg

    async def hello(self):
        await self.send({"type": "hello", "id": self.id(), "version": 1, "client": "raw"})
        return await self.expect("welcome")

    async def upload(self, data: bytes, name: str = "x.wav", end: bool = True, chunk: int = 200_000):
        uid = self.id()
        await self.send({"type": "upload", "id": uid, "name": name, "size": len(data)})
        for frame in protocol.chunks(protocol.Kind.UPLOAD, uid, data, chunk):
            await self.send(frame)
        if end:
            await self.send({"type": "upload_end", "id": self.id(), "upload": uid})
        return uid

    async def open_window(self, data: bytes, duration: float) -> None:
        """hello, upload ``data``, and choose the window 0..duration s."""
        await self.hello()
        await self.upload(data)
        await self.expect("track")
        await self.send({"type": "clip", "id": self.id(), "start": 0, "duration": duration})
        await self.expect("window")


# ---- the whole flow ------------------------------------------------------------------------

def test_full_flow_convert_again_preview_and_cleanup(srv):
    async def main():
        progress, uploads = [], []
        async with client.Client(srv.url, name="test") as c:
            w = c.welcome
            assert [t["name"] for t in w.textures] == ["laser", "water", "future"]
            assert [q["name"] for q in w.qualities] == ["lofi", "standard", "hifi"]
            assert all(q["expected_seconds"] > 0 for q in w.qualities)
            assert w.limits["upload_bytes"] == 200 * 2**20 and w.default_window == 10.0
            track = await c.upload(DEMO_CLIP, on_progress=lambda got, size: uploads.append((got, size)))
            assert uploads[0][0] == 0 and uploads[-1][0] == uploads[-1][1] == DEMO_CLIP.stat().st_size
            assert (track.name, track.duration, track.sample_rate, track.channels) == ("demo.ogg", 28.0, 44100, 2)
            assert (track.window.start, track.window.duration) == (0.0, 10.0)
            assert len(track.window.peaks_min) == 800 and max(track.window.peaks_max) > 0.05
            files = session_dirs(srv)
            assert any(f.startswith("receive/") for f in files)
            upload_path = Path(srv.data_dir) / files[0] / "upload"
            assert upload_path.exists() and upload_path.read_bytes() == DEMO_CLIP.read_bytes()
            window = await c.clip(5.0, 3.0)
            assert (window.start, window.duration) == (5.0, 3.0)
            fmt, exemplar = await c.preview("laser")
            assert fmt == "flac" and exemplar[:4] == b"fLaC"
            assert exemplar == (REPO / "models" / "exemplars" / "laser.flac").read_bytes()
            r1 = await c.convert("laser", "lofi", "flac", on_progress=lambda *a: progress.append(a))
            # convert again, other texture and format: the same clip, no re-upload
            r2 = await c.convert("water", "standard", "wav", normalize=False)
        stages = [p[0] for p in progress]
        assert stages[0] in ("queued", "analysing") and "reconstructing" in stages and stages[-1] == "encoding"
        fractions = [p[1] for p in progress]
        assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
        for r, fmt in ((r1, "FLAC"), (r2, "WAV")):
            y, rate = soundfile.read(io.BytesIO(r.audio))
            assert rate == 44100 and abs(len(y) / rate - 3.0) < 0.05 and soundfile.info(io.BytesIO(r.audio)).format == fmt
            assert r.spectrogram[:4] == b"\x89PNG" and len(r.peaks_min) == 800
            assert set(r.timings) == {"queued", "analysing", "transferring", "reconstructing", "encoding"}
        assert r1.job != r2.job and (r1.texture, r1.quality, r2.texture) == ("laser", "lofi", "water")
        wait_clean(srv)

    run(main())


def test_every_documented_message_type_is_handled():
    doc = (REPO / "docs" / "protocol.md").read_text()
    import re

    documented = set(re.findall(r"^### `(\w+)`", doc, re.M))
    assert documented == set(protocol.MESSAGES)
    for name in protocol.CLIENT_MESSAGES:  # the server has a handler for each request
        assert callable(getattr(Session, f"on_{name}", None)), name
    # the client's side: tests/test_client_messages.py feeds it every server message


def test_raw_flow_sees_every_server_message(srv, long_wav):
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            uid = await r.upload(wav_bytes(3.0))
            track = await r.expect("track")
            frame = await r.recv()
            assert (frame.kind, frame.ref, frame.last, len(frame.payload)) == (protocol.Kind.PEAKS, uid, True, 6400)
            cid = r.id()
            await r.send({"type": "clip", "id": cid, "start": 1.0, "duration": 30.0})
            win = await r.expect("window")
            assert (win.re, win.start, win.duration) == (cid, 1.0, 2.0)  # shortened at the end of the track
            await r.send({"type": "preview", "id": r.id(), "texture": "water"})
            await r.expect("preview_audio")
            await r.send({"type": "convert", "id": r.id(), "texture": "future", "quality": "lofi"})
            acc = await r.expect("accepted")
            await r.expect("result")
            kinds = [(await r.recv()).kind for _ in range(3)]
            assert kinds == [protocol.Kind.AUDIO, protocol.Kind.SPECTROGRAM, protocol.Kind.RESULT_PEAKS]
            await r.send({"type": "cancel", "id": r.id(), "job": acc.job})
            await r.expect("error")
            assert track.re == uid
            assert {"welcome", "upload_progress", "track", "window", "preview_audio", "accepted", "progress",
                    "result", "error"} <= set(r.seen)

    run(main())


# ---- errors --------------------------------------------------------------------------------

def test_every_request_error_code_and_the_session_goes_on(srv, tmp_path):
    no_audio = tmp_path / "video.mp4"
    from .conftest import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=10", "-c:v", "mpeg4", str(no_audio))

    async def main():
        async with Raw(srv.url) as r:
            await r.error({"type": "clip", "id": 1, "start": 0, "duration": 5}, "not_ready")  # before hello
            await r.error({"type": "hello", "id": 2, "version": 99}, "bad_version")
            await r.hello()
            await r.error("{not json", "bad_message")
            await r.error('{"type": "clip", "id": 3, "start": NaN, "duration": 5}', "bad_message")
            await r.error({"type": "clip", "id": 4, "start": -1, "duration": 5}, "bad_message")
            await r.error({"type": "dance", "id": 5}, "unknown_type")
            await r.error({"type": "welcome", "id": 6}, "unknown_type")
            await r.error("x" * 70_000, "too_large")
            await r.error(protocol.encode_chunk(protocol.Kind.UPLOAD, 1, 0, True, b"") + b"x" * (1024 * 1024 + 1),
                          "too_large")
            await r.error(b"garbage", "bad_binary")
            await r.error(protocol.encode_chunk(protocol.Kind.UPLOAD, 77, 0, True, b"abc"), "bad_binary")
            await r.error(protocol.encode_chunk(protocol.Kind.AUDIO, 1, 0, True, b"abc"), "bad_binary")
            await r.error({"type": "clip", "id": 7, "start": 0, "duration": 5}, "not_ready")  # no track yet
            await r.error({"type": "convert", "id": 8, "texture": "laser"}, "not_ready")
            await r.error({"type": "upload_end", "id": 9, "upload": 12345}, "not_ready")
            await r.error({"type": "preview", "id": 10, "texture": "disco"}, "unknown_texture")
            await r.error({"type": "upload", "id": 11, "name": "big", "size": 300 * 2**20}, "too_large")
            for data, code in ((b"", "empty"), (b"this is not audio at all" * 100, "not_audio"),
                               (no_audio.read_bytes(), "no_audio_stream"), (wav_bytes(0.5), "bad_window")):
                await r.upload(data, name="../../etc/passwd")
                assert (await r.expect("error")).code == code
            # fewer bytes than announced
            uid = r.id()
            await r.send({"type": "upload", "id": uid, "name": "short", "size": 1000})
            await r.send(protocol.encode_chunk(protocol.Kind.UPLOAD, uid, 0, True, b"x" * 500))
            await r.error({"type": "upload_end", "id": r.id(), "upload": uid}, "truncated")
            # more bytes than announced
            uid = r.id()
            await r.send({"type": "upload", "id": uid, "name": "long", "size": 10})
            await r.error(protocol.encode_chunk(protocol.Kind.UPLOAD, uid, 0, True, b"x" * 11), "too_large")
            # a good track, then bad requests about it
            await r.upload(wav_bytes(3.0))
            await r.expect("track")
            await r.error({"type": "clip", "id": r.id(), "start": 5.0, "duration": 2}, "bad_window")
            await r.error({"type": "clip", "id": r.id(), "start": 0.0, "duration": 0.5}, "bad_window")
            await r.error({"type": "clip", "id": r.id(), "start": 0.0, "duration": 601}, "bad_window")
            await r.error({"type": "convert", "id": r.id(), "texture": "disco"}, "unknown_texture")
            await r.error({"type": "convert", "id": r.id(), "texture": "laser", "quality": "ultra"}, "unknown_quality")
            e = await r.error({"type": "convert", "id": 4242, "texture": "laser", "format": "aiff"}, "bad_format")
            assert (e.re, e.request) == (4242, "convert")
            await r.error({"type": "cancel", "id": r.id(), "job": 999999}, "unknown_job")
            # and the session goes on: a conversion still works
            await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "lofi"})
            await r.expect("result")
        for f in session_dirs(srv):
            assert "passwd" not in f
        wait_clean(srv)

    run(main())


def test_random_frames_get_errors_and_the_session_survives(srv):
    import random

    rng = random.Random(4)
    kinds = sorted(protocol.MESSAGES) + ["", "hello!", "\u0000"]
    values = [None, True, -1, 0, 1, 2**40, 1e308, -0.5, "", "x" * 300, [], {}, [1, "a"], {"start": 1}]
    fields = ["id", "version", "name", "size", "upload", "start", "duration", "texture", "quality", "format",
              "normalize", "job", "client"]

    def frame():
        roll = rng.random()
        if roll < 0.2:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        if roll < 0.3:
            return protocol.encode_chunk(protocol.Kind(rng.randrange(1, 7)), rng.randrange(5), rng.randrange(3),
                                         rng.random() < 0.5, b"abc")
        if roll < 0.4:
            return "".join(rng.choice('{}[]":,0123456789.eE-+ ntrueflasx') for _ in range(rng.randrange(30)))
        obj = {f: rng.choice(values) for f in rng.sample(fields, rng.randrange(len(fields)))}
        obj["type"] = rng.choice(kinds)
        if rng.random() < 0.7:
            obj["id"] = rng.randrange(1, 50)
        return json.dumps(obj)

    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            for _ in range(300):
                await r.send(frame())
            await r.send({"type": "hello", "id": 999999, "version": 1})
            while True:  # every answer parses; the session still answers at the end
                msg = await r.recv(timeout=30)
                if isinstance(msg, protocol.Welcome) and msg.re == 999999:
                    break
        wait_clean(srv)

    run(main())


# ---- cancel, disconnects, a killed worker -------------------------------------------------

def test_cancel_frees_the_worker(srv, long_wav):
    async def main():
        async with client.Client(srv.url) as c:
            await c.upload(long_wav, name="long.wav")
            await c.clip(0.0, 60.0)
            jobs, running = [], asyncio.Event()

            def progress(stage, fraction, eta, position):
                if stage == "reconstructing" and fraction > 0.13:  # past the (uninterruptible) phase start
                    running.set()

            task = asyncio.create_task(c.convert("laser", "hifi", on_accepted=lambda job, pos: jobs.append(job),
                                                 on_progress=progress))
            await asyncio.wait_for(running.wait(), 30)
            t0 = time.monotonic()
            await c.cancel(jobs[0])
            with pytest.raises(client.JobCancelled):
                await task
            assert time.monotonic() - t0 < 3
            assert srv.health()["running"] == 0
            await c.clip(0.0, 2.0)  # the same upload, a new window: convert works again
            r = await c.convert("laser", "lofi")
            assert abs(r.duration - 2.0) < 0.05
            with pytest.raises(client.ServerError) as e:
                await c.cancel(r.job)
            assert e.value.code == "unknown_job"

    run(main())


def test_abrupt_disconnect_mid_upload_leaves_no_files(srv, long_wav):
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            uid = r.id()
            await r.send({"type": "upload", "id": uid, "name": "a.wav", "size": len(long_wav)})
            await r.expect("upload_progress")
            for frame in list(protocol.chunks(protocol.Kind.UPLOAD, uid, long_wav))[:5]:
                await r.send(frame)
            deadline = time.monotonic() + 10
            while not any(f.startswith("temp/") for f in session_dirs(srv)) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert session_dirs(srv), "the partial upload should be on disk"
            r.ws.transport.abort()  # no close frame: a dropped connection
        wait_clean(srv)

    run(main())


def test_abrupt_disconnect_mid_conversion_frees_the_slot(srv, long_wav):
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            await r.upload(long_wav)
            await r.expect("track")
            await r.send({"type": "clip", "id": r.id(), "start": 0, "duration": 60})
            await r.expect("window")
            await r.send({"type": "convert", "id": r.id(), "texture": "water", "quality": "hifi"})
            while True:
                msg = await r.expect("progress")
                if msg.stage == "reconstructing" and msg.fraction > 0.13:
                    break
            assert srv.health()["running"] == 1
            r.ws.transport.abort()
        t0 = time.monotonic()
        h = wait_clean(srv, timeout=10)
        assert time.monotonic() - t0 < 5 and h["workers_ready"] == 2

    run(main())


def test_a_killed_worker_fails_its_job_and_the_pool_recovers(srv, long_wav):
    async def main():
        async with client.Client(srv.url) as c:
            await c.upload(long_wav)
            await c.clip(0.0, 60.0)
            running = asyncio.Event()
            task = asyncio.create_task(c.convert("future", "hifi", on_progress=lambda s, *a: s == "reconstructing"
                                                 and running.set()))
            await asyncio.wait_for(running.wait(), 30)
            before = srv.health()
            (pid,) = before["busy_pids"]
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(client.ServerError) as e:
                await task
            assert e.value.code == "worker_failed" and e.value.job is not None
            h = srv.wait_health(lambda h: h["workers_ready"] == 2, timeout=60)
            assert h["restarts"] == before["restarts"] + 1 and pid not in h["worker_pids"]
            await c.clip(0.0, 2.0)
            assert (await c.convert("future", "lofi")).audio

    run(main(), timeout=180)


def test_whole_songs_leave_a_worker_to_short_jobs_and_queued_jobs_cancel(srv):
    """Two songs (90 s: long) on two workers: one runs, the other waits, though a worker is
    free; a 3 s job asked after both starts at once on it, passing the waiting song."""
    song = wav_bytes(90.0)

    async def main():
        async with Raw(srv.url) as a, Raw(srv.url) as b, Raw(srv.url) as c:
            await asyncio.gather(a.open_window(song, 90), b.open_window(song, 90), c.open_window(song, 3))
            await a.send({"type": "convert", "id": a.id(), "texture": "laser", "quality": "hifi"})
            job_a = (await a.expect("accepted")).job
            await b.send({"type": "convert", "id": b.id(), "texture": "water", "quality": "hifi"})
            accepted = await b.expect("accepted")
            assert accepted.position == 1
            await c.send({"type": "convert", "id": c.id(), "texture": "water", "quality": "lofi"})
            assert (await c.expect("accepted")).position == 0  # started at once, ahead of the waiting song
            h = srv.health()
            assert (h["running"], h["queued"], h["running_audio_seconds"]) == (2, 1, 93.0)
            result = await c.expect("result")
            assert result.timings["queued"] < 0.5 and result.duration == 3.0
            cid = b.id()
            await b.send({"type": "cancel", "id": cid, "job": accepted.job})
            cancelled = await b.expect("cancelled", timeout=5)
            assert (cancelled.re, cancelled.job) == (cid, accepted.job)
            await a.send({"type": "cancel", "id": a.id(), "job": job_a})
            await a.expect("cancelled", timeout=30)
        wait_clean(srv)

    run(main())


def stereo_wav_bytes(seconds: float) -> bytes:
    """Music on the left, a low hum on the right: a stereo file whose channels differ."""
    buf = io.BytesIO()
    t = np.arange(int(seconds * 44100)) / 44100
    right = (0.3 * np.sin(2 * np.pi * 110.0 * t)).astype(np.float32)
    soundfile.write(buf, np.stack([music(seconds), right], axis=1), 44100, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_protocol_3_converts_in_stereo_the_window_or_the_whole_track_at_a_strength(srv):
    from musicoder import audio

    async def main():
        async with client.Client(srv.url) as c:
            assert c.welcome.version == 3 and c.welcome.limits["window_seconds"] == 600.0
            track = await c.upload(stereo_wav_bytes(14.0), name="stereo.wav")
            assert track.channels == 2 and track.window.duration == 10.0
            await c.clip(2.0, 5.0)
            chunks = []
            r = await c.convert("water", "lofi", "flac", strength=0.25,
                                on_download=lambda got, size: chunks.append((got, size)))
            assert (r.channels, r.strength, r.start, r.duration) == (2, 0.25, 2.0, 5.0)
            y = audio.decode_bytes(r.audio, stereo=True)
            assert y.shape == (2, 5 * 44100)
            assert np.std(y[0] - y[1]) > 0.05  # the channels kept apart, not one mixed twice
            assert chunks[-1] == (len(r.audio), len(r.audio))  # the download counted as its chunks came
            whole = await c.convert("laser", "lofi", "wav", whole=True)
            assert (whole.start, whole.duration, whole.channels, whole.strength) == (0.0, 14.0, 2, 1.0)
            assert audio.decode_bytes(whole.audio, stereo=True).shape == (2, 14 * 44100)
            await c.clip(0.0, 3.0)  # the window is still the window after a whole-track conversion
            assert (await c.convert("laser", "lofi")).duration == 3.0
            with pytest.raises(protocol.ProtocolError):  # strength outside 0..1 never leaves the client
                await c.convert("laser", strength=1.5)

    run(main())
    wait_clean(srv)


def test_a_version_2_client_is_served_as_before_mono_the_window_at_full_strength(srv):
    from musicoder import audio

    async def main():
        async with Raw(srv.url) as r:
            await r.send({"type": "hello", "id": r.id(), "version": 2, "client": "old"})
            assert (await r.expect("welcome")).version == 3
            await r.upload(stereo_wav_bytes(14.0))
            assert (await r.expect("track")).channels == 2  # the source's, mixed to mono for this client
            # fields of version 3 from an older client mean nothing: the window, mono, full strength
            await r.send({"type": "convert", "id": r.id(), "texture": "water", "quality": "lofi", "whole": True,
                          "strength": 0.0})
            result = await r.expect("result")
            assert (result.duration, result.channels, result.strength, result.start) == (10.0, 1, 1.0, 0.0)
            data = b""
            while True:
                frame = await r.recv()
                if isinstance(frame, protocol.BinaryFrame) and frame.kind == protocol.Kind.AUDIO:
                    data += frame.payload
                    if frame.last:
                        break
            assert len(data) == result.audio_bytes and audio.decode_bytes(data, stereo=True).shape == (1, 10 * 44100)

    run(main())
    wait_clean(srv)


# ---- many sessions, other clients, health --------------------------------------------------

def test_twenty_concurrent_sessions_complete(srv):
    data = wav_bytes(3.0)

    async def one(i: int):
        async with client.Client(srv.url, name=f"c{i}") as c:
            await c.upload(data, name=f"s{i}.wav")
            r = await c.convert(["laser", "water", "future"][i % 3], "lofi", "flac")
            return len(r.audio)

    async def main():
        sizes = await asyncio.gather(*(one(i) for i in range(20)))
        assert all(s > 10_000 for s in sizes)

    run(main(), timeout=180)
    wait_clean(srv)


def test_third_party_client_gets_welcome(srv):
    proc = subprocess.Popen([sys.executable, "-m", "websockets", srv.url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        proc.stdin.write(b'{"type": "hello", "id": 1, "version": 1, "client": "websockets-cli"}\n')
        proc.stdin.flush()
        out, deadline = b"", time.monotonic() + 30
        while b'"welcome"' not in out and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        assert b'"type":"welcome"' in out, out
        proc.stdin.close()
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_healthz(srv):
    h = srv.health()
    assert h["status"] == "ok" and h["ready"] is True and h["workers"] == 2 and h["protocol"] == protocol.PROTOCOL_VERSION
    assert (h["processes"], h["slots_per_process"], h["workers_ready"]) == (2, [1, 1], 2)  # one job per process
    assert "server_imports_tensorflow" not in h and "workers_import_tensorflow" not in h
    assert all(0 < s < 90 for s in h["worker_start_seconds"]), h["worker_start_seconds"]
    assert h["rss_bytes"]["total"] >= h["rss_bytes"]["server"] > 0
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/other", timeout=5)
    assert e.value.code == 404


def test_no_server_process_imports_tensorflow(srv, tmp_path):
    client.convert_file(srv.url, DEMO_CLIP, tmp_path / "x.wav", "water", "lofi", duration=2.0)  # a whole job
    assert srv.health()["worker_pids"]
    assert not srv.tensorflow_marker.exists(), f"imported TensorFlow: pids {srv.tensorflow_marker.read_text()}"
    # and the stand-in shows an import where there is one
    marker = tmp_path / "seen"
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, cwd=tmp_path,
                   env=dict(os.environ, PYTHONPATH=str(srv.tensorflow_marker.parent), TF_IMPORT_MARKER=str(marker)))
    assert marker.read_text().strip().isdigit()


def test_the_default_pool_is_one_single_slot_process_per_core():
    from server.config import load, usable_cores
    from server.pool import ProcessPool

    cores = usable_cores()
    pool = ProcessPool(models=PLUMBING)  # not started: its shape only
    assert (pool.size, len(pool._workers), pool.threads) == (cores, cores, 1)
    assert [w.slots for w in pool._workers] == [1] * cores
    s = load([], environ={})
    assert (s.workers, s.processes) == (cores, cores)
    threads = ProcessPool(workers=4, processes=1, models=PLUMBING)  # --processes 1: jobs as threads
    assert [w.slots for w in threads._workers] == [4]


def test_one_process_with_two_job_threads_still_serves(tmp_path):
    """--processes 1 --workers 2: two conversions at once as threads of one process."""
    with ServerProcess(tmp_path / "data", "--processes", "1", models=PLUMBING) as server:
        h = server.health()
        assert (h["processes"], h["slots_per_process"], h["ready"]) == (1, [2], True)

        async def one(i: int) -> float:
            async with client.Client(server.url, name=f"t{i}") as c:
                await c.upload(wav_bytes(3.0))
                return (await c.convert("laser", "lofi")).duration

        async def main():
            return await asyncio.gather(one(0), one(1))

        assert all(abs(d - 3.0) < 0.05 for d in run(main()))
        assert server.health()["completed"] == 2


def test_decoding_runs_below_the_event_loop_priority(tmp_path):
    """ffmpeg and resampling run at the workers' niceness; the event loop's thread keeps
    its own, so that pings are answered first (Linux: nice is per thread)."""
    import threading

    from server.app import DECODE_NICE, App
    from server.config import Settings

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if base:
        pytest.skip(f"the tests run at nice {base}")
    app = App(Settings(models=PLUMBING, data_dir=str(tmp_path)))
    try:
        nice = app._decoder.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
        assert nice == DECODE_NICE and os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base
    finally:
        app._decoder.shutdown()


def test_session_does_not_import_the_app():
    """The dependency points one way: app → session (Session gets a Services)."""
    source = (REPO / "server" / "session.py").read_text()
    assert "from .app" not in source and "import app" not in source and "server.app" not in source


def test_connection_failed_is_one_line():
    async def main():
        with pytest.raises(client.ConnectionFailed) as e:
            await client.Client("ws://127.0.0.1:9", open_timeout=3).connect()
        assert "\n" not in str(e.value) and "127.0.0.1:9" in str(e.value)

    run(main())


# ---- the blocking call the CLI uses ---------------------------------------------------------

def test_convert_file_writes_audio_and_spectrogram(srv, tmp_path):
    out, png, progress = tmp_path / "out.flac", tmp_path / "out.png", []
    info = client.convert_file(srv.url, DEMO_CLIP, out, " Laser", "lofi", start=2.5, duration=3.0,
                               spectrogram_path=png, on_progress=lambda s, f: progress.append((s, f)))
    y, rate = soundfile.read(out)
    assert rate == 44100 and abs(len(y) / rate - 3.0) < 0.05 and png.read_bytes()[:4] == b"\x89PNG"
    assert (info.output, info.format, info.start, info.texture, info.quality) == (str(out), "flac", 2.5, "laser", "lofi")
    assert progress[0][0] == "uploading" and progress[-1] == ("done", 1.0)
    assert [f for _, f in progress] == sorted(f for _, f in progress)
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("kwargs, code", [({"texture": "disco"}, "unknown_texture"),
                                          ({"quality": "ultra"}, "unknown_quality"),
                                          ({"start": 100.0}, "bad_window")])
def test_convert_file_raises_input_error_with_the_server_code(srv, tmp_path, kwargs, code):
    from musicoder.errors import InputError

    args = {"texture": "laser", "quality": "lofi", **kwargs}
    with pytest.raises(InputError) as e:
        client.convert_file(srv.url, DEMO_CLIP, tmp_path / "x.wav", **args)
    assert e.value.code == code and isinstance(e.value, client.ServerError)
    assert not (tmp_path / "x.wav").exists()


def test_reconnect_restores_track_and_window(srv):
    async def main():
        async with client.Client(srv.url) as c:
            await c.upload(wav_bytes(4.0), name="r.wav")
            await c.clip(1.0, 2.0)
            first = c.welcome.session
            await c.reconnect()
            assert c.welcome.session != first
            r = await c.convert("water", "lofi")
            assert abs(r.duration - 2.0) < 0.05

    run(main())
