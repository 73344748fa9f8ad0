"""Magnitude spectrograms at the engine's rate, and their log-scale transforms.

Settings, chosen for music at 44.1 kHz:

* ``N_FFT = 2048`` samples (46 ms): 21.5 Hz bins resolve the partials of notes down to
  about E1 and keep the harmonic structure that carries pitch (and so chroma);
* ``HOP = 512`` samples (11.6 ms, 75 % overlap): onsets land within one hop, and 75 %
  overlap of a Hann window is the redundancy Griffin-Lim needs to converge well;
* periodic Hann window, frames centred on ``t = frame * HOP`` with zero padding at the
  ends (the same convention as ``librosa.stft(center=True)``, so that librosa's
  reference Griffin-Lim works on exactly the same magnitude).

Everything is float32 / complex64: half the memory traffic of float64, and the
accuracy of a 16-bit output is far below float32's.
"""
from __future__ import annotations

import functools
import threading

import numpy as np

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 512
N_BINS = N_FFT // 2 + 1
LOG_FLOOR = 1e-5  # amplitude floor of the log transform: -100 dB, below 16-bit noise
WORKERS = 2  # scipy.fft threads: the machine has two cores
FFT_BLOCK = 256  # frames per FFT call in the Griffin-Lim loop: 2 MB in and out, within the cache

WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def n_frames(n_samples: int) -> int:
    """Number of STFT frames of a signal of ``n_samples`` samples."""
    return 1 + n_samples // HOP


def frames_to_seconds(frames: int | np.ndarray) -> float | np.ndarray:
    """Frame index (or count) → seconds at the engine's rate."""
    return np.asarray(frames) * HOP / SAMPLE_RATE


