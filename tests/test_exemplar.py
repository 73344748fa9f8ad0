"""A user's own exemplar: the protocol's second kind of upload, the server's handling of
it (one session's, validated like a song plus too_short and silent, removed with the
session), the client library, the CLI's --exemplar (in-process and through a server), and
real conversions with an exemplar file given as a user's, in-process and through the CLI,
that must move toward that exemplar (tests.texture_checks); a CLI or a server that loses
the exemplar on the way fails that check.
"""
from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

import client
import models
import protocol
from musicoder import audio
from server.testing import ServerProcess

from . import texture_checks as checks
from .conftest import DEMO_CLIP, REPO
from .test_server import PLUMBING, run, wait_clean

EXEMPLAR = REPO / "models" / "exemplars" / "water.flac"  # a real file of 12 s (any audio would do)


def wav(samples: np.ndarray, rate: int = 44100) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def crackle(seconds: float, rate: int = 44100, seed: int = 0) -> np.ndarray:
    """A vinyl-like crackle: sparse random clicks over faint hiss. (n,) float32."""
    rng = np.random.default_rng(seed)
    y = 0.01 * rng.standard_normal(int(seconds * rate))
    clicks = rng.random(len(y)) < 30 / rate
    y[clicks] += rng.choice([-0.8, 0.8], clicks.sum())
    return y.astype(np.float32)


BAD_EXEMPLARS = {  # what each is, and the code it must get
    "silence": (wav(np.zeros(3 * 44100, np.float32)), "silent"),
    "half a second": (wav(crackle(0.5)), "too_short"),
    "not audio": (b"this is a text file, not a recording\n" * 50, "not_audio"),
    "ten minutes": (wav(crackle(600.0, rate=8000), rate=8000), "too_long"),
}


# ---- protocol -------------------------------------------------------------------------

def test_upload_purpose_and_the_exemplar_message_round_trip():
    up = protocol.parse_text(json.dumps({"type": "upload", "id": 3, "name": "b.wav", "size": 9,
                                         "purpose": "exemplar"}), sender="client")
    assert up.purpose == protocol.EXEMPLAR
    old = protocol.parse_text('{"type": "upload", "id": 3, "name": "b.wav", "size": 9}', sender="client")
    assert old.purpose == "track"  # a version 1 client's upload is a track, as before
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.parse_text('{"type": "upload", "id": 3, "name": "b", "size": 9, "purpose": "song"}', sender="client")
    assert err.value.code == "bad_message" and err.value.re == 3
    msg = protocol.Exemplar(re=3, name="b.wav", duration=45.0, used=30.0, peaks=800, warnings=["cut"])
    assert protocol.parse_text(protocol.encode(msg), sender="server") == msg
    assert {"too_short", "silent"} <= set(protocol.ERROR_CODES)


# ---- the server -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("srv"), models=PLUMBING) as server:
        yield server


def test_an_exemplar_upload_then_a_conversion_with_it(srv):
    async def main():
        async with client.Client(srv.url) as c:
            assert c.welcome.version == protocol.PROTOCOL_VERSION and c.welcome.limits["exemplar_min_seconds"] == audio.EXEMPLAR_MIN_SECONDS
            await c.upload(DEMO_CLIP)
            await c.clip(2.0, 3.0)
            with pytest.raises(client.ServerError) as err:
                await c.convert(protocol.EXEMPLAR, "lofi")
            assert err.value.code == "not_ready"  # no exemplar yet
            mine = await c.upload_exemplar(EXEMPLAR)
            assert mine.name == "water.flac" and abs(mine.used - 12.0) < 0.1 and len(mine.peaks_max) == 800
            assert max(mine.peaks_max) > 0.1
            r = await c.convert(protocol.EXEMPLAR, "lofi", "wav")
            assert r.texture == protocol.EXEMPLAR and abs(r.duration - 3.0) < 0.05 and r.spectrogram[:4] == b"\x89PNG"
            r = await c.convert("water", "lofi", "wav")  # the built-in ones still work beside it
            assert r.texture == "water"
    run(main())
    wait_clean(srv)


