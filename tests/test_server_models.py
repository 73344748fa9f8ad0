"""The server with the real textures (their tuned settings and exemplars), in its workers:
each built-in texture and a user's own exemplar, through the client library and through
``musicoder convert --server``, pass the checks of an in-process conversion
(tests.texture_checks); and a server that ignores a user's exemplar fails them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

import client
import models
from musicoder import audio
from server.testing import ServerProcess

from . import texture_checks as checks
from .conftest import DEMO_CLIP
from .test_server import run


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("srv"), models="models", workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def song_files(tmp_path_factory, demo_samples) -> dict[str, tuple[Path, float, np.ndarray]]:
    """{song: (file to upload, window start in s, the window's samples)}: the demo clip
    itself, and the synthetic song as a float WAV."""
    path = tmp_path_factory.mktemp("songs") / "synthetic.wav"
    synthetic = checks.synthetic_song()
    soundfile.write(path, synthetic, audio.SAMPLE_RATE, subtype="FLOAT")
    return {"synthetic": (path, 0.0, synthetic), "demo": (DEMO_CLIP, checks.SONG_WINDOW_S[0], demo_samples)}


def test_the_server_offers_the_textures(srv):
    async def main():
        async with client.Client(srv.url) as c:
            return [t["name"] for t in c.welcome.textures]

    assert run(main()) == list(models.TEXTURES)


@pytest.mark.parametrize("texture", list(models.TEXTURES))
def test_each_texture_through_the_server_moves_toward_its_exemplar_and_keeps_the_music(srv, song_files, texture):
    exemplar = checks.exemplar_samples(models.TEXTURES[texture].exemplar_path)
    crossover = models.load(texture).settings.crossover_hz
    for song, (path, start, music) in song_files.items():
        output = checks.served(srv.url, path, start, texture=texture)
        checks.check_all(checks.conversion(song, music, output, exemplar, crossover))


def test_a_user_exemplar_through_the_server_moves_toward_that_exemplar(srv, demo_samples):
    c = checks.served_user_conversion(srv.url, demo_samples)
    checks.check_all(c)
    checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())


def test_a_server_that_ignores_the_exemplar_fails_that_check(tmp_path, demo_samples):
    # the check above, against workers that convert with a built-in texture in place of
    # the uploaded exemplar (tests.ignored_exemplar_models): it must fail
    with ServerProcess(tmp_path / "data", models="tests.ignored_exemplar_models", workers=1) as wrong:
        c = checks.served_user_conversion(wrong.url, demo_samples)
    with pytest.raises(AssertionError, match="toward the exemplar given"):
        checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())


def test_the_cli_with_a_user_exemplar_on_the_server(srv, tmp_path, demo_samples):
    c = checks.cli_user_conversion(tmp_path / "served.wav", demo_samples, "--server", srv.url)
    checks.check_all(c)
    checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())
