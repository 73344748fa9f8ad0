"""Pictures of audio: waveform peaks for drawing, and a spectrogram PNG.

The PNG is drawn with matplotlib's object API on the Agg canvas, never pyplot: no
global figure state; each thread keeps its own figures, so it is safe in threads and
worker processes.
"""
from __future__ import annotations

import io
import threading

import numpy as np

from . import spectral


def mid(y: np.ndarray) -> np.ndarray:
    """The mid (mean of the channels) of (channels, n) samples as (n,) float32; (n,) as is."""
    y = np.asarray(y, dtype=np.float32)
    return y.mean(axis=0) if y.ndim == 2 else y


def waveform_peaks(y: np.ndarray, columns: int = 800) -> np.ndarray:
    """Min and max of each of ``columns`` equal slices of y, for drawing a waveform.

    y: (n,) float, or (channels, n): the peaks of the mid. Returns (2, columns) float32: row 0 the minima, row 1 the maxima.
    When y has fewer samples than columns, a column shows the sample it falls on.
    """
    y = mid(y)
    if y.size == 0:
        return np.zeros((2, columns), dtype=np.float32)
    starts = np.minimum(np.linspace(0, y.size, columns + 1)[:-1].astype(np.int64), y.size - 1)
    # reduceat gives y[start] for a slice that is empty (start >= next start)
    return np.stack([np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)])


class WaveformPeaks:
    """:func:`waveform_peaks` of a song seen a chunk at a time, in order: ``add(first,
    mid)`` for each chunk of the (n,) mid, then ``value``, the same (2, columns) float32 as
    waveform_peaks of the whole (what a whole song streamed from a file draws)."""

    def __init__(self, n: int, columns: int = 800):
        starts = np.minimum(np.linspace(0, n, columns + 1)[:-1].astype(np.int64), max(n - 1, 0))
        after = np.append(starts[1:], n)
        # each column's slice; one sharing its start with the next (a song shorter than its
        # columns) shows the sample it falls on, as waveform_peaks' reduceat does
        self.lo, self.hi = starts, np.where(after > starts, after, starts + 1)
        self.value = np.zeros((2, columns), np.float32) if n == 0 else \
            np.stack([np.full(columns, np.inf, np.float32), np.full(columns, -np.inf, np.float32)])

    def add(self, first: int, mid: np.ndarray) -> None:
        """Samples first .. first + len(mid) of the song's mid ((m,) float32)."""
        end = first + len(mid)
        for c in np.flatnonzero((self.lo < end) & (self.hi > first)):
            part = mid[max(self.lo[c], first) - first:min(self.hi[c], end) - first]
            self.value[0, c] = min(self.value[0, c], part.min())
            self.value[1, c] = max(self.value[1, c], part.max())


_FREQ_TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 16000)
_RANGE_DB = 80.0  # the colour scale: from the clip's peak down to 80 dB below it


def spectrogram_png(y: np.ndarray, title: str = "", rate: int = spectral.SAMPLE_RATE,
                    width_px: int = 1000, height_px: int = 400,
                    min_hz: float = 30.0, max_hz: float = 16000.0) -> bytes:
    """A dB spectrogram of y with time (s) and log-frequency (Hz) axes, as PNG bytes.

    y: (n,) float at ``rate`` (must be ``spectral.SAMPLE_RATE``). The linear-frequency
    STFT is interpolated onto log-spaced rows so that the image shows music's octaves
    evenly. Levels are dB re the clip's peak (0 to -80 dB), so the axes, ticks and
    colour bar depend only on the size and the duration: they are drawn once per thread
    and reused, and each call draws only the image and the title on them (a full
    matplotlib draw is ~0.2 s, most of a worker's time outside the engine).
    """
    if rate != spectral.SAMPLE_RATE:
        raise ValueError(f"spectrogram_png expects {spectral.SAMPLE_RATE} Hz audio")
    image = spectrogram_rows(spectral.magnitude(y), height_px, min_hz, max_hz)
    return spectrogram_png_of(image, float(spectral.frames_to_seconds(image.shape[1] - 1)), title,
                              width_px, height_px, min_hz, max_hz)


