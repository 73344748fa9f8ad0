"""The texture network (musicoder.control): its numpy forward pass is the network that
TensorFlow trained (within 1e-4 on real inputs), the transfer that training optimised is
the product's, an untrained network is the tuned engine, and a conversion never imports
TensorFlow. The TensorFlow tests skip without the ``train`` extra, except where
MUSICODER_REQUIRE_TF=1 (CI) makes its absence a failure."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import models
from musicoder import audio, control, engine, spectral
from musicoder import texture as transfer

from .conftest import DEMO_CLIP, REPO

SHIPPED = models.LEARNED_DIR / "controller.npz"


def _tensorflow():
    if os.environ.get("MUSICODER_REQUIRE_TF") == "1":
        import tensorflow  # noqa: F401 - its absence fails here
    else:
        pytest.importorskip("tensorflow")
    from models import train
    return train


@pytest.fixture(scope="module")
def demo_window() -> np.ndarray:
    """The training window's length of the demo clip, (WINDOW_SAMPLES,) float32."""
    from models.train import WINDOW_SAMPLES
    return audio.load(DEMO_CLIP, start=2.0, duration=6.0).samples[:WINDOW_SAMPLES]


def _real_exemplars(train):
    """The three built-in exemplars as the training sees them, and the first 6 s of the
    demo clip itself as a user's own exemplar (real, tonal music)."""
    pool = [train.make_exemplar(name, audio.load(t.exemplar_path, duration=None).samples, builtin=name)
            for name, t in models.TEXTURES.items()]
    pool.append(train.make_exemplar("own", audio.load(DEMO_CLIP, duration=6.0).samples))
    return pool


@pytest.fixture(scope="module")
def shipped(demo_window):
    """(train module, tf, the shipped network in numpy, the same in TensorFlow, and
    [(exemplar, training example of the demo window)] for the real exemplars)."""
    train = _tensorflow()
    net = control.Controller.load(SHIPPED)
    examples = [(ex, train.example(demo_window, ex)) for ex in _real_exemplars(train)]
    return train, train._tf(), net, train.TFController(net.weights), examples


def test_the_numpy_forward_pass_is_the_trained_network(shipped):
    """The shipped weights, run by TensorFlow's layers and by musicoder.control's numpy
    pass, on real music and real exemplars: the same offsets within 1e-4."""
    train, tf, net, tf_net, examples = shipped
    for ex, b in examples:
        clip, frame = net(b["clip"], b["frame"].T)
        tf_clip, tf_frame = tf_net(tf.constant(b["clip"][None]), tf.constant(b["frame"][None]))
        assert np.abs(tf_clip.numpy()[0] - clip).max() < 1e-4, ex.name
        assert np.abs(np.transpose(tf_frame.numpy()[0], (1, 2, 0)) - frame).max() < 1e-4, ex.name
        assert np.abs(clip).max() > 1e-3, "the shipped network is untrained: all its offsets are zero"


def test_training_optimises_the_products_transfer(shipped):
    """models.train's TensorFlow transfer, driven by the shipped network, gives the
    log-magnitude the product's Transfer gives (within 1e-3 nats)."""
    train, tf, net, tf_net, examples = shipped
    for ex, b in examples:
        bt = train._tensors(tf, {k: v[None] for k, v in b.items()})
        ours = transfer.make_transform(ex.analysis, ex.base.settings, net)(b["log_x"].T)
        theirs = train.transfer_tf(bt, *tf_net(bt["clip"], bt["frame"])).numpy()[0].T
        assert np.abs(ours - theirs).max() < 1e-3, ex.name
        assert np.abs(ours - ex.base(b["log_x"].T)).mean() > 0.01, f"{ex.name}: the network changed nothing"


def test_the_loss_reads_the_crossfade_frontier_as_the_judge_does(shipped):
    """The crossfade the loss measures against is read as the judge's np.interp reads it,
    including between crossfades, off the ends and with contents out of order; its slope
    reaches the output's content (a gradient), and the crossfades run from the music
    (share 0) to the exemplar (share 1)."""
    train, tf = shipped[0], shipped[1]
    rng = np.random.default_rng(3)
    k = len(train.MIX_SHARES)
    contents = rng.uniform(0.0, 1.0, (6, k)).astype(np.float32)
    moves = rng.uniform(-0.2, 1.0, (6, k)).astype(np.float32)
    kept = np.array([-0.1, 0.05, 0.3, 0.55, 0.9, 1.2], np.float32)
    kept_t = tf.Variable(kept)
    with tf.GradientTape() as tape:
        got = train.frontier(tf, tf.constant(contents), tf.constant(moves), kept_t)
        total = tf.reduce_sum(got)
    slope = tape.gradient(total, kept_t).numpy()
    for i in range(6):
        order = np.argsort(contents[i])
        want = np.interp(kept[i], contents[i][order], moves[i][order])
        assert got.numpy()[i] == pytest.approx(want, abs=1e-5)
    assert slope[0] == 0.0 and slope[-1] == 0.0  # clamped off the ends, as np.interp
    assert np.any(slope[1:-1] != 0.0)

    _, b = shipped[4][1]
    bt = train._tensors(tf, {key: v[None] for key, v in b.items()})
    mixes = train.crossfade_logs(tf, bt["log_x"], bt["ex_log"]).numpy()[0]
    assert mixes.shape == (k, *b["log_x"].shape)
    for share, i in ((0.0, 0), (1.0, k - 1)):
        assert train.MIX_SHARES[i] == share
        own = b["log_x"] if share == 0.0 else b["ex_log"]
        diff = mixes[i] - own  # the same sound at unit mean power: a constant offset
        assert np.ptp(diff[own > np.log(1e-4)]) < 1e-3