@pytest.mark.parametrize("what", list(BAD_EXEMPLARS))
def test_a_bad_exemplar_is_refused_and_the_last_good_one_stays(srv, what):
    data, code = BAD_EXEMPLARS[what]

    async def main():
        async with client.Client(srv.url) as c:
            await c.upload(DEMO_CLIP)
            await c.clip(0.0, 2.0)
            await c.upload_exemplar(wav(crackle(4.0)), name="good.wav")
            with pytest.raises(client.ServerError) as err:
                await c.upload_exemplar(data, name=f"{what}.wav")
            assert err.value.code == code, err.value
            assert err.value.message and "Traceback" not in err.value.message
            r = await c.convert(protocol.EXEMPLAR, "lofi", "wav")  # the good one is still the session's
            assert abs(r.duration - 2.0) < 0.05
    run(main())
    wait_clean(srv)


def test_an_exemplar_is_its_sessions_alone_and_goes_with_it(srv):
    async def main():
        async with client.Client(srv.url) as a, client.Client(srv.url) as b:
            for c in (a, b):
                await c.upload(DEMO_CLIP)
                await c.clip(0.0, 2.0)
            await a.upload_exemplar(wav(crackle(3.0)), name="mine.wav")
            assert any(p.name == "exemplar.f32" for p in (Path(srv.data_dir) / "temp").rglob("*"))
            with pytest.raises(client.ServerError) as err:
                await b.convert(protocol.EXEMPLAR, "lofi")
            assert err.value.code == "not_ready"
            await a.convert(protocol.EXEMPLAR, "lofi")
    run(main())
    wait_clean(srv)  # no session folder left: the exemplar went with its session


def test_a_long_exemplar_is_cut_with_a_warning(srv):
    async def main():
        async with client.Client(srv.url) as c:
            mine = await c.upload_exemplar(wav(crackle(45.0, rate=16000), rate=16000), name="long.wav")
            assert abs(mine.duration - 45.0) < 0.1 and abs(mine.used - audio.EXEMPLAR_MAX_SECONDS) < 0.1
            assert any("first 30 s" in w for w in mine.warnings)
    run(main())


def test_reconnect_sends_the_exemplar_again(srv):
    async def main():
        async with client.Client(srv.url) as c:
            await c.upload_exemplar(wav(crackle(3.0)), name="mine.wav")
            await c.upload(DEMO_CLIP)
            await c.clip(0.0, 2.0)
            await c.reconnect()
            r = await c.convert(protocol.EXEMPLAR, "lofi")
            assert abs(r.duration - 2.0) < 0.05
    run(main())


def test_a_version_1_client_is_still_served(srv):
    from .test_server import Raw

    async def main():
        async with Raw(srv.url) as raw:
            welcome = await raw.hello()  # Raw says version 1
            assert welcome.version == protocol.PROTOCOL_VERSION
    run(main())


# ---- the CLI ----------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    out = {}
    for what, (data, _) in BAD_EXEMPLARS.items():
        out[what] = folder / f"{what.replace(' ', '_')}.wav"
        out[what].write_bytes(data)
    return out


@pytest.mark.parametrize("what", list(BAD_EXEMPLARS))
def test_the_cli_refuses_a_bad_exemplar_in_one_line(bad_files, tmp_path, what):
    out = tmp_path / "x.wav"
    proc = run_cli("convert", str(DEMO_CLIP), "-o", str(out), "--exemplar", str(bad_files[what]), "--duration", "2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert bad_files[what].name in proc.stderr  # says which file is bad: the song or the exemplar
    assert not out.exists()


def test_texture_and_exemplar_are_exclusive(tmp_path):
    proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "x.wav"), "--texture", "water",
                   "--exemplar", str(EXEMPLAR))
    assert proc.returncode == 2 and "not allowed with" in proc.stderr


def test_the_cli_converts_with_an_exemplar_in_process_and_on_a_server(srv, tmp_path):
    mine = tmp_path / "crackle.wav"
    mine.write_bytes(wav(crackle(5.0)))
    for where in ((), ("--server", srv.url)):
        out = tmp_path / f"out{len(where)}.wav"
        proc = run_cli("convert", str(DEMO_CLIP), "-o", str(out), "--exemplar", str(mine), "--duration", "3",
                       "--quality", "lofi", *where)
        assert proc.returncode == 0, proc.stderr
        assert abs(audio.load(out).duration - 3.0) < 0.05


# ---- which settings a user's exemplar gets ---------------------------------------------

