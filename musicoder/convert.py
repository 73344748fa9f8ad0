"""One conversion, from samples to the bytes of its files: render → encode → spectrogram.

The CLI writes what :func:`convert` returns to files; the server's workers (and its Ray
actors) send it to the client. What the texture is (a built-in one, a user's exemplar,
none) is the caller's to resolve: this takes its log-magnitude transform.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from . import audio, engine, reconstruct, render


@dataclasses.dataclass(frozen=True)
class Converted:
    """The result of :func:`convert`: the rendered float32 samples at
    ``spectral.SAMPLE_RATE``, (n,) or (channels, n) as given, the encoded file's bytes, the spectrogram's PNG bytes
    (None when not asked for) and the seconds each stage took."""

    samples: np.ndarray
    audio: bytes
    spectrogram: bytes | None
    timings: dict[str, float]


def convert(
    samples: np.ndarray,
    quality: str | reconstruct.Quality,
    transform: engine.LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    normalize: bool = True,
    format: str = "wav",
    title: str = "",
    spectrogram: bool = True,
    on_progress: engine.ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> Converted:
    """Render ``samples`` ((n,) or (channels, n) float at ``spectral.SAMPLE_RATE``, channels 1
    or 2) with ``transform`` (None: no texture) at ``strength`` (0..1: 0 the music
    unchanged, 1 the texture as tuned) at ``quality`` (lofi, standard, hifi), loudness-normalised to
    ``audio.TARGET_LUFS`` or only peak-guarded (``normalize`` False), encoded as
    ``format`` (one of ``audio.OUTPUT_FORMATS``, the channels kept), with the spectrogram
    PNG (of the mid) titled ``title`` when ``spectrogram``. on_progress(stage, fraction of the whole job 0..1) as
    :func:`engine.render`'s; raises ``reconstruct.Cancelled`` when should_cancel()
    says so (checked between stages), InputError for an unknown quality or format."""
    rendered = engine.render(samples, quality, transform, strength=strength, normalize=normalize,
                             on_progress=on_progress, should_cancel=should_cancel)
    t0 = time.perf_counter()
    data = audio.encode(rendered.samples, format)
    if on_progress is not None:
        on_progress("encoding", engine.stage_start("encoding") + 0.5 * engine.STAGE_WEIGHTS["encoding"])
    if should_cancel is not None and should_cancel():
        raise reconstruct.Cancelled()
    png = render.spectrogram_png(render.mid(rendered.samples), title) if spectrogram else None
    timings = dict(rendered.timings)
    timings["encoding"] = timings.get("encoding", 0.0) + time.perf_counter() - t0
    return Converted(samples=rendered.samples, audio=data, spectrogram=png, timings=timings)
