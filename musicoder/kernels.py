"""Compiled inner loops of the STFT and of Griffin-Lim (numba, both cores).

Each is one pass over memory that numpy would make in several, with temporaries: the
reconstruction loop spends most of its time here and in the FFTs. Arrays are written
into buffers the caller owns.
"""
from __future__ import annotations

import os

# OpenMP's default keeps numba's worker spinning for a while after each parallel loop, on
# the core scipy.fft's threads need next: measured 20 % slower reconstruction, twice as
# slow at times. Only takes effect if OpenMP is not yet started in this process.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the setting above)
import numpy as np  # noqa: E402

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


@numba.njit(**_JIT)
def reframe(frames, window, hop, inverse_window_sum, lo, hi):
    """Overlap-add, trim and re-frame in one pass, in place: frames becomes the windowed
    STFT frames of the signal its inverse STFT makes (the consistency projection's
    time-domain half, without the signal ever being written out).

    frames: (n_frames, n_fft) float32, inverse-FFT'd frames, overwritten.
    inverse_window_sum: (n_fft + hop·(n_frames − 1),) as in :func:`overlap_add`.
    Samples of the padded signal outside [lo, hi) are zeroed (the output is cut to its
    length, then zero-padded like the forward STFT's input).
    Race-free in parallel: each hop-long block of the signal is read from, and written
    back to, the same n_fft/hop frame segments, which no other block touches.
    """
    n = frames.shape[0]
    overlap = window.shape[0] // hop
    for block in numba.prange(n + overlap - 1):
        first = max(0, block - (n - 1))  # k = block − m over the frames m covering this block
        last = min(overlap - 1, block)
        base = block * hop
        acc = np.empty(hop, dtype=np.float32)
        for k in range(first, last + 1):
            m, offset = block - k, k * hop
            for j in range(hop):  # contiguous: it vectorises
                term = frames[m, offset + j] * window[offset + j] * inverse_window_sum[base + j]
                acc[j] = term if k == first else acc[j] + term
        if base < lo or base + hop > hi:  # only the edge blocks: cut, and zero the padding
            for j in range(hop):
                if not lo <= base + j < hi:
                    acc[j] = 0.0
        for k in range(first, last + 1):
            m, offset = block - k, k * hop
            for j in range(hop):
                frames[m, offset + j] = acc[j] * window[offset + j]


@numba.njit(**_JIT)
def with_phase_of(mag, start, out):
    """out = mag · start / |start| (phase 0 where start is 0): a magnitude given the phase of
    a complex spectrum, without computing angles. mag: (n_frames, n_bins) float32;
    start: (n_frames, n_bins) complex, any strides; out: (n_frames, n_bins) complex64 (may
    be start itself: each element is read before it is written)."""
    for m in numba.prange(mag.shape[0]):
        for k in range(mag.shape[1]):
            s = start[m, k]
            size = np.sqrt(s.real * s.real + s.imag * s.imag)
            if size > 1e-30:
                out[m, k] = s * (mag[m, k] / size)
            else:
                out[m, k] = mag[m, k]


@numba.njit(**_JIT)
def with_phase(mag, phase, out):
    """out = mag · exp(i·phase). mag: (n_frames, n_bins) float32; phase: (n_frames, n_bins)
    radians, any strides; out: (n_frames, n_bins) complex64. (numpy's complex exp is
    ~20× slower than this cos/sin pair.)"""
    for m in numba.prange(mag.shape[0]):
        for k in range(mag.shape[1]):
            p = phase[m, k]
            out[m, k] = complex(mag[m, k] * np.cos(p), mag[m, k] * np.sin(p))
