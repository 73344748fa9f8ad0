"""The conversion pipeline as one plain function: samples in, samples out.

analyse (STFT) → transfer (a texture's band-statistics transfer on the log-magnitude,
:mod:`musicoder.texture`, or none) → reconstruct (phase retrieval at a quality level,
started from the music's own phase) → level (loudness or peak guard).
:func:`musicoder.convert.convert` (what the CLI and the server's workers call) adds the
encoding and the spectrogram; the benchmark calls :func:`render` alone.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from . import audio, reconstruct, spectral

# Share of the total time each stage takes, for one progress fraction over the whole job.
STAGE_WEIGHTS = {"analysing": 0.04, "transferring": 0.08, "reconstructing": 0.83, "encoding": 0.05}
STAGES = tuple(STAGE_WEIGHTS)

ProgressCallback = Callable[[str, float], None]
"""on_progress(stage, fraction of the whole job done, 0..1)."""

LogMagTransform = Callable[[np.ndarray], np.ndarray]
"""(N_BINS, n_frames) log-magnitude → (N_BINS, n_frames) log-magnitude."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The result of :func:`render`: (n,) float32 samples at ``SAMPLE_RATE`` and the
    seconds each stage took."""

    samples: np.ndarray
    timings: dict[str, float]


def stage_start(stage: str) -> float:
    """Fraction of the whole job done when ``stage`` begins."""
    done = 0.0
    for name in STAGES:
        if name == stage:
            return done
        done += STAGE_WEIGHTS[name]
    raise ValueError(f"unknown stage {stage!r}")


def render(
    samples: np.ndarray,
    quality: str | reconstruct.Quality,
    transform: LogMagTransform | None = None,
    *,
    normalize: bool = True,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Rendered:
    """Re-render ``samples`` through the spectrogram, optionally transformed.

    samples: (n,) float at ``spectral.SAMPLE_RATE``. quality: "lofi", "standard", "hifi".
    transform: maps the log-magnitude to a new one (a texture's band-statistics
    transfer); None keeps it.
    normalize: loudness-normalise the result (the original's "std" build) or only guard
    against clipping ("lite"). Raises ``reconstruct.Cancelled`` if cancelled.
    """
    q = quality if isinstance(quality, reconstruct.Quality) else reconstruct.quality(quality)
    timings: dict[str, float] = {}

    def report(stage: str, within: float) -> None:
        if on_progress is not None:
            on_progress(stage, stage_start(stage) + STAGE_WEIGHTS[stage] * within)

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise reconstruct.Cancelled()

    t0 = time.perf_counter()
    report("analysing", 0.0)
    # (N_BINS, n_frames) view of the frame-major STFT: no transposed copy, and the music's
    # phase stays complex (phase retrieval takes it as x/|x|: no angles, no complex exp)
    spec = spectral.stft_frames(samples).T
    mag = np.abs(spec)
    timings["analysing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    check_cancel()
    report("transferring", 0.0)
    if transform is not None:
        mag = spectral.from_log(transform(spectral.to_log(mag)))
    timings["transferring"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report("reconstructing", 0.0)
    # Start phase retrieval from the music's own phase: where the transfer kept the music,
    # its partials stay in place (a PGHI start from the new magnitude smears them).
    out = reconstruct.reconstruct(mag, q, length=len(samples), phase=spec, overwrite_phase=True, seed=seed,
                                  on_progress=lambda f: report("reconstructing", f),
                                  should_cancel=should_cancel)
    timings["reconstructing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    check_cancel()
    report("encoding", 0.0)
    out = audio.normalize_loudness(out) if normalize else audio.peak_limit(out)
    timings["encoding"] = time.perf_counter() - t0
    return Rendered(samples=out, timings=timings)
