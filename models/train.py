"""Train the texture network (:mod:`musicoder.control`) with TensorFlow (the ``train`` extra).

    python -m models.train [--music-dir DIR] [--sounds DIR] [--steps 2500] [--batch 8]
                           [--out models/learned] [--hours H] [--resume]

What it learns: for a window of training music and an exemplar, the controls of the
band-statistics transfer that move the *consistent* spectrogram of the result (the STFT
of its inverse STFT, with the music's phase: what phase retrieval starts from) toward the
exemplar's sound-texture statistics, over the whole band and over the body of the music
(250 Hz - 4 kHz) separately, further than crossfading the exemplar into the music moves
them at the same chroma and onsets kept (:class:`Objective`). The transfer
itself is written here a second time in TensorFlow, so that the loss reaches the network
through it; a test holds it to :class:`musicoder.texture.Transfer`.

Data (``models.data``): 5 s windows of the training packages' tracks (``train/``), less the
two packages kept out of the network's training (``data.NETWORK_HELD_OUT``); exemplars:
the built-in three and the sound effects and ambiences that
``scripts/gather_exemplar_sounds.py`` gathers from Debian's game data packages, each cut,
resampled (pitch and speed) and scaled at random. Every exemplar starts from the settings
the product gives it (a built-in texture's own, a user's exemplar's row of ``any.json``),
which is what the network moves away from.

The statistics (:func:`statistics`): per band of the transfer's 48, the level shape,
spread and within-band flatness (timbre), the envelope modulation power in six octave
bands from 0.5 to 32 Hz, the envelope sparsity and the co-modulation of 12 pooled bands
(texture), after McDermott & Simoncelli (2011). Moves are measured as the judge measures
them (1 − distance after / distance before), but on the transfer's own bands, not the
judge's mel bands: the judge and ``models.metrics`` stay measures it never trained on.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from musicoder import audio, control, spectral
from musicoder import texture as transfer

from . import TEXTURES, from_exemplar, load
from .data import DEFAULT_MUSIC_DIR, DATA_DIR, NETWORK_HELD_OUT, audio_files, portable_command, user_path

HERE = Path(__file__).resolve().parent
LEARNED_DIR = HERE / "learned"
WINDOW_SECONDS = 5.0
WINDOW_SAMPLES = int(WINDOW_SECONDS * spectral.SAMPLE_RATE)
FRAMES = spectral.n_frames(WINDOW_SAMPLES)  # 431
FRAME_RATE = spectral.SAMPLE_RATE / spectral.HOP  # 86.13 Hz
BODY_HZ = (250.0, 4000.0)  # the body of the music: where its notes live
MOD_BANDS_HZ = ((0.5, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 32))
POOLS = 12  # co-modulation: 48 bands pooled by 4
CONTENT_FLOOR = 0.75  # below it content costs FLOOR_WEIGHT per unit more: the melody must stay recognisable
FLOOR_WEIGHT = 12.5
BUILT_IN_SHARE = 0.3  # of the examples: the built-in textures, the product's most used
MAX_EXEMPLAR_SECONDS = 8.0
VALIDATION_PAIRS = 48


# ---------------------------------------------------------------- data

@dataclasses.dataclass
class Exemplar:
    """One exemplar of the pool: its analysis, the transfer it starts from (the product's
    settings for it) and its log-magnitude tiled to FRAMES frames (for its statistics)."""

    name: str
    analysis: transfer.ExemplarAnalysis
    base: transfer.Transfer
    stats: control.ExemplarStatistics  # what the network reads of it
    tiled: np.ndarray  # (FRAMES, N_BINS) float32 natural-log magnitude


def _augment(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random cut (1 s to MAX_EXEMPLAR_SECONDS), resampling by up to ±4 semitones (pitch
    and speed together) and a gain of ±12 dB of (n,) float samples at the engine's rate."""
    factor = 2.0 ** (rng.uniform(-4, 4) / 12.0)
    y = audio.resample(samples, int(round(spectral.SAMPLE_RATE * factor)), spectral.SAMPLE_RATE) \
        if abs(factor - 1) > 1e-3 else samples
    seconds = rng.uniform(1.0, MAX_EXEMPLAR_SECONDS)
    n = min(len(y), int(seconds * spectral.SAMPLE_RATE))
    start = int(rng.integers(0, len(y) - n + 1))
    return (y[start:start + n] * 10.0 ** (rng.uniform(-12, 12) / 20.0)).astype(np.float32)


