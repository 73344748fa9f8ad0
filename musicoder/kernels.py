"""Compiled inner loops of the STFT and of Griffin-Lim (numba, both cores).

Each is one pass over memory that numpy would make in several, with temporaries: the
reconstruction loop spends most of its time here and in the FFTs. Arrays are written
into buffers the caller owns.
"""
from __future__ import annotations

import numba
import numpy as np

_JIT = {"parallel": True, "cache": True, "fastmath": True, "nogil": True}


@numba.njit(**_JIT)
def windowed_frames(padded, window, hop, out):
    """out[m, j] = padded[m·hop + j] · window[j]. padded: (n_samples,) float32;
    window: (n_fft,); out: (n_frames, n_fft) float32."""
    n_fft = window.shape[0]
    for m in numba.prange(out.shape[0]):
        base = m * hop
        for j in range(n_fft):
            out[m, j] = padded[base + j] * window[j]


@numba.njit(**_JIT)
def overlap_add(frames, window, hop, inverse_window_sum, out):
    """Weighted overlap-add: out[s] = Σ_m frames[m, s − m·hop] · window[s − m·hop] ·
    inverse_window_sum[s]. frames: (n_frames, n_fft) float32; out: (n_fft + hop·(n_frames − 1),)."""
    n = frames.shape[0]
    n_fft = window.shape[0]
    overlap = n_fft // hop
    for block in numba.prange(out.shape[0] // hop):
        for j in range(hop):
            acc = np.float32(0.0)
            for k in range(overlap):
                m = block - k
                if 0 <= m < n:
                    acc += frames[m, k * hop + j] * window[k * hop + j]
            out[block * hop + j] = acc * inverse_window_sum[block * hop + j]


@numba.njit(**_JIT)
def accelerated_gla_step(rebuilt, mag, coef, d, t_prev, alpha, beta, gamma):
    """One accelerated Griffin-Lim update after the consistency projection ``rebuilt``:

        t = γ·P(rebuilt) + (1 − γ)·d,   P(x) = mag · x / |x|
        coef = t + α(t − t_prev),  d = t + β(t − t_prev),  t_prev = t

    All (n_frames, n_bins); coef, d and t_prev are updated in place."""
    for m in numba.prange(rebuilt.shape[0]):
        for k in range(rebuilt.shape[1]):
            r = rebuilt[m, k]
            size = np.sqrt(r.real * r.real + r.imag * r.imag)
            t = gamma * (r * (mag[m, k] / max(size, 1e-10))) + (1 - gamma) * d[m, k]
            step = t - t_prev[m, k]
            coef[m, k] = t + alpha * step
            d[m, k] = t + beta * step
            t_prev[m, k] = t
