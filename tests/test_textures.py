"""The shipped textures: they load, check their files, and really move the sound toward
their exemplar while keeping the music (on a synthetic song nothing was tuned on and on
real music), by a measure of the project's own (models.metrics) that tuning never used;
and that measure fails an engine that keeps the music as it is."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import librosa
import numpy as np
import pytest

import models
from musicoder import audio, engine, spectral
from musicoder import texture as transfer
from musicoder.errors import InputError

from .conftest import REPO
from models.metrics import SR, chroma_similarity, style_distance


def synthetic_song(seconds: float = 4.0, rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Music no model was trained on: a I-vi-IV-V progression of harmonic notes with a
    kick and hi-hat pattern at 120 BPM. (n,) float32."""
    t = np.arange(int(seconds * rate)) / rate
    y = np.zeros_like(t)
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    beat = 0.5
    for i in range(int(seconds / beat)):
        start = int(i * beat * rate)
        seg = t[: int(beat * rate)]
        env = np.exp(-3 * seg)
        for note in chords[(i // 2) % 4]:
            f = 440 * 2 ** ((note - 69) / 12)
            tone = sum(np.sin(2 * np.pi * f * h * seg) / h for h in range(1, 6))
            y[start:start + len(seg)] += 0.15 * env * tone
        kick = np.sin(2 * np.pi * 60 * seg * np.exp(-8 * seg)) * np.exp(-20 * seg)
        y[start:start + len(seg)] += 0.5 * kick
        hat = np.random.default_rng(i).standard_normal(len(seg)) * np.exp(-60 * seg)
        y[start + len(seg) // 2:start + len(seg)] += 0.08 * hat[: len(seg) - len(seg) // 2]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture(scope="module")
def songs(demo_samples) -> dict[str, np.ndarray]:
    """Two 4 s songs: a synthetic one nothing was tuned on, and real music (the demo clip;
    the held-out judgement is the README's judge table)."""
    return {"synthetic": synthetic_song(), "demo": demo_samples}


def _to_judge_rate(y: np.ndarray) -> np.ndarray:
    return librosa.resample(y, orig_sr=audio.SAMPLE_RATE, target_sr=SR)


@pytest.fixture(scope="module")
def rerendered(songs) -> dict[str, np.ndarray]:
    """Each song through the same engine with no texture: what reconstruction alone does."""
    return {k: _to_judge_rate(engine.render(y, "standard").samples) for k, y in songs.items()}


@pytest.fixture(scope="module", params=list(models.TEXTURES))
def converted(request, songs, rerendered):
    """(texture, exemplar, {song: (input, output, plain re-render)}), all at the metric's rate."""
    name = request.param
    model = models.load(name)
    exemplar = _to_judge_rate(audio.load(models.TEXTURES[name].exemplar_path, duration=None).samples)
    runs = {k: (_to_judge_rate(y), _to_judge_rate(engine.render(y, "standard", model.transform).samples),
                rerendered[k]) for k, y in songs.items()}
    return name, exemplar, runs


def test_the_three_textures_are_listed():
    assert list(models.TEXTURES) == ["laser", "water", "future"]
    for t in models.TEXTURES.values():
        assert t.description and t.label
        clip = audio.load(t.exemplar_path, duration=None)
        assert clip.duration >= 10.0  # a steady exemplar of at least 10 s, also the preview


def moved_db(runs: dict, s: np.ndarray) -> dict[str, float]:
    """Per song, how many dB closer in style distance to the exemplar ``s`` the output is
    than a plain re-render (runs: {song: (input, output, plain re-render)})."""
    return {k: style_distance(plain, s) - style_distance(y, s) for k, (_, y, plain) in runs.items()}


def test_output_moves_toward_the_exemplar(converted):
    # At least 1 dB closer to the exemplar than a plain re-render, on average over the songs
    name, s, runs = converted
    moves = moved_db(runs, s)
    assert np.mean(list(moves.values())) > 1.0, f"{name}: dB closer than a plain re-render: {moves}"


def test_the_move_test_fails_an_engine_that_keeps_the_music(songs, rerendered):
    # The transfer with every weight at "keep" (what an untuned or broken engine does: the
    # music unchanged) must fail test_output_moves_toward_the_exemplar by a wide margin
    keep = transfer.Settings(crossover_hz=2000.0, keep_low=1.0, keep_high=1.0, spread=0.0, level=0.0, fine=0.0)
    for name in models.TEXTURES:
        still = transfer.make_transform(models.load(name).exemplar, keep)
        s = _to_judge_rate(audio.load(models.TEXTURES[name].exemplar_path, duration=None).samples)
        runs = {k: (None, _to_judge_rate(engine.render(y, "standard", still).samples), rerendered[k])
                for k, y in songs.items()}
        assert np.mean(list(moved_db(runs, s).values())) < 0.2, name


def lowpass(y: np.ndarray, hz: float) -> np.ndarray:
    """y (n,) at the metric's rate with nothing above ``hz`` (an FFT brick wall)."""
    spectrum = np.fft.rfft(y)
    spectrum[np.fft.rfftfreq(len(y), 1 / SR) > hz] = 0
    return np.fft.irfft(spectrum, len(y))


def test_output_keeps_the_music(converted):
    # Below its crossover a texture keeps the music's fine structure, so its pitch, and moves
    # only its band dynamics part way (spread_low: laser's 0.7 costs the synthetic song's
    # chroma there 0.975 -> 0.86): the chroma there must stay (on both songs); an engine
    # that put the exemplar's pitch there would fall far below. Over the whole band the real song must stay
    # recognisable too; on the synthetic song, with few partials, the exemplar's pitched
    # events above the crossover can outweigh them in a full-band chroma, so there only
    # the part below the crossover is the claim.
    name, _, runs = converted
    below = models.load(name).settings.crossover_hz / 1.25  # a band's width under the crossover
    for song, (x, y, _) in runs.items():
        kept = chroma_similarity(lowpass(x, below), lowpass(y, below))
        assert kept > 0.8, f"{name} on the {song} song: chroma below {below:.0f} Hz {kept:.2f}"
    x, y, _ = runs["demo"]
    assert chroma_similarity(x, y) > 0.5, f"{name} on the demo song: chroma {chroma_similarity(x, y):.2f}"


def test_output_is_not_the_exemplar_pasted_in(converted):
    # A converter that ignored the music would keep no chroma; one that only mixed the
    # exemplar in would not move this far at this similarity: a half-and-half mix.
    # (Laser with its 600 Hz crossover failed this on the synthetic song, chroma 0.37
    # against the mix's 0.58; at 1 kHz it keeps 0.79.)
    name, s, runs = converted
    for song, (x, y, _) in runs.items():
        mix = 0.5 * x / np.sqrt(np.mean(x**2)) + 0.5 * np.resize(s, len(x)) / np.sqrt(np.mean(s**2))
        assert style_distance(y, s) < style_distance(mix, s) or chroma_similarity(x, y) > chroma_similarity(x, mix), \
            f"{name} on the {song} song"


def test_the_transform_keeps_shape_and_is_finite(songs):
    log_mag = spectral.to_log(spectral.magnitude(songs["synthetic"][: 3 * audio.SAMPLE_RATE + 123]))
    for name in models.TEXTURES:
        out = models.load(name).transform(log_mag)
        assert out.shape == log_mag.shape and out.dtype == np.float32 and np.isfinite(out).all()


def test_unknown_texture_is_a_clear_input_error():
    with pytest.raises(InputError) as err:
        models.texture("velvet")
    assert err.value.code == "unknown_texture" and "laser" in str(err.value)


def test_missing_or_corrupt_settings_are_a_clear_model_error(tmp_path):
    copy = tmp_path / "settings"
    shutil.copytree(REPO / "models" / "settings", copy)
    (copy / "water.json").write_text("{ this is not json")
    with pytest.raises(models.ModelError, match="water.json: corrupt"):
        models.load("water", settings_dir=copy)
    record = json.loads((copy / "future.json").read_text())
    (copy / "future.json").write_text(json.dumps(record | {"settings": {**record["settings"], "keep_high": 7}}))
    with pytest.raises(models.ModelError, match="future.json: corrupt.*keep_high"):
        models.load("future", settings_dir=copy)
    (copy / "laser.json").write_text(json.dumps(record | {"format_version": 1}))
    with pytest.raises(models.ModelError, match="laser.json: format 1"):
        models.load("laser", settings_dir=copy)
    (copy / "water.json").unlink()
    with pytest.raises(models.ModelError, match="water.json: .*missing"):
        models.load("water", settings_dir=copy)


def test_a_missing_or_broken_exemplar_is_a_clear_model_error(tmp_path):
    for content in (None, b"not audio at all"):
        path = tmp_path / "gone.flac"
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(models.ModelError, match="gone.flac: unusable exemplar"):
            models.analyse_exemplar_file(path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_textures_command_lists_names_descriptions_and_exemplars():
    proc = run_cli("textures", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == ["laser", "water", "future"]
    for r in rows:
        assert r["description"] and audio.load(r["exemplar"], duration=2).duration == 2.0


def test_convert_command_writes_the_textured_clip(tmp_path):
    out, png = tmp_path / "demo_water.mp3", tmp_path / "demo_water.png"
    proc = run_cli("convert", str(REPO / "examples" / "demo.ogg"), "-o", str(out), "--texture", "water",
                   "--quality", "lofi", "--duration", "3", "--spectrogram", str(png))
    assert proc.returncode == 0, proc.stderr
    assert audio.load(out).source.codec == "mp3" and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,needle", [
    (["--texture", "velvet"], "velvet"),
    (["--texture", "water", "--quality", "ultra"], "ultra"),
    (["--quality", "hifi"], "--texture"),
])
def test_convert_command_refuses_bad_choices_in_one_line(args, needle, tmp_path):
    proc = run_cli("convert", str(REPO / "examples" / "demo.ogg"), "-o", str(tmp_path / "x.wav"), *args)
    assert proc.returncode == 2 and needle in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