def stft_frames(y: np.ndarray) -> np.ndarray:
    """STFT in frame-major layout, the layout the FFT works in (no transposes).

    y: (n_samples,) float, at ``SAMPLE_RATE``.
    Returns (n_frames(n_samples), N_BINS) complex64.
    """
    import scipy.fft  # on first use too: the server's event loop imports this module, never calls it

    from . import kernels  # numba: imported on first use, so that importing audio stays light

    padded = np.pad(np.asarray(y, dtype=np.float32), N_FFT // 2)
    frames = _scratch("frames", (n_frames(len(y)), N_FFT))
    kernels.windowed_frames(padded, WINDOW, HOP, frames)
    return _by_blocks(scipy.fft.rfft, frames, np.empty((len(frames), N_BINS), np.complex64))


def istft_frames(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of :func:`stft_frames` by weighted overlap-add (the least-squares estimate).

    spec: (n_frames, N_BINS) complex64. length: number of output samples.
    Returns (length,) float32.
    """
    import scipy.fft

    from . import kernels

    n = spec.shape[0]
    frames = _by_blocks(functools.partial(scipy.fft.irfft, n=N_FFT), spec, _scratch("frames", (n, N_FFT)))
    out = _scratch("overlap_add", (N_FFT + HOP * (n - 1),))
    kernels.overlap_add(frames, WINDOW, HOP, _inverse_window_sum(n), out)
    y = np.zeros(length, dtype=np.float32)
    available = min(length, len(out) - N_FFT // 2)
    y[:available] = out[N_FFT // 2:N_FFT // 2 + available]
    return y


def project_frames(spec: np.ndarray, length: int) -> np.ndarray:
    """The consistency projection STFT(ISTFT(spec)), frame-major, without the signal.

    Equal to ``stft_frames(istft_frames(spec, length))`` but one in-place pass between
    the two FFTs instead of four (overlap-add, cut, pad, frame): it is the body of every
    Griffin-Lim iteration.
    spec: (n_frames(length), N_BINS) complex64, not modified. Returns the same shape,
    complex64: a buffer of this thread's, valid until its next call.
    """
    import scipy.fft

    from . import kernels

    n = spec.shape[0]
    if n != n_frames(length):
        raise ValueError(f"{n} frames do not cover {length} samples ({n_frames(length)} do)")
    # Into buffers kept between calls (the frame buffer is the STFTs' too): whole-array
    # FFTs would allocate (and first-touch) two fresh arrays per iteration, 84 MB at 60 s.
    frames = _by_blocks(functools.partial(scipy.fft.irfft, n=N_FFT), spec, _scratch("frames", (n, N_FFT)))
    # the padded signal's samples that hold the output: [N_FFT/2, N_FFT/2 + length)
    kernels.reframe(frames, WINDOW, HOP, _inverse_window_sum(n), N_FFT // 2, N_FFT // 2 + length)
    return _by_blocks(scipy.fft.rfft, frames, _scratch("projected", (n, N_BINS), np.complex64))


def _by_blocks(fft, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[a:b] = fft(rows[a:b]) along axis 1, FFT_BLOCK rows at a time (their input and
    output stay in cache; the result of each lands in ``out``, preallocated). Returns out."""
    for a in range(0, len(rows), FFT_BLOCK):
        out[a:a + FFT_BLOCK] = fft(rows[a:a + FFT_BLOCK], axis=1, workers=WORKERS)
    return out


def stft(y: np.ndarray) -> np.ndarray:
    """Short-time Fourier transform.

    y: (n_samples,) float, at ``SAMPLE_RATE``.
    Returns (N_BINS, n_frames(n_samples)) complex64.
    """
    return np.ascontiguousarray(stft_frames(y).T)


def istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse STFT. spec: (N_BINS, n_frames) complex. Returns (length,) float32."""
    return istft_frames(np.ascontiguousarray(spec.T), length)


_THREAD = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """A work buffer kept per thread and reused while its shape stays the same.

    Reuse matters: on this class of machine, first-touching 7 MB of fresh pages on
    every Griffin-Lim iteration costs more than the FFT itself.
    """
    buffers = _THREAD.__dict__.setdefault("buffers", {})
    buf = buffers.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = buffers[name] = np.empty(shape, dtype=dtype)
    return buf


@functools.lru_cache(maxsize=8)
def _inverse_window_sum(n: int) -> np.ndarray:
    """1 / (sum of squared windows) at each sample of the padded signal of ``n`` frames."""
    total = np.zeros(N_FFT + HOP * (n - 1), dtype=np.float32)
    w2 = WINDOW**2
    for k in range(N_FFT // HOP):
        total[k * HOP:k * HOP + n * HOP].reshape(n, HOP)[:] += w2[k * HOP:(k + 1) * HOP]
    return 1.0 / np.maximum(total, 1e-8)


def magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT(y)|: (N_BINS, n_frames) float32, linear amplitude."""
    return np.abs(stft(y))


def to_log(mag: np.ndarray) -> np.ndarray:
    """Linear magnitude → natural-log magnitude, floored at ``LOG_FLOOR`` (-100 dB)."""
    return np.log(np.maximum(mag, LOG_FLOOR)).astype(np.float32)


def from_log(log_mag: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_log` (values at the floor come back as the floor)."""
    return np.exp(log_mag).astype(np.float32)


def to_db(mag: np.ndarray) -> np.ndarray:
    """Linear magnitude → dB (20·log10), floored at -100 dB."""
    return (20.0 / np.log(10.0)) * to_log(mag)


def spectral_convergence_db(y: np.ndarray, mag: np.ndarray) -> float:
    """SC = 20·log10(‖|STFT(y)| − S‖_F / ‖S‖_F) in dB; lower is better.

    y: (n_samples,) signal; mag: (N_BINS, n_frames) target magnitude S.
    """
    err = np.linalg.norm(np.abs(stft(y)) - mag)
    ref = np.linalg.norm(mag)
    return float(20 * np.log10(max(err, 1e-12) / max(ref, 1e-12)))
