"""The numpy runtime of the texture networks: it equals the Keras model it was exported
from, chunking over time changes nothing, and a conversion never imports TensorFlow."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import models
from models import network, runtime
from musicoder import audio

from .conftest import DEMO_CLIP, REPO

TOLERANCE = 1e-4  # nats, the bar; float32 rounding alone is ~1e-5


@pytest.fixture(scope="module")
def real_spectrograms() -> dict[str, np.ndarray]:
    """Log-magnitudes of real music: 10 s of the demo clip and 6 s of its later part, and
    a quiet, sparse one (the demo at -40 dB, so many bins sit near the log floor)."""
    ten = audio.load(DEMO_CLIP, start=0.0, duration=10.0).samples
    later = audio.load(DEMO_CLIP, start=18.0, duration=6.0).samples
    return {"demo 0-10 s": runtime.frame_major_log_mag(ten), "demo 18-24 s": runtime.frame_major_log_mag(later),
            "demo -40 dB": runtime.frame_major_log_mag(later * 0.01)}


@pytest.mark.parametrize("name", list(models.TEXTURES))
def test_numpy_runtime_equals_the_keras_model(name, real_spectrograms):
    pytest.importorskip("tensorflow")
    from models import export

    folder = models.WEIGHTS_DIR
    meta = json.loads((folder / f"{name}.json").read_text())
    keras_model = export.keras_model(meta, folder / f"{name}.weights.h5")
    loaded = models.load(name)
    for label, x in real_spectrograms.items():
        z = network.noise(x.shape[0], int(loaded.params["noise_channels"]), int(loaded.params["noise_seed"]))
        want = export.keras_forward(keras_model, x, z)
        got = loaded.transform(np.ascontiguousarray(x.T)).T
        diff = float(np.max(np.abs(got - want)))
        assert diff <= TOLERANCE, f"{name} on {label}: the runtime differs from Keras by {diff:.2e} nats"
        # and the texture really changes the music (so equality is not identity against identity)
        assert float(np.max(np.abs(want - x))) > 0.5


def test_chunked_pass_equals_the_whole_clip_pass(real_spectrograms):
    m = models.load("laser")
    x = np.ascontiguousarray(real_spectrograms["demo 0-10 s"].T)  # 862 frames
    whole = m.transform(x, chunk_frames=10_000)
    for chunk in (1024, 300, 37):
        diff = float(np.max(np.abs(m.transform(x, chunk_frames=chunk) - whole)))
        assert diff <= 2e-5, f"chunks of {chunk} frames differ from the whole pass by {diff:.2e} nats"


def test_chunks_without_their_context_would_differ(real_spectrograms):
    """The equality above is not a tautology: chunks cut with no context around them
    change the frames near each cut."""
    m = models.load("water")
    x = real_spectrograms["demo 0-10 s"]
    z = network.noise(x.shape[0], int(m.params["noise_channels"]), int(m.params["noise_seed"]))
    whole = runtime.forward(m._weights, m.params, x, z)
    cut = 431
    halves = np.concatenate([runtime.forward(m._weights, m.params, x[:cut], z[:cut]),
                             runtime.forward(m._weights, m.params, x[cut:], z[cut:])])
    reach = runtime.context_frames(m.params)
    assert float(np.max(np.abs(halves - whole)[cut - reach:cut + reach])) > 1e-2
    assert float(np.max(np.abs(halves - whole)[:cut - reach])) == 0.0


def test_context_covers_the_receptive_field():
    params = network.DEFAULT_PARAMS
    assert runtime.context_frames(params) == sum(params["dilations"]) + (params["template_width"] - 1) // 2 == 36


def test_a_conversion_never_imports_tensorflow_and_says_nothing_on_stderr(tmp_path):
    """``musicoder convert`` in a clean process: the result is written, stderr is empty
    (no library talks there: the user sees MusiCoder's own lines only), and neither
    TensorFlow nor Keras nor librosa was imported."""
    out = tmp_path / "out.wav"
    code = ("import sys; import cli; rc = cli.main(sys.argv[1:]); "
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'librosa'}); "
            "print('HEAVY', heavy); sys.exit(rc)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run([sys.executable, "-c", code, "convert", str(DEMO_CLIP), "-o", str(out), "--texture",
                           "laser", "--quality", "lofi", "--duration", "3"],
                          capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "HEAVY []" in proc.stdout
    assert audio.load(out).duration == pytest.approx(3.0, abs=0.01)
