"""Loss terms of the texture networks (TensorFlow), on frame-major log-magnitudes.

Every function takes ``(batch, frames, N_BINS)`` natural-log magnitudes (nats) at the
engine's STFT settings (44.1 kHz, hop 512: 86.1 frames/s).

* :func:`band_statistics`: sound-texture statistics in the manner of McDermott &
  Simoncelli on a mel band power spectrogram: per-band level, spread and flatness (dB),
  envelope modulation power in octave bands 0.5-32 Hz, envelope kurtosis, and
  co-modulation (correlation of pooled band envelopes). They constrain the sound itself.
* :func:`grams`: Gram matrices of fixed random convolution banks (several kernel widths
  and seeds, Ulyanov & Lebedev 2016) over a finer mel dB spectrogram.
* :func:`content_terms`: the music to keep: the shape of each frame's spectrum below
  4 kHz (where pitch lives), with per-frame gain left free, and the onset envelope
  (positive spectral flux), compared by correlation.
"""
from __future__ import annotations

import librosa
import numpy as np
import tensorflow as tf

from musicoder import spectral

FRAME_RATE = spectral.SAMPLE_RATE / spectral.HOP  # 86.13 frames/s
STAT_BANDS = 48
GRAM_BANDS = 96
POOLED = 12
MOD_BANDS = ((0.5, 1), (1, 2), (2, 4), (4, 8), (8, 16), (16, 32))  # Hz
CONTENT_MAX_HZ = 4000.0
BANK_WIDTHS = (3, 9, 27)   # frames: 35 ms, 104 ms, 313 ms
BANK_FILTERS = 128
BANK_SEEDS = (11, 12)


def mel_matrix(n_bands: int) -> tf.Tensor:
    """(N_BINS, n_bands) float32 triangular mel filters, 40 Hz - 16 kHz."""
    m = librosa.filters.mel(sr=spectral.SAMPLE_RATE, n_fft=spectral.N_FFT, n_mels=n_bands,
                            fmin=40.0, fmax=16000.0, norm=None)
    return tf.constant(m.T.astype(np.float32))


_MEL_STAT = mel_matrix(STAT_BANDS)
_MEL_GRAM = mel_matrix(GRAM_BANDS)


def band_power(log_mag: tf.Tensor, mel: tf.Tensor) -> tf.Tensor:
    """Mel band power, each clip scaled to unit mean total power (so gain moves nothing).

    log_mag: (B, T, N_BINS) nats. Returns (B, T, bands) float32, floored at 1e-8.
    """
    p = tf.matmul(tf.exp(2.0 * tf.clip_by_value(log_mag, -15.0, 10.0)), mel)
    p = p / (tf.reduce_mean(tf.reduce_sum(p, -1, keepdims=True), axis=1, keepdims=True) + 1e-20)
    return p + 1e-8


def _db(p: tf.Tensor) -> tf.Tensor:
    return (10.0 / np.log(10.0)) * tf.math.log(p)


