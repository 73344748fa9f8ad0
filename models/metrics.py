"""MusiCoder's own measure of a texture transfer, independent of the shared judge that
tuning maximises: simple band statistics of a 40-band mel spectrogram (librosa). The test
suite and ``models.evaluate`` use it as the check by a measure nothing was tuned on.

    style_distance(a, b)   how different two sounds are as textures (0 = same)
    chroma_similarity(x, y) how much of the music's pitch content y kept (1 = all)
"""
from __future__ import annotations

import librosa
import numpy as np

SR = 22050
HOP = 512


def _mel_db(y: np.ndarray) -> np.ndarray:
    y = y / max(float(np.sqrt(np.mean(y**2))), 1e-8) * 0.1  # level-free
    power = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=HOP, n_mels=40, fmin=40.0)
    return 10 * np.log10(power + 1e-10)


def style_statistics(y: np.ndarray) -> dict[str, np.ndarray]:
    """y: (n,) float at 22.05 kHz. Families of statistics, each in dB:
    spectral shape (band means), band dynamics (band standard deviations), and band
    envelope modulation power in 1-2, 2-4, 4-8, 8-16 Hz."""
    db = _mel_db(y)
    env = 10 ** (db / 20)
    env = env / env.mean(axis=1, keepdims=True) - 1.0
    spec = np.abs(np.fft.rfft(env, axis=1)) ** 2 / env.shape[1]
    freqs = np.fft.rfftfreq(env.shape[1], HOP / SR)
    mod = np.stack([spec[:, (freqs >= lo) & (freqs < 2 * lo)].sum(axis=1) for lo in (1, 2, 4, 8)], axis=1)
    return {"shape": db.mean(axis=1), "dynamics": db.std(axis=1), "modulation": 10 * np.log10(mod + 1e-6).ravel()}


def style_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over families of the RMS difference of their statistics (dB)."""
    sa, sb = style_statistics(a), style_statistics(b)
    return float(np.mean([np.sqrt(np.mean((sa[k] - sb[k]) ** 2)) for k in sa]))


def chroma_similarity(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the two clips' chroma (STFT chroma, frame-aligned)."""
    n = min(len(x), len(y))
    cx = librosa.feature.chroma_stft(y=x[:n], sr=SR, hop_length=HOP).ravel()
    cy = librosa.feature.chroma_stft(y=y[:n], sr=SR, hop_length=HOP).ravel()
    cx, cy = cx - cx.mean(), cy - cy.mean()
    return float(cx @ cy / max(np.linalg.norm(cx) * np.linalg.norm(cy), 1e-12))