def make_exemplar(name: str, samples: np.ndarray, builtin: str | None = None) -> Exemplar | None:
    """The pool entry of (n,) float samples: with a built-in texture's settings when
    ``builtin`` names one, else the settings a user's exemplar of that sound gets. None for
    a silent or too short one."""
    try:
        if builtin is not None:
            model = load(builtin)
            analysis = transfer.analyse_exemplar(samples)
            settings = model.settings
        else:
            model = from_exemplar(samples)
            analysis, settings = model.exemplar, model.settings
    except Exception:  # noqa: BLE001 - a silent or unreadable sound is left out of the pool
        return None
    if analysis.frames < 8:
        return None
    w, _ = transfer.filterbank()
    log_mag = analysis.fine + w.T @ analysis.envelopes
    tiled = np.resize(log_mag.T, (FRAMES, spectral.N_BINS)).astype(np.float32)
    stats = control.exemplar_statistics(analysis.envelopes, analysis.fine, w)
    return Exemplar(name, analysis, transfer.Transfer(analysis, settings), stats, tiled)


def sound_files(sounds_dir: Path) -> list[Path]:
    """The gathered sound effects: ``sounds_dir/manifest.json``'s files (keyed by file name,
    each with its package), less those of ``NETWORK_HELD_OUT``'s packages, so that nothing
    of those packages is heard in training; every audio file of a folder without one."""
    manifest = sounds_dir / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text())
        return sorted(sounds_dir / name for name, e in entries.items()
                      if e.get("package") not in NETWORK_HELD_OUT and (sounds_dir / name).is_file())
    return audio_files(sounds_dir)


def exemplar_pool(sounds: list[Path], per_sound: int, builtin_copies: int, rng: np.random.Generator,
                  log=print) -> tuple[list[Exemplar], list[Exemplar]]:
    """(user-like exemplars, built-in ones): ``per_sound`` augmented cuts of each sound and
    ``builtin_copies`` of each built-in texture's exemplar (the first unaugmented)."""
    own: list[Exemplar] = []
    for k, path in enumerate(sounds):
        try:
            samples = read_mono(path, 0.0, 30.0)  # the part of a recording a user's exemplar uses
        except Exception:  # noqa: BLE001 - a file libsndfile cannot read is no exemplar
            continue
        for j in range(per_sound):
            e = make_exemplar(f"{path.stem}#{j}", _augment(samples, rng))
            if e is not None:
                own.append(e)
        if k % 100 == 99:
            log(f"  exemplars: {k + 1}/{len(sounds)} sounds, {len(own)} cuts")
    built: list[Exemplar] = []
    for name, t in TEXTURES.items():
        samples = audio.load(t.exemplar_path, duration=None).samples
        for j in range(builtin_copies):
            e = make_exemplar(f"{name}#{j}", samples if j == 0 else _augment(samples, rng), builtin=name)
            if e is not None:
                built.append(e)
    return own, built


def music_tracks(music_dir: Path) -> list[Path]:
    """The training tracks (``train/``) the network may learn from: every package but
    ``NETWORK_HELD_OUT``'s."""
    return [p for p in audio_files(music_dir / "train") if p.name.split("__")[0] not in NETWORK_HELD_OUT]