def _mod_matrix(frames: tf.Tensor) -> tf.Tensor:
    """(frames // 2 + 1, 6) float32: which rfft bins of an envelope fall in each band."""
    f = tf.cast(tf.range(frames // 2 + 1), tf.float32) * (FRAME_RATE / tf.cast(frames, tf.float32))
    return tf.stack([tf.cast((f >= lo) & (f < hi), tf.float32) for lo, hi in MOD_BANDS], axis=1)


def band_statistics(log_mag: tf.Tensor) -> dict[str, tf.Tensor]:
    """Texture statistics of each clip: {family: (B, n) float32}, in dB or correlation.

    level_db, spread_db, flatness_db: (B, 48); modulation_db: (B, 48*6);
    sparsity_db: (B, 48) envelope kurtosis; comodulation: (B, 66) envelope correlations.
    """
    p = band_power(log_mag, _MEL_STAT)
    db = _db(p)
    frames = tf.shape(p)[1]
    level = tf.reduce_mean(db, axis=1)
    spread = tf.sqrt(tf.reduce_mean((db - level[:, None]) ** 2, axis=1) + 1e-4)
    flat = level - _db(tf.reduce_mean(p, axis=1))
    env = tf.sqrt(p)
    env_n = env / tf.reduce_mean(env, axis=1, keepdims=True)
    centred = tf.transpose(env_n - 1.0, [0, 2, 1])  # (B, bands, T)
    spec = tf.abs(tf.signal.rfft(centred)) ** 2
    mod = tf.matmul(spec, _mod_matrix(frames)) / tf.cast(frames, tf.float32)
    mod_db = tf.reshape(_db(mod + 1e-8), [tf.shape(p)[0], -1])
    c = env - tf.reduce_mean(env, axis=1, keepdims=True)
    m2 = tf.reduce_mean(c**2, axis=1)
    m4 = tf.reduce_mean(c**4, axis=1)
    kurt = _db(m4 / (m2**2 + 1e-12) + 1e-3)
    pooled = tf.reduce_mean(tf.reshape(env_n, [tf.shape(p)[0], frames, POOLED, STAT_BANDS // POOLED]), -1)
    pc = pooled - tf.reduce_mean(pooled, axis=1, keepdims=True)
    pc = pc * tf.math.rsqrt(tf.reduce_sum(pc**2, axis=1, keepdims=True) + 1e-8)
    corr = tf.matmul(pc, pc, transpose_a=True)  # (B, P, P)
    iu = np.triu_indices(POOLED, 1)
    comod = tf.gather(tf.reshape(corr, [-1, POOLED * POOLED]), iu[0] * POOLED + iu[1], axis=1)
    return {"level_db": level, "spread_db": spread, "flatness_db": flat,
            "modulation_db": mod_db, "sparsity_db": kurt, "comodulation": comod}


def _banks() -> list[tf.Tensor]:
    out = []
    for seed in BANK_SEEDS:
        rng = np.random.default_rng(seed)
        for w in BANK_WIDTHS:
            k = rng.standard_normal((w, GRAM_BANDS, BANK_FILTERS)) / np.sqrt(w * GRAM_BANDS)
            out.append(tf.constant(k.astype(np.float32)))
    return out


_BANKS = _banks()


def grams(log_mag: tf.Tensor) -> list[tf.Tensor]:
    """Gram matrices (B, 128, 128) of ReLU features of the random banks, one per bank,
    over the clip's mel dB spectrogram with its overall mean removed (units of 10 dB)."""
    db = _db(band_power(log_mag, _MEL_GRAM)) / 10.0
    db = db - tf.reduce_mean(db, axis=[1, 2], keepdims=True)
    out = []
    for k in _BANKS:
        f = tf.nn.relu(tf.nn.conv1d(db, k, 1, "VALID"))
        out.append(tf.matmul(f, f, transpose_a=True) / tf.cast(tf.shape(f)[1], tf.float32))
    return out


_CONTENT_BINS = int(CONTENT_MAX_HZ * spectral.N_FFT / spectral.SAMPLE_RATE) + 1


def content_terms(y: tf.Tensor, x: tf.Tensor) -> dict[str, tf.Tensor]:
    """Content losses of output ``y`` against input ``x`` (both (B, T, N_BINS) nats).

    shape: weighted mean square (nats²) of the change of each frame's spectrum shape in
    43 Hz-4 kHz (per-frame gain removed), weighted to the bins within ~25 dB of the
    frame's peak. onset: 1 - correlation of the positive spectral flux (scalars).
    """
    yl, xl = y[:, :, 2:_CONTENT_BINS], x[:, :, 2:_CONTENT_BINS]
    w = tf.sigmoid(xl - tf.reduce_max(xl, -1, keepdims=True) + 3.0) + 0.05
    w = tf.stop_gradient(w / tf.reduce_sum(w, -1, keepdims=True))
    d = yl - xl
    d = d - tf.reduce_sum(w * d, -1, keepdims=True)
    shape = tf.reduce_mean(tf.reduce_sum(w * d**2, -1))

    def flux(v):
        db = _db(band_power(v, _MEL_GRAM))
        db = tf.maximum(db, tf.reduce_max(db, axis=[1, 2], keepdims=True) - 80.0)
        return tf.reduce_mean(tf.nn.relu(db[:, 1:] - db[:, :-1]), -1)

    fy, fx = flux(y), flux(x)
    fy = fy - tf.reduce_mean(fy, 1, keepdims=True)
    fx = fx - tf.reduce_mean(fx, 1, keepdims=True)
    r = tf.reduce_sum(fy * fx, 1) * tf.math.rsqrt((tf.reduce_sum(fy**2, 1) + 1e-8) * (tf.reduce_sum(fx**2, 1) + 1e-8))
    return {"shape": shape, "onset": 1.0 - tf.reduce_mean(r)}
