"""The server with the real textures (their tuned settings and exemplars), in its workers."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile

import client
from server.testing import ServerProcess

from .conftest import DEMO_CLIP, REPO
from .test_server import run

TEXTURES = ("laser", "water", "future")


def test_every_texture_through_the_server(tmp_path: Path):
    with ServerProcess(tmp_path / "data", models="models", workers=1) as srv:
        async def main():
            async with client.Client(srv.url, request_timeout=180) as c:
                assert [t["name"] for t in c.welcome.textures] == list(TEXTURES)
                await c.upload(DEMO_CLIP)
                await c.clip(4.0, 3.0)
                plain = None
                for texture in TEXTURES:
                    r = await c.convert(texture, "lofi", "wav", normalize=False)
                    y, rate = soundfile.read(io.BytesIO(r.audio))
                    assert rate == 44100 and abs(len(y) / rate - 3.0) < 0.05 and np.max(np.abs(y)) > 0.01
                    assert r.timings["transferring"] > 0
                    if plain is not None:
                        assert not np.allclose(plain, y, atol=1e-3), "two textures gave the same audio"
                    plain = y

        run(main(), timeout=600)
        h = srv.health()
        assert h["completed"] == 3 and h["server_imports_tensorflow"] is False
        assert h["workers_import_tensorflow"] is False  # (each worker's ready message says)