def hum(seconds: float, rate: int = 44100) -> np.ndarray:
    """A tonal hum: 110 Hz and six harmonics. (n,) float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * sum(np.sin(2 * np.pi * 110 * h * t) / h for h in range(1, 8))).astype(np.float32)


def test_a_user_exemplar_takes_the_settings_of_the_nearest_tuning_recording_by_sound(tmp_path):
    hiss = 0.05 * np.random.default_rng(2).standard_normal(3 * 44100).astype(np.float32)
    record = json.loads((REPO / "models" / "settings" / "any.json").read_text())
    table = {r["recording"]: r for r in record["by_sound"]}
    noisy = models.from_exemplar(hiss)
    tonal = models.from_exemplar(hum(3.0))
    # the shipped table: the hiss matches its flattest recording, the hum its most tonal one
    assert noisy.meta["matched"] == record["by_sound"][0]["recording"]
    assert tonal.meta["matched"] == record["by_sound"][-1]["recording"]
    for m in (noisy, tonal):
        assert dataclasses.asdict(m.settings) == dataclasses.asdict(
            models.transfer.Settings(**table[m.meta["matched"]]["settings"]))
    # a table of two rows in a copy: nearest wins; without a table, the one setting for all
    folder = tmp_path / "settings"
    folder.mkdir()
    two = [{"recording": "steam", "flatness": -1.0, "settings": {"crossover_hz": 600.0}},
           {"recording": "organ", "flatness": -12.0, "settings": {"crossover_hz": 3500.0}}]
    (folder / "any.json").write_text(json.dumps(record | {"by_sound": two, "settings": {"crossover_hz": 1000.0}}))
    assert models.from_exemplar(hiss, folder).settings.crossover_hz == 600.0
    assert models.from_exemplar(hum(3.0), folder).meta["matched"] == "organ"
    (folder / "any.json").write_text(json.dumps({k: v for k, v in record.items() if k != "by_sound"}
                                                | {"settings": {"crossover_hz": 1000.0}}))
    models._any_settings.cache_clear()
    alone = models.from_exemplar(hum(3.0), folder)
    assert alone.settings.crossover_hz == 1000.0 and alone.meta["matched"] is None
    (folder / "any.json").write_text(json.dumps(record | {"by_sound": [{"recording": "x", "flatness": "flat"}]}))
    models._any_settings.cache_clear()
    with pytest.raises(models.ModelError, match="any.json: corrupt by_sound"):
        models.from_exemplar(hiss, folder)


# ---- real conversions -------------------------------------------------------------------

@pytest.fixture(scope="module")
def user_converted(demo_samples) -> list[checks.Conversion]:
    """Both songs of tests.texture_checks through checks.USER_EXEMPLAR, in-process."""
    return checks.user_conversions(checks.songs(demo_samples))


def test_a_user_exemplar_moves_the_music_toward_it_and_keeps_it(user_converted):
    for c in user_converted:
        checks.check_all(c)


def test_a_user_exemplar_moves_the_music_toward_that_exemplar_not_another(user_converted):
    demo = next(c for c in user_converted if c.song == "demo")  # the song the margin was measured on
    checks.check_moves_toward_this_exemplar(demo, checks.other_exemplars())


def test_the_cli_with_a_user_exemplar_moves_toward_that_exemplar(tmp_path, demo_samples):
    c = checks.cli_user_conversion(tmp_path / "mine.wav", demo_samples)
    checks.check_all(c)
    checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())


def test_a_cli_that_ignores_the_exemplar_fails_that_check(tmp_path, demo_samples, monkeypatch):
    # the check above with the exemplar lost on the way: a built-in texture in its place
    # (the Conversion's own crossover, for the other checks, is that built-in's then)
    monkeypatch.setattr(models, "from_exemplar", lambda samples, settings_dir=None: models.load("water"))
    c = checks.cli_user_conversion(tmp_path / "mine.wav", demo_samples)
    with pytest.raises(AssertionError, match="toward the exemplar given"):
        checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())


def test_a_server_whose_exemplar_is_the_identity_fails_that_check(srv, demo_samples):
    # tests.passthrough_models (this module's server) converts a user's exemplar with the identity
    c = checks.served_user_conversion(srv.url, demo_samples)
    with pytest.raises(AssertionError, match="toward the exemplar given"):
        checks.check_moves_toward_this_exemplar(c, checks.other_exemplars())