def spectrogram_rows(mag: np.ndarray, height_px: int = 400, min_hz: float = 30.0,
                     max_hz: float = 16000.0) -> np.ndarray:
    """(N_BINS, frames) linear magnitude → (height_px, frames) float32 dB (not yet
    referenced to a peak) on log-spaced rows from min_hz to max_hz: a spectrogram's
    image, computable a block of frames at a time."""
    db = spectral.to_db(mag)
    bin_hz = spectral.SAMPLE_RATE / spectral.N_FFT
    rows = np.geomspace(min_hz, max_hz, height_px)
    lo = np.floor(rows / bin_hz).astype(int)
    frac = (rows / bin_hz - lo)[:, None]
    return (db[lo] * (1 - frac) + db[lo + 1] * frac).astype(np.float32)


def spectrogram_png_of(image: np.ndarray, seconds: float, title: str = "", width_px: int = 1000,
                       height_px: int = 400, min_hz: float = 30.0, max_hz: float = 16000.0) -> bytes:
    """The PNG of :func:`spectrogram_png` from its image: (height_px, columns) dB
    (:func:`spectrogram_rows`, or columns of it pooled for a long song) spanning
    ``seconds``; levels are drawn re the image's peak."""
    image = image - (float(image.max()) if image.size else 0.0)
    return _chart(width_px, height_px, seconds, min_hz, max_hz).png(image, title)


class _Chart:
    """One spectrogram figure: drawn once with an empty image and no title, then, per
    call, that background restored and only the image, the axes' frame and the title
    drawn over it (matplotlib's blitting). Not shared between threads."""

    def __init__(self, width_px: int, height_px: int, seconds: float, min_hz: float, max_hz: float):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = 100
        self.figure = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        self.axes = ax = self.figure.add_subplot()
        octaves = np.log2(max_hz / min_hz)
        self.image = ax.imshow(np.full((2, 2), -_RANGE_DB), origin="lower", aspect="auto", cmap="magma",
                               vmin=-_RANGE_DB, vmax=0.0, extent=(0.0, seconds, 0.0, octaves),
                               interpolation="nearest")
        ticks = [f for f in _FREQ_TICKS_HZ if min_hz <= f <= max_hz]
        ax.set_yticks([np.log2(f / min_hz) for f in ticks])
        ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
        # fixed margins (room for a title), not tight_layout: the layout must not depend on it
        self.figure.subplots_adjust(left=0.075, right=0.965, bottom=0.12, top=0.92)
        self.figure.colorbar(self.image, ax=ax, label="dB re peak", fraction=0.05, pad=0.015)
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.figure.bbox)

    def png(self, image: np.ndarray, title: str) -> bytes:
        """PNG bytes of the chart showing image ((height_px, frames) dB re peak) and title."""
        from PIL import Image

        self.canvas.restore_region(self.background)
        self.image.set_data(image)
        self.axes.draw_artist(self.image)
        for spine in self.axes.spines.values():  # the image covers the frame's inner half
            self.axes.draw_artist(spine)
        self.axes.set_title(title)
        if title:
            self.axes.draw_artist(self.axes.title)
        rgba = np.asarray(self.canvas.buffer_rgba())
        buf = io.BytesIO()
        # fast zlib: the default level costs ~0.15 s more per picture for a few % of size
        Image.fromarray(rgba).save(buf, format="png", compress_level=1)
        return buf.getvalue()


_CHARTS = threading.local()


def _chart(width_px: int, height_px: int, seconds: float, min_hz: float, max_hz: float) -> _Chart:
    """This thread's chart for these settings, made on first use (a few are kept)."""
    charts = _CHARTS.__dict__.setdefault("charts", {})
    key = (width_px, height_px, seconds, min_hz, max_hz)
    if key not in charts:
        if len(charts) >= 4:
            charts.pop(next(iter(charts)))
        charts[key] = _Chart(width_px, height_px, seconds, min_hz, max_hz)
    return charts[key]
