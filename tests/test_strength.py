"""Strength: 0 returns the music (to reconstruction error), 1 the texture as tuned, and in
between the output moves toward the texture step by step; outside 0..1 it is refused, by
the engine and by the CLI. The strength table of models.evaluate says when it is not monotone."""
from __future__ import annotations

import numpy as np
import pytest

import cli
import models
from models import evaluate
from musicoder import audio, engine, spectral
from musicoder import texture as transfer

from .conftest import DEMO_CLIP


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return audio.load(DEMO_CLIP, start=4.0, duration=6.0).samples


def test_strength_0_is_the_music_and_1_the_texture_as_tuned(clip):
    model = models.load("water")
    plain = engine.render(clip, "standard", normalize=False).samples
    none = engine.render(clip, "standard", model.transform, strength=0.0, normalize=False).samples
    assert np.array_equal(none, plain)  # no transfer at all, not one weighted by 0
    assert np.sqrt(np.mean((none - clip) ** 2)) < 1e-4 * np.sqrt(np.mean(clip**2))  # reconstruction error
    tuned = engine.render(clip, "standard", model.transform, normalize=False).samples
    full = engine.render(clip, "standard", model.transform, strength=1.0, normalize=False).samples
    assert np.array_equal(tuned, full)


def test_the_output_moves_toward_the_texture_step_by_step(clip):
    m = models.load("laser")
    for transform in (m.transform, transfer.make_transform(m.exemplar, m.settings)):  # a plain one, a Transfer
        log_x = spectral.to_log(spectral.magnitude(clip))
        log_t = transform(log_x)
        distances = []
        for s in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = engine.render(clip, "lofi", transform, strength=s, normalize=False).samples
            distances.append(float(np.mean(np.abs(spectral.to_log(spectral.magnitude(y)) - log_t))))
        assert all(b < a for a, b in zip(distances, distances[1:])), distances


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_a_strength_outside_0_to_1_is_refused(clip, bad):
    with pytest.raises(ValueError, match="strength"):
        engine.render(clip[:44100], "lofi", models.load("water").transform, strength=bad)


def test_the_cli_refuses_a_strength_outside_0_to_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["convert", str(DEMO_CLIP), "--texture", "water", "--strength", "2", "-o", str(tmp_path / "x.wav")])
    assert exit_.value.code == cli.EXIT_INPUT and "--strength" in capsys.readouterr().err


def test_the_strength_table_says_whether_advantage_and_content_move_monotonically():
    def summary(strength, advantage, content):
        return {"texture": "water", "method": "musicoder", "quality": "standard", "strength": strength,
                "mean_advantage": advantage, "mean_content": content}

    good = [summary(s, 0.3 * s, 1.0 - 0.2 * s) for s in (0.0, 0.5, 1.0)]
    assert evaluate.strength_table(good).splitlines()[-1].endswith("yes")
    bad = [*good[:2], summary(1.0, 0.05, 0.8)]  # the advantage falls back at full strength
    assert evaluate.strength_table(bad).splitlines()[-1].endswith("NO")
