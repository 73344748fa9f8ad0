"""Abrupt disconnects: sessions that drop their TCP connection (no close frame) at seeded
random points of the flow, then a check that the server is healthy and clean.

    python -m bench.disconnects [--count 1000] [--seed 6] [--at-once 12] [--workers 2]

Each session says hello, uploads a 1 s WAV in eight chunks, converts it (identity
textures, LOFI: the server's plumbing, not the texture transfer) and downloads the result, but
vanishes at one point drawn at random: ``mid-upload`` (after 0..7 chunks),
``after-upload`` (while the server decodes, or once the track came), ``mid-convert``
(after ``accepted`` and 0..2 progress messages) or ``mid-download`` (after ``result`` and
0..2 of its payloads). Afterwards: no session, job or file is left, every worker is
ready and none restarted, no job failed, the log has no traceback, and a full flow
works. Prints the figures; exits 1 if the server is not healthy.
``tests/test_faults.py`` runs the same with fewer sessions.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import os
import random
import sys
import tempfile
import time

import numpy as np
from websockets.asyncio.client import connect

import protocol

POINTS = ("mid-upload", "after-upload", "mid-convert", "mid-download")
PLUMBING = "tests.passthrough_models"


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A chord, 16-bit mono WAV."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    y = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    buf = io.BytesIO()
    soundfile.write(buf, y.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


async def vanish(url: str, track: bytes, point: str, depth: float) -> None:
    """One session that goes through the flow and aborts its TCP connection at ``point``;
    ``depth`` in 0..1 says where inside that stage. An error frame raises AssertionError."""
    ws = await connect(url, max_size=4 * 2**20, compression=None, open_timeout=30)
    try:
        async def until(*types: str):
            while True:
                data = await asyncio.wait_for(ws.recv(), 60)
                if isinstance(data, str):
                    msg = protocol.parse_text(data, sender="server")
                    if msg.TYPE in types:
                        return msg
                    if msg.TYPE == "error":
                        raise AssertionError(f"{point}: {msg}")

        await ws.send(json.dumps({"type": "hello", "id": 1, "version": 1, "client": "vanishing"}))
        await until("welcome")
        await ws.send(json.dumps({"type": "upload", "id": 2, "name": "v.wav", "size": len(track)}))
        frames = list(protocol.chunks(protocol.Kind.UPLOAD, 2, track, -(-len(track) // 8)))
        if point == "mid-upload":
            for frame in frames[:int(depth * len(frames))]:
                await ws.send(frame)
            return
        for frame in frames:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "upload_end", "id": 3, "upload": 2}))
        if point == "after-upload":
            if depth >= 0.5:  # else: while the server decodes it
                await until("track")
            return
        await until("track")
        await ws.send(json.dumps({"type": "convert", "id": 4, "texture": "laser", "quality": "lofi"}))
        if point == "mid-convert":
            await until("accepted")
            for _ in range(int(depth * 3)):
                await until("progress")
            return
        await until("result")
        for _ in range(int(depth * 3)):  # of AUDIO, SPECTROGRAM, RESULT_PEAKS
            if not isinstance(await asyncio.wait_for(ws.recv(), 60), bytes):
                raise AssertionError("a result payload was due")
    finally:
        ws.transport.abort()  # no close frame: a dropped connection


def plan(count: int, seed: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(rng.choice(POINTS), rng.random()) for _ in range(count)]


async def storm(url: str, count: int, seed: int = 6, at_once: int = 12) -> collections.Counter:
    """``count`` vanishing sessions, ``at_once`` at a time; the points drawn, counted."""
    track = wav(1.0)  # a 1 s window, the least: quick jobs
    points = plan(count, seed)
    gate = asyncio.Semaphore(at_once)

    async def one(point: str, depth: float) -> None:
        async with gate:
            await vanish(url, track, point, depth)

    await asyncio.gather(*(one(point, depth) for point, depth in points))
    return collections.Counter(point for point, _ in points)


def main(argv: list[str] | None = None) -> int:
    from server.testing import ServerProcess
    from tests.test_faults import assert_healthy

    ap = argparse.ArgumentParser(prog="python -m bench.disconnects", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--at-once", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="musicoder-disconnects-") as tmp:
        with ServerProcess(os.path.join(tmp, "data"), models=PLUMBING, workers=a.workers) as srv:
            before = srv.health()
            t0 = time.monotonic()
            points = asyncio.run(storm(srv.url, a.count, a.seed, a.at_once))
            seconds = time.monotonic() - t0
            try:
                h = assert_healthy(srv, a.workers)
                ok = h["restarts"] == before["restarts"] and h["failed"] == before["failed"]
                why = "" if ok else f"restarts {h['restarts']}, failed jobs {h['failed']}"
            except AssertionError as err:
                ok, why = False, str(err)
    print(f"{a.count} abrupt disconnects in {seconds:.1f} s ({a.count / seconds:.1f}/s, {a.at_once} at once): "
          + ", ".join(f"{p} {points[p]}" for p in POINTS))
    print("server healthy and clean after: " + ("yes" if ok else f"NO: {why}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
