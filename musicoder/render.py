"""Pictures of audio: waveform peaks for drawing, and a spectrogram PNG.

The PNG is drawn with matplotlib's object API on the Agg canvas, never pyplot: no
global figure state, so it is safe in threads and worker processes.
"""
from __future__ import annotations

import io

import numpy as np

from . import spectral


def waveform_peaks(y: np.ndarray, columns: int = 800) -> np.ndarray:
    """Min and max of each of ``columns`` equal slices of y, for drawing a waveform.

    y: (n,) float. Returns (2, columns) float32: row 0 the minima, row 1 the maxima.
    When y has fewer samples than columns, a column shows the sample it falls on.
    """
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        return np.zeros((2, columns), dtype=np.float32)
    starts = np.minimum(np.linspace(0, y.size, columns + 1)[:-1].astype(np.int64), y.size - 1)
    # reduceat gives y[start] for a slice that is empty (start >= next start)
    return np.stack([np.minimum.reduceat(y, starts), np.maximum.reduceat(y, starts)])


_FREQ_TICKS_HZ = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 16000)


def spectrogram_png(y: np.ndarray, title: str = "", rate: int = spectral.SAMPLE_RATE,
                    width_px: int = 1000, height_px: int = 400,
                    min_hz: float = 30.0, max_hz: float = 16000.0) -> bytes:
    """A dB spectrogram of y with time (s) and log-frequency (Hz) axes, as PNG bytes.

    y: (n,) float at ``rate`` (must be ``spectral.SAMPLE_RATE``). The linear-frequency
    STFT is interpolated onto log-spaced rows so that the image shows music's octaves
    evenly; drawn with imshow (one image), which is fast.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if rate != spectral.SAMPLE_RATE:
        raise ValueError(f"spectrogram_png expects {spectral.SAMPLE_RATE} Hz audio")
    db = spectral.to_db(spectral.magnitude(y))
    top = float(db.max()) if db.size else 0.0
    bin_hz = rate / spectral.N_FFT
    rows = np.geomspace(min_hz, max_hz, height_px)
    lo = np.floor(rows / bin_hz).astype(int)
    frac = (rows / bin_hz - lo)[:, None]
    image = db[lo] * (1 - frac) + db[lo + 1] * frac
    octaves = np.log2(max_hz / min_hz)
    seconds = float(spectral.frames_to_seconds(db.shape[1] - 1))

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(image, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                   extent=(0.0, seconds, 0.0, octaves), interpolation="nearest")
    ticks = [f for f in _FREQ_TICKS_HZ if min_hz <= f <= max_hz]
    ax.set_yticks([np.log2(f / min_hz) for f in ticks])
    ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title)
    # Fixed margins rather than tight_layout, and fast zlib: each would otherwise cost
    # another full draw or ~0.15 s of compression, in every conversion.
    fig.subplots_adjust(left=0.075, right=0.965, bottom=0.12, top=0.92 if title else 0.97)
    fig.colorbar(im, ax=ax, label="dB", fraction=0.05, pad=0.015)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()