def read_mono(path: Path, start_s: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """(n,) float32 mono samples at the engine's rate of a part of a file, read with
    libsndfile (seeking, no ffmpeg process per window: thousands of windows are read)."""
    import soundfile

    with soundfile.SoundFile(str(path)) as f:
        f.seek(min(int(start_s * f.samplerate), max(0, f.frames - 1)))
        y = f.read(-1 if seconds is None else int(seconds * f.samplerate), dtype="float32", always_2d=True)
        rate = f.samplerate
    y = y.mean(axis=1)
    return y if rate == spectral.SAMPLE_RATE else audio.resample(y, rate, spectral.SAMPLE_RATE)


def music_windows(tracks: list[Path], per_track: int, rng: np.random.Generator, log=print) -> list[np.ndarray]:
    """``per_track`` random WINDOW_SECONDS windows of each track, (WINDOW_SAMPLES,) float32
    mono; quiet windows (below -45 dBFS) are left out."""
    import soundfile

    out = []
    for k, path in enumerate(tracks):
        try:
            seconds = soundfile.info(str(path)).duration
        except Exception:  # noqa: BLE001 - a track libsndfile cannot read is left out
            continue
        for _ in range(per_track):
            start = float(rng.uniform(0, max(0.0, seconds - WINDOW_SECONDS - 0.5)))
            try:
                y = read_mono(path, start, WINDOW_SECONDS + 0.1)
            except Exception:  # noqa: BLE001
                continue
            if len(y) >= WINDOW_SAMPLES and audio.rms_dbfs(y) > -45:
                out.append(y[:WINDOW_SAMPLES].astype(np.float32))
        if k % 50 == 49:
            log(f"  music: {k + 1}/{len(tracks)} tracks, {len(out)} windows")
    return out


def example(music: np.ndarray, ex: Exemplar) -> dict[str, np.ndarray]:
    """The numpy inputs of one training example (a music window and an exemplar), frame-major."""
    spec = spectral.stft_frames(music)  # (FRAMES, N_BINS)
    mag = np.abs(spec)
    log_x = spectral.to_log(mag.T)
    env_x = transfer.band_envelopes(log_x)
    power = float(np.mean(np.square(mag, dtype=np.float64)))
    tr = ex.base
    index = transfer.placement(FRAMES, transfer.onsets(env_x), ex.analysis)
    a = ex.analysis
    offset = 0.5 * np.log(max(power, 1e-12) / a.mean_power)
    phase = spec / np.maximum(mag, 1e-12)
    base = tr.base()
    return {
        "log_x": log_x.T.copy(), "phase_re": phase.real.astype(np.float32), "phase_im": phase.imag.astype(np.float32),
        "fine_s": a.fine[:, index].T.copy(), "z_s": tr.z_s[:, index].T.astype(np.float32),
        "mu_s": (tr.mu_s[:, 0] + offset).astype(np.float32), "sd_s": tr.sd_s[:, 0].astype(np.float32),
        "max_s": (tr.max_s[:, 0] + offset).astype(np.float32),
        "base": base.astype(np.float32), "fine_bins": tr.fine_bins,
        "clip": control.clip_features(env_x, ex.stats, base),
        "frame": control.frame_features(env_x, tr.z_s[:, index]).T.copy(),
        "ex_log": ex.tiled,
    }


def batches(music: list[np.ndarray], own: list[Exemplar], built: list[Exemplar], batch: int,
            rng: np.random.Generator):
    """Endless batches of random (music, exemplar) pairs, stacked dicts of numpy arrays."""
    while True:
        items = []
        for _ in range(batch):
            pool = built if rng.random() < BUILT_IN_SHARE else own
            items.append(example(music[rng.integers(len(music))], pool[rng.integers(len(pool))]))
        yield {k: np.stack([it[k] for it in items]) for k in items[0]}


# ---------------------------------------------------------------- TensorFlow

def _tf():
    import tensorflow as tf  # only here: the product never imports it
    return tf


class TFController:
    """The network of :class:`musicoder.control.Controller` as TensorFlow variables, the same
    layers and names, batched: clip (B, CLIP_FAMILIES·N_BANDS), frame (B, T, FRAME_CHANNELS)
    → clip offsets (B, 4, N_BANDS), frame offsets (B, T, 2, N_BANDS)."""

    def __init__(self, weights: dict[str, np.ndarray]):
        tf = _tf()
        self.vars = {k: tf.Variable(np.asarray(v, np.float32), name=k.replace("/", "_")) for k, v in weights.items()}

    def __call__(self, clip, frame):
        tf = _tf()
        v = self.vars
        h = tf.tanh(clip @ v["clip_in/kernel"] + v["clip_in/bias"])
        h = tf.tanh(h @ v["clip_hidden/kernel"] + v["clip_hidden/bias"])
        clip_out = tf.reshape(h @ v["clip_out/kernel"] + v["clip_out/bias"], (-1, len(control.CONTROLS), control.N_BANDS))
        g = tf.nn.conv1d(frame, v["frame_in/kernel"], 1, "SAME") + v["frame_in/bias"]
        g = tf.tanh(g + (h @ v["frame_clip/kernel"] + v["frame_clip/bias"])[:, None, :])
        f = tf.nn.conv1d(g, v["frame_out/kernel"], 1, "SAME") + v["frame_out/bias"]
        shape = tf.shape(f)
        return clip_out, tf.reshape(f, (shape[0], shape[1], len(control.FRAME_CONTROLS), control.N_BANDS))

    def weights(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self.vars.items()}


def _moved(tf, base, delta):
    """control.moved in TensorFlow."""
    b = tf.clip_by_value(base, control.BASE_EPS, 1.0 - control.BASE_EPS)
    lb = tf.math.log(b / (1.0 - b))
    return tf.clip_by_value(base + tf.sigmoid(lb + delta) - tf.sigmoid(lb), 0.0, 1.0)


def _std(tf, x):
    """Standard deviation over axis 1, keepdims, with a finite gradient where it is 0."""
    centred = x - tf.reduce_mean(x, axis=1, keepdims=True)
    return tf.sqrt(tf.reduce_mean(centred**2, axis=1, keepdims=True) + 1e-12)


def _norm(tf, x, **kwargs):
    """Euclidean norm with a finite gradient at 0 (tf.norm has none)."""
    return tf.sqrt(tf.reduce_sum(x**2, **kwargs) + 1e-12)


def transfer_tf(b: dict, clip_out, frame_out):
    """The band-statistics transfer of :class:`musicoder.texture.Transfer` (plan and apply)
    in TensorFlow, batched and frame-major: (B, T, N_BINS) natural-log magnitude out."""
    tf = _tf()
    w = tf.constant(transfer.filterbank()[0].T)  # (N_BINS, N_BANDS)
    eps = 1e-6
    log_x = b["log_x"]
    env_x = 0.5 * tf.math.log(tf.exp(2.0 * log_x) @ w + 1e-12)
    base = b["base"]  # (B, 4, N_BANDS)
    keep = _moved(tf, base[:, None, 0], clip_out[:, None, 0] + frame_out[:, :, 0])
    level = _moved(tf, base[:, None, 1], clip_out[:, None, 1])
    spread = _moved(tf, base[:, None, 2], clip_out[:, None, 2])
    fine = _moved(tf, base[:, None, 3], clip_out[:, None, 3] + frame_out[:, :, 1])
    mu_x = tf.reduce_mean(env_x, axis=1, keepdims=True)
    sd_x = _std(tf, env_x) + eps
    z = keep * (env_x - mu_x) / sd_x + (1.0 - keep) * b["z_s"]
    z = z / (_std(tf, z) + eps)
    mu_s, sd_s = b["mu_s"][:, None], b["sd_s"][:, None]
    env_y = mu_x + level * (mu_s - mu_x) + (sd_x + spread * (sd_s - sd_x)) * z
    env_y = tf.minimum(env_y, tf.maximum(tf.reduce_max(env_x, axis=1, keepdims=True), b["max_s"][:, None]))
    share = tf.clip_by_value(b["fine_bins"][:, None] + (fine - base[:, None, 3]) @ tf.transpose(w), 0.0, 1.0)
    fine_x = log_x - env_x @ tf.transpose(w)
    return log_x + (env_y - env_x) @ tf.transpose(w) + share * (b["fine_s"] - fine_x)


def consistent_log(tf, log_mag, phase_re, phase_im):
    """(B, T, N_BINS) log-magnitude with the music's phase → the log-magnitude of the STFT
    of its inverse STFT (centred frames, as ``musicoder.spectral``)."""
    mag = tf.exp(log_mag)
    spec = tf.complex(mag * phase_re, mag * phase_im)
    win = tf.signal.inverse_stft_window_fn(spectral.HOP)
    y = tf.signal.inverse_stft(spec, spectral.N_FFT, spectral.HOP, spectral.N_FFT, window_fn=win)
    again = tf.signal.stft(y, spectral.N_FFT, spectral.HOP, spectral.N_FFT)
    # |z| through its square: tf.abs has no finite gradient at 0
    power = tf.math.real(again) ** 2 + tf.math.imag(again) ** 2
    return 0.5 * tf.math.log(tf.maximum(power, spectral.LOG_FLOOR**2))


def _band_rows(lo_hz: float, hi_hz: float) -> np.ndarray:
    _, centres = transfer.filterbank()
    return np.flatnonzero((centres >= lo_hz) & (centres <= hi_hz))


def statistics(tf, log_mag, rows: np.ndarray) -> dict:
    """Sound-texture statistics of (B, T, N_BINS) log-magnitudes in the transfer's bands
    ``rows``: families (each (B, n)) of timbre (shape, spread, flatness) and texture
    (modulation, sparsity, comodulation), level-free."""
    w = transfer.filterbank()[0][rows].T  # (N_BINS, n)
    wn = tf.constant(w / np.maximum(w.sum(axis=0, keepdims=True), 1e-9))
    power = tf.exp(2.0 * log_mag)
    power = power / tf.reduce_mean(power, axis=[1, 2], keepdims=True)
    band = power @ wn + 1e-10  # (B, T, n) mean power per band
    level = 10.0 / math.log(10.0) * tf.math.log(band)
    flatness = 10.0 / math.log(10.0) * tf.reduce_mean(tf.math.log(power + 1e-10) @ wn - tf.math.log(band), axis=1)
    env = tf.sqrt(band)
    env_n = env / tf.reduce_mean(env, axis=1, keepdims=True) - 1.0
    t = log_mag.shape[1]
    spectrum = tf.signal.rfft(tf.transpose(env_n, [0, 2, 1]))
    spec = tf.math.real(spectrum) ** 2 + tf.math.imag(spectrum) ** 2  # (B, n, F)
    freqs = np.fft.rfftfreq(t, 1.0 / FRAME_RATE)
    sel = np.stack([((freqs >= lo) & (freqs < hi)).astype(np.float32) for lo, hi in MOD_BANDS_HZ], axis=1)
    mod = 10.0 / math.log(10.0) * tf.math.log(spec @ tf.constant(sel) / t + 1e-8)
    centred = env - tf.reduce_mean(env, axis=1, keepdims=True)
    var = tf.reduce_mean(centred**2, axis=1)
    kurt = tf.reduce_mean(centred**4, axis=1) / (var**2 + 1e-20)
    sparsity = 10.0 / math.log(10.0) * tf.math.log(kurt + 1e-3)
    n = len(rows)
    width = max(1, n // POOLS)
    pools = n // width
    pooled = tf.reduce_mean(tf.reshape(env_n[:, :, :pools * width], (-1, t, pools, width)), axis=3)
    pooled = pooled - tf.reduce_mean(pooled, axis=1, keepdims=True)
    pooled = pooled / _norm(tf, pooled, axis=1, keepdims=True)
    corr = tf.linalg.matmul(pooled, pooled, transpose_a=True)
    iu = np.triu_indices(pools, 1)
    comod = tf.gather(tf.reshape(corr, (-1, pools * pools)), iu[0] * pools + iu[1], axis=1)
    return {"timbre": {"shape": tf.reduce_mean(level, axis=1) - tf.reduce_mean(level, axis=[1, 2])[:, None],
                       "spread": _std(tf, level)[:, 0], "flatness": flatness},
            "texture": {"modulation": tf.reshape(mod, (-1, n * len(MOD_BANDS_HZ))),
                        "sparsity": sparsity, "comodulation": comod}}


def move(tf, s_in: dict, s_out: dict, s_ex: dict):
    """(B,) how far each output moved toward its exemplar: the mean of the timbre and texture
    groups' mean over families of 1 − d(out, ex)/d(in, ex), d the RMS difference."""
    groups = []
    for group in ("timbre", "texture"):
        gains = []
        for fam in s_ex[group]:
            d_in = tf.sqrt(tf.reduce_mean((s_in[group][fam] - s_ex[group][fam]) ** 2, axis=1))
            d_out = tf.sqrt(tf.reduce_mean((s_out[group][fam] - s_ex[group][fam]) ** 2, axis=1) + 1e-9)
            gains.append(1.0 - d_out / tf.maximum(d_in, 1e-3))
        groups.append(tf.add_n(gains) / len(gains))
    return (groups[0] + groups[1]) / 2.0


def chroma_matrix() -> np.ndarray:
    """(N_BINS, 12) float32: each bin from 55 Hz to 5 kHz to its pitch class (C = 0), by the
    nearest semitone."""
    freqs = np.fft.rfftfreq(spectral.N_FFT, 1.0 / spectral.SAMPLE_RATE)
    m = np.zeros((spectral.N_BINS, 12), np.float32)
    ok = (freqs >= 55.0) & (freqs <= 5000.0)
    pc = (np.round(12 * np.log2(freqs[ok] / 440.0)).astype(int) + 9) % 12
    m[np.flatnonzero(ok), pc] = 1.0
    return m


def _pearson(tf, a, b):
    a = a - tf.reduce_mean(a, axis=1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=1, keepdims=True)
    return tf.reduce_sum(a * b, axis=1) / (_norm(tf, a, axis=1) * _norm(tf, b, axis=1))


def content(tf, log_in, log_out):
    """(B,) content kept: the mean of the chroma correlation and the onset-flux correlation of
    output and input, as the judge reads content (its own CQT chroma and onset strength
    are not used here)."""
    cm = tf.constant(chroma_matrix())
    chroma_in = tf.exp(2.0 * log_in) @ cm
    chroma_out = tf.exp(2.0 * log_out) @ cm
    chroma_in = chroma_in / (tf.reduce_max(chroma_in, axis=2, keepdims=True) + 1e-9)
    chroma_out = chroma_out / (tf.reduce_max(chroma_out, axis=2, keepdims=True) + 1e-9)
    bsz = tf.shape(log_in)[0]
    chroma = _pearson(tf, tf.reshape(chroma_in, (bsz, -1)), tf.reshape(chroma_out, (bsz, -1)))
    w = tf.constant(transfer.filterbank()[0].T)

    def flux(log_mag):
        env = 0.5 * tf.math.log(tf.exp(2.0 * log_mag) @ w + 1e-12)
        env = tf.maximum(env, tf.reduce_max(env, axis=[1, 2], keepdims=True) - transfer.ONSET_RANGE_NATS)
        return tf.reduce_mean(tf.nn.relu(env[:, 1:] - env[:, :-1]), axis=2)

    return (chroma + _pearson(tf, flux(log_in), flux(log_out))) / 2.0


MIX_SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # the crossfades each output is measured against


def crossfade_logs(tf, log_in, ex_log):
    """(B, K, T, N_BINS) log-magnitudes of crossfades ``(1 − a)·music + a·exemplar`` at the
    shares ``MIX_SHARES``, both at the same mean power (as the judge mixes them), their
    powers added (two unrelated sounds)."""
    def unit(log_mag):
        p = tf.exp(2.0 * log_mag)
        return p / tf.reduce_mean(p, axis=[1, 2], keepdims=True)

    px, ps = unit(log_in)[:, None], unit(ex_log)[:, None]
    a = tf.constant(np.array(MIX_SHARES, np.float32))[None, :, None, None]
    return 0.5 * tf.math.log((1.0 - a) ** 2 * px + a**2 * ps + 1e-12)


def frontier(tf, contents, moves, kept):
    """(B,) the crossfade's move at content ``kept``: ``contents`` and ``moves`` (B, K) of the
    crossfades, read piecewise-linearly between the two crossfades whose contents enclose
    ``kept`` (clamped at the ends), as the judge's frontier. Its slope is what a unit of
    content is worth for this music and this exemplar."""
    order = tf.argsort(contents, axis=1)
    c = tf.gather(contents, order, batch_dims=1)
    m = tf.gather(moves, order, batch_dims=1)
    k = len(MIX_SHARES)
    idx = tf.clip_by_value(tf.searchsorted(c, kept[:, None])[:, 0], 1, k - 1)
    c0, c1 = tf.gather(c, idx - 1, batch_dims=1), tf.gather(c, idx, batch_dims=1)
    m0, m1 = tf.gather(m, idx - 1, batch_dims=1), tf.gather(m, idx, batch_dims=1)
    t = tf.clip_by_value((kept - c0) / tf.maximum(c1 - c0, 1e-6), 0.0, 1.0)
    return m0 + t * (m1 - m0)


def _repeat(tf, stats: dict, k: int) -> dict:
    """Statistics of a batch with each example repeated ``k`` times (to face its crossfades)."""
    return {g: {f: tf.repeat(v, k, axis=0) for f, v in fams.items()} for g, fams in stats.items()}


class Objective:
    """The training loss of a batch and its parts: ``loss`` (scalar); ``move_full``,
    ``move_body``, ``content`` and ``advantage`` ((B,) each).

    The loss is the judge's question asked with the training's own measures: how much further
    toward the exemplar the output moved than a crossfade that keeps as much of the music
    (``frontier``), over the whole band and over the body band. A unit of content is so
    worth what the crossfade of that music and that exemplar pays for it: a fixed price
    would overpay where the frontier is flat (laser) and underpay where it is steep. Below
    ``CONTENT_FLOOR`` content costs ``FLOOR_WEIGHT`` per unit more: the melody must stay
    recognisable whatever the frontier says."""

    def __init__(self, full_weight: float = 0.5):
        self.full = np.arange(transfer.N_BANDS)
        self.body = _band_rows(*BODY_HZ)
        self.full_weight = full_weight

    def _bands(self):
        return (("full", self.full, self.full_weight), ("body", self.body, 1.0 - self.full_weight))

    def with_frontier(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``batch`` (numpy, as :func:`batches` makes it) with its crossfades' content
        (``mix_content``) and moves (``mix_move_full``, ``mix_move_body``), (B, K) each: they
        depend on the music and the exemplar alone, so they are made once per batch, beside
        the data, not in every step or validation that uses it."""
        tf = _tf()
        log_x, ex_log = tf.constant(batch["log_x"]), tf.constant(batch["ex_log"])
        k = len(MIX_SHARES)
        mixes = crossfade_logs(tf, log_x, ex_log)
        shape = tf.shape(mixes)
        flat = tf.reshape(mixes, (-1, shape[2], shape[3]))
        out = {"mix_content": tf.reshape(content(tf, tf.repeat(log_x, k, axis=0), flat), (-1, k))}
        for name, rows, _ in self._bands():
            s_in, s_ex = statistics(tf, log_x, rows), statistics(tf, ex_log, rows)
            out[f"mix_move_{name}"] = tf.reshape(move(tf, _repeat(tf, s_in, k), statistics(tf, flat, rows),
                                                      _repeat(tf, s_ex, k)), (-1, k))
        return batch | {key: v.numpy() for key, v in out.items()}

    def __call__(self, net: TFController, b: dict) -> dict:
        """The loss of batch ``b`` (tensors of a batch :meth:`with_frontier` completed)."""
        tf = _tf()
        clip_out, frame_out = net(b["clip"], b["frame"])
        out = transfer_tf(b, clip_out, frame_out)
        heard = consistent_log(tf, out, b["phase_re"], b["phase_im"])
        kept = content(tf, b["log_x"], heard)
        parts, gained = {}, 0.0
        for name, rows, weight in self._bands():
            parts[f"move_{name}"] = move(tf, statistics(tf, b["log_x"], rows), statistics(tf, heard, rows),
                                         statistics(tf, b["ex_log"], rows))
            gained += weight * (parts[f"move_{name}"] - frontier(tf, b["mix_content"], b[f"mix_move_{name}"], kept))
        loss = tf.reduce_mean(-gained + FLOOR_WEIGHT * tf.nn.relu(CONTENT_FLOOR - kept))
        return parts | {"content": kept, "advantage": gained, "loss": loss}


def _tensors(tf, batch: dict) -> dict:
    return {k: tf.constant(v) for k, v in batch.items()}


def evaluate_batches(objective: Objective, net: TFController, fixed: list[dict]) -> dict[str, float]:
    """Mean loss, moves and content over fixed batches."""
    tf = _tf()
    rows = [objective(net, _tensors(tf, b)) for b in fixed]
    return {k: float(np.mean([np.mean(r[k].numpy()) for r in rows]))
            for k in ("loss", "move_full", "move_body", "content", "advantage")}


def train(args: argparse.Namespace, log=print) -> dict:
    """Train and write the network; returns the training record."""
    tf = _tf()
    tf.random.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    tracks = music_tracks(args.music_dir)
    rng.shuffle(tracks)
    n_val = max(4, len(tracks) // 12)
    val_tracks, train_tracks = tracks[:n_val], tracks[n_val:]
    log(f"music: {len(train_tracks)} training tracks, {n_val} validation tracks "
        f"(packages kept out: {', '.join(NETWORK_HELD_OUT)})")
    music = music_windows(train_tracks, args.windows_per_track, rng, log)
    val_music = music_windows(val_tracks, 2, rng, log)
    sounds = sound_files(args.sounds)
    srng = np.random.default_rng(args.seed + 1)
    srng.shuffle(sounds)
    n_val_s = min(max(8, len(sounds) // 12), len(sounds) // 2)
    own, built = exemplar_pool(sounds[n_val_s:], args.cuts_per_sound, args.builtin_copies, rng, log)
    if not music or not own:
        raise SystemExit(f"no training music in {args.music_dir}/train or no sounds in {args.sounds}")
    val_own, _ = exemplar_pool(sounds[:n_val_s], 1, 0, rng, log)
    log(f"data: {len(music)} music windows, {len(own)} exemplar cuts of {len(sounds) - n_val_s} sounds, "
        f"{len(built)} built-in cuts; validation {len(val_music)} windows, {len(val_own)} cuts "
        f"({time.time() - t0:.0f} s)")
    vrng = np.random.default_rng(args.seed + 2)
    val_gen = batches(val_music, val_own, built[:len(TEXTURES)], args.batch, vrng)

    weights = control.zero_weights(seed=args.seed)
    args.earlier = None
    if args.resume and (args.out / "controller.npz").is_file():
        weights = dict(control.Controller.load(args.out / "controller.npz").weights)
        if (args.out / "controller.json").is_file():  # the record of the run it goes on from
            args.earlier = json.loads((args.out / "controller.json").read_text())
    net = TFController(weights)
    objective = Objective(args.full_weight)
    fixed = [objective.with_frontier(next(val_gen)) for _ in range(max(1, VALIDATION_PAIRS // args.batch))]
    start = evaluate_batches(objective, net, fixed)
    log(f"{'the weights it goes on from' if args.earlier else 'untrained (the tuned engine)'} on validation pairs: {start}")
    opt = tf.keras.optimizers.Adam(args.lr)
    variables = list(net.vars.values())

    @tf.function(reduce_retracing=True)
    def step(b):
        with tf.GradientTape() as tape:
            r = objective(net, b)
            reg = args.l2 * tf.add_n([tf.reduce_sum(v**2) for k, v in net.vars.items() if k.endswith("kernel")])
            total = r["loss"] + reg
        grads = tape.gradient(total, variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        opt.apply_gradients(zip(grads, variables))
        return r["loss"]

    q: queue.Queue = queue.Queue(maxsize=4)
    gen = batches(music, own, built, args.batch, rng)
    stop = threading.Event()

    def produce():
        try:
            while not stop.is_set():
                q.put(objective.with_frontier(next(gen)))
        except BaseException as e:  # noqa: BLE001 - the training loop re-raises it
            q.put(e)

    def take() -> dict:
        item = q.get()
        if isinstance(item, BaseException):
            raise item
        return item

    threading.Thread(target=produce, daemon=True).start()
    history, best, best_weights = [], start["loss"], net.weights()
    deadline = t0 + args.hours * 3600 if args.hours else math.inf
    losses = []
    for i in range(1, args.steps + 1):
        losses.append(float(step(_tensors(tf, take()))))
        if not math.isfinite(losses[-1]):
            log(f"step {i}: the loss is not finite; stopping with the best weights so far")
            break
        if i % args.every == 0 or i == args.steps or time.time() > deadline:
            v = evaluate_batches(objective, net, fixed)
            history.append({"step": i, "train_loss": round(float(np.mean(losses[-args.every:])), 4),
                            **{f"val_{k}": round(x, 4) for k, x in v.items()}, "seconds": round(time.time() - t0)})
            log(f"step {i}: {history[-1]}")
            if v["loss"] < best:
                best, best_weights = v["loss"], net.weights()
                save(args.out, best_weights, record(args, history, start, len(music), len(own), len(built), i))
        if time.time() > deadline:
            log("time is up")
            break
    stop.set()
    rec = record(args, history, start, len(music), len(own), len(built), history[-1]["step"] if history else 0)
    save(args.out, best_weights, rec)
    return rec


def record(args, history, start, n_music, n_own, n_built, steps) -> dict:
    """What the weights file's record says of their training."""
    return {"format_version": 1, "network": "musicoder.control.Controller",
            "command": portable_command("python -m models.train", args.argv),
            "date": time.strftime("%Y-%m-%d"), "steps": steps, "batch": args.batch,
            "music_windows": n_music, "exemplar_cuts": n_own, "builtin_cuts": n_built,
            "held_out_packages": list(NETWORK_HELD_OUT),
            "loss": {"full_band_weight": args.full_weight, "against": "crossfade frontier",
                     "mix_shares": list(MIX_SHARES), "content_floor": CONTENT_FLOOR,
                     "floor_weight": FLOOR_WEIGHT, "body_hz": list(BODY_HZ),
                     "window_seconds": WINDOW_SECONDS},
            "start_validation": {k: round(v, 4) for k, v in start.items()}, "history": history,
            "resumed_from": getattr(args, "earlier", None)}


def save(folder: Path, weights: dict[str, np.ndarray], rec: dict) -> None:
    """Write ``controller.npz`` and ``controller.json`` (the record) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    control.Controller(weights).save(folder / "controller.npz")
    (folder / "controller.json").write_text(json.dumps(rec, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--music-dir", type=user_path, default=user_path(DEFAULT_MUSIC_DIR))
    ap.add_argument("--sounds", type=user_path, default=user_path(f"{DATA_DIR}/sounds"))
    ap.add_argument("--out", type=user_path, default=LEARNED_DIR)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--hours", type=float, default=None, help="stop after this long, keeping the best weights")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--l2", type=float, default=1e-5)
    ap.add_argument("--every", type=int, default=100, help="steps between validations")
    ap.add_argument("--windows-per-track", type=int, default=4)
    ap.add_argument("--cuts-per-sound", type=int, default=2)
    ap.add_argument("--builtin-copies", type=int, default=40)
    ap.add_argument("--full-weight", type=float, default=0.5,
                    help="share of the whole band's move in the loss (the rest: the body band's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="start from the weights in --out")
    raw = list(argv) if argv is not None else os.sys.argv[1:]
    args = ap.parse_args(raw)
    args.argv = raw
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