def test_an_untrained_network_is_the_tuned_engine():
    """Zero output layers: every control is the tuned one, so the conversion is the tuned
    engine's, sample for sample (within float rounding)."""
    m = models.load("water", engine="tuned")
    x = audio.load(DEMO_CLIP, duration=4.0).samples
    untrained = transfer.make_transform(m.exemplar, m.settings, control.Controller(control.zero_weights()))
    a = engine.render(x, "lofi", m.transfer)
    b = engine.render(x, "lofi", untrained)
    assert np.abs(a.samples - b.samples).max() < 1e-4


def test_the_network_moves_controls_within_their_range_and_below_the_crossover():
    """Random output layers: the controls stay in 0..1, vary from frame to frame, and the
    bands below the crossover (tuned: none of the exemplar's fine structure) take some."""
    rng = np.random.default_rng(3)
    w = control.zero_weights()
    w["clip_out/kernel"] = rng.normal(0, 0.1, w["clip_out/kernel"].shape).astype(np.float32)
    w["frame_out/kernel"] = rng.normal(0, 0.1, w["frame_out/kernel"].shape).astype(np.float32)
    m = models.load("water", engine="tuned")
    tr = transfer.make_transform(m.exemplar, m.settings, control.Controller(w))
    log_x = spectral.to_log(spectral.magnitude(audio.load(DEMO_CLIP, duration=4.0).samples))
    env = transfer.band_envelopes(log_x)
    keep, level, spread, fine = tr.controls(env, transfer.placement(env.shape[1], transfer.onsets(env), m.exemplar))
    for c in (keep, level, spread, fine):
        assert c.min() >= 0.0 and c.max() <= 1.0
    assert keep.shape == fine.shape == env.shape and level.shape == spread.shape == (transfer.N_BANDS, 1)
    assert np.std(fine, axis=1).max() > 1e-3
    _, centres = transfer.filterbank()
    assert fine[centres < m.settings.crossover_hz].max() > 0.01


def test_a_song_in_blocks_is_the_whole_song_with_a_network():
    """Plan once, apply block by block: the same frames as the whole clip at once."""
    rng = np.random.default_rng(4)
    w = control.zero_weights()
    w["frame_out/kernel"] = rng.normal(0, 0.1, w["frame_out/kernel"].shape).astype(np.float32)
    m = models.load("laser", engine="tuned")
    tr = transfer.make_transform(m.exemplar, m.settings, control.Controller(w))
    log_x = spectral.to_log(spectral.magnitude(audio.load(DEMO_CLIP, duration=6.0).samples))
    whole = tr(log_x)
    plan = tr.plan(transfer.band_envelopes(log_x), float(np.mean(np.exp(2.0 * log_x, dtype=np.float64))))
    half = log_x.shape[1] // 2
    parts = np.concatenate([tr.apply(log_x[:, :half], plan, 0), tr.apply(log_x[:, half:], plan, half)], axis=1)
    assert np.abs(parts - whole).max() < 1e-5
    share = tr.music_share(1.0, plan, half, log_x.shape[1] - half)
    assert share.shape == (log_x.shape[1] - half, spectral.N_BINS) and 0 <= share.min() <= share.max() <= 1


def test_a_stereo_conversion_with_the_learned_engine():
    """The stereo side follows the mid where the network's fine share varies by frame."""
    m = models.load("water", engine="learned")
    x = audio.load(DEMO_CLIP, duration=3.0, stereo=True).samples
    x = np.stack([x[0], 0.6 * x[-1] + 0.01]) if x.shape[0] == 2 else np.stack([x[0], 0.6 * x[0]])
    out = engine.render(x, "lofi", m.transfer).samples
    assert out.shape == x.shape and np.isfinite(out).all()
    assert np.abs(out[0] - out[1]).max() > 1e-3  # still stereo


def test_a_corrupt_network_is_a_model_error(tmp_path, monkeypatch):
    (tmp_path / "controller.npz").write_bytes(b"not a network")
    monkeypatch.setattr(models, "LEARNED_DIR", tmp_path)
    with pytest.raises(models.ModelError, match="controller.npz"):
        models.controller("learned")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="lack"):
        control.Controller.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="unknown engine"):
        models.controller("neural")


def test_a_conversion_never_imports_tensorflow():
    code = ("import sys, models; from musicoder import audio, engine\n"
            "m = models.load('future', engine='learned')\n"
            f"engine.render(audio.load({str(DEMO_CLIP)!r}, duration=2.0).samples, 'lofi', m.transfer)\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
