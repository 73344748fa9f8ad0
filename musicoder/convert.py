"""One conversion, from samples to the bytes of its files: render → encode → spectrogram.

The CLI writes what :func:`convert` returns to files; the server's workers (and its Ray
Serve replicas) send it to the client. :func:`convert` is the render
(``engine.render_unleveled``) then :func:`finish` (the level over the whole song, the
encoding, the spectrogram): a long song cut into parts that replicas render apart is
joined and goes through the same :func:`finish`. What the texture is (a built-in one, a
user's exemplar, none) is the caller's to resolve: this takes its log-magnitude transform.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable, Iterable

import numpy as np

from . import audio, engine, reconstruct, render, spectral


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
    timings: dict[str, float] = {}
    rendered = engine.render_unleveled(samples, quality, transform, strength=strength, on_progress=on_progress,
                                       should_cancel=should_cancel, timings=timings)
    return finish(rendered, mono=np.ndim(samples) == 1, normalize=normalize, format=format, title=title,
                  spectrogram=spectrogram, on_progress=on_progress, should_cancel=should_cancel, timings=timings)


def finish(
    rendered: np.ndarray,
    *,
    mono: bool = False,
    normalize: bool = True,
    format: str = "wav",
    title: str = "",
    spectrogram: bool = True,
    on_progress: engine.ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timings: dict[str, float] | None = None,
) -> Converted:
    """A whole song rendered before any level was set (``engine.render_unleveled``'s (channels,
    n) float32, in one pass or joined from parts rendered apart) → its :class:`Converted`:
    the level set over the whole song (``engine.level``), encoded, the spectrogram drawn;
    the arguments as :func:`convert`'s (``mono``: give (n,) samples back), ``timings``
    (stage → s) the render's, added to."""
    timings = {} if timings is None else dict(timings)
    out = engine.level(rendered, normalize, timings=timings, on_progress=on_progress, should_cancel=should_cancel)
    samples = out[0] if mono else out
    t0 = time.perf_counter()
    data = audio.encode(samples, format)
    if on_progress is not None:
        on_progress("encoding", engine.stage_start("encoding") + 0.5 * engine.STAGE_WEIGHTS["encoding"])
    if should_cancel is not None and should_cancel():
        raise reconstruct.Cancelled()
    png = render.spectrogram_png(render.mid(samples), title) if spectrogram else None
    timings["encoding"] = timings.get("encoding", 0.0) + time.perf_counter() - t0
    return Converted(samples=samples, audio=data, spectrogram=png, timings=timings)


@dataclasses.dataclass(frozen=True)
class FileConverted:
    """The result of :func:`convert_file`: the files written (the spectrogram's None when
    not asked for), the format, the window used (start, duration in s), the output's
    channels, warnings for the user (sentences) and the seconds each stage took."""

    output: str
    spectrogram: str | None
    format: str
    start: float
    duration: float
    channels: int
    warnings: tuple[str, ...]
    timings: dict[str, float]


SPECTROGRAM_COLUMNS = 4000  # a long song's spectrogram is pooled (max) to about this many frames: 6 MB


def convert_file(
    path: str | os.PathLike,
    out_path: str | os.PathLike,
    quality: str | reconstruct.Quality,
    transform: engine.LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    normalize: bool = True,
    start: float = 0.0,
    duration: float | None = None,
    limits: audio.Limits = audio.Limits(),
    spectrogram_path: str | os.PathLike | None = None,
    title: str = "",
    on_progress: engine.ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    block_frames: int = engine.BLOCK_FRAMES,
) -> FileConverted:
    """Convert the audio file ``path`` (its window from ``start`` s for ``duration`` s;
    duration None: the whole track) to ``out_path`` (its extension picks the format), in
    stereo when the source has two or more channels, as :func:`convert` would (transform,
    strength, quality, normalize, title, on_progress, should_cancel alike), and the mid's
    spectrogram PNG to ``spectrogram_path`` when given. Each file is written whole or not at all.

    Streaming, so that memory does not grow with the song's length: the window is decoded
    to a raw file (:func:`audio.decode_to_file`), rendered block by block
    (:func:`engine.render_blocks`) into another raw file before any level is set; that is
    measured (its loudness by ffmpeg from the file, its peak as the blocks come), then
    scaled by the one gain :func:`audio.level_gain` gives, block by block into 16-bit PCM
    that ffmpeg encodes. Temporary files only, in a folder removed at the end.
    InputError for a bad input, window or format; ``reconstruct.Cancelled`` when cancelled."""
    out_path = os.fspath(out_path)
    audio.output_format(out_path)  # a bad extension fails before any work
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="musicoder-") as folder:
        t0 = time.perf_counter()
        if on_progress is not None:
            on_progress("analysing", 0.0)
        source = audio.decode_to_file(path, folder, start, duration, limits)
        timings["decoding"] = time.perf_counter() - t0
        streamed = convert_stream(source.read, source.frames, source.channels, out_path, quality, transform,
                                  strength=strength, normalize=normalize, folder=folder,
                                  title=title if spectrogram_path is not None else None,
                                  on_progress=on_progress, should_cancel=should_cancel, block_frames=block_frames,
                                  timings=timings)
        if spectrogram_path is not None:
            audio.write_file(spectrogram_path, streamed.spectrogram)
    return FileConverted(output=out_path, spectrogram=None if spectrogram_path is None else os.fspath(spectrogram_path),
                         format=streamed.format, start=source.start, duration=source.duration,
                         channels=source.channels, warnings=source.warnings, timings=timings)


@dataclasses.dataclass(frozen=True)
class Streamed:
    """The result of :func:`convert_stream` besides its audio file: the format written, the
    mid's spectrogram PNG (None when not asked for), the waveform peaks ((2, columns)
    float32 as :func:`render.waveform_peaks` gives, None when not asked for) and the
    seconds each stage took."""

    format: str
    spectrogram: bytes | None
    peaks: np.ndarray | None
    timings: dict[str, float]


def convert_stream(
    read: engine.Reader,
    frames: int,
    channels: int,
    out_path: str | os.PathLike,
    quality: str | reconstruct.Quality,
    transform: engine.LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    normalize: bool = True,
    folder: str | None = None,
    title: str | None = "",
    peaks_columns: int | None = None,
    on_progress: engine.ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    block_frames: int = engine.BLOCK_FRAMES,
    timings: dict[str, float] | None = None,
) -> Streamed:
    """The song of ``frames`` samples and ``channels`` channels (1 or 2) that ``read`` gives
    (:data:`engine.Reader`) converted to the file ``out_path`` (its extension picks the
    format; written whole or not at all), as :func:`convert` would (transform, strength,
    quality, normalize, on_progress, should_cancel alike), memory flat in the song's length:
    rendered block by block (:func:`engine.render_blocks`) into a raw file in ``folder``
    (default: a temporary one) before any level is set; that is measured (its loudness by
    ffmpeg from the file, its peak as the blocks come), then scaled by the one gain
    :func:`audio.level_gain` gives, block by block into 16-bit PCM that ffmpeg encodes. The
    spectrogram (titled ``title``; None: none) and ``peaks_columns`` waveform peaks come
    from the scaled blocks as they pass. The files :func:`convert_file` and the server's
    workers write for a whole song. ``timings`` (stage → s) is added to."""
    audio.output_format(out_path)  # a bad extension fails before any work
    timings = {} if timings is None else timings
    rendered = engine.render_blocks(read, frames, channels, quality, transform, strength=strength,
                                    on_progress=on_progress, should_cancel=should_cancel, timings=timings,
                                    block_frames=block_frames)
    return finish_stream(rendered, frames, channels, out_path, normalize=normalize, folder=folder, title=title,
                         peaks_columns=peaks_columns, on_progress=on_progress, should_cancel=should_cancel,
                         timings=timings)


def finish_stream(
    rendered: Iterable[tuple[int, np.ndarray]],
    frames: int,
    channels: int,
    out_path: str | os.PathLike,
    *,
    normalize: bool = True,
    folder: str | None = None,
    title: str | None = "",
    peaks_columns: int | None = None,
    on_progress: engine.ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timings: dict[str, float] | None = None,
) -> Streamed:
    """:func:`convert_stream`'s second half, for a song already rendered before any level
    was set: ``rendered`` yields (first sample, (channels, m) float32) in order, covering
    0..``frames`` (:func:`engine.render_blocks`' blocks, or parts rendered apart and
    joined), written to a raw file in ``folder``, levelled over the whole song, encoded to
    ``out_path``, the spectrogram and peaks drawn on the way; the arguments as
    :func:`convert_stream`'s."""
    out_path = os.fspath(out_path)
    fmt = audio.output_format(out_path)
    timings = {} if timings is None else timings
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="musicoder-"))
        raw = os.path.join(folder, "rendered.f32")
        peak = 0.0
        with open(raw, "wb") as f:
            for _, block in rendered:
                peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                np.ascontiguousarray(block.T, "<f4").tofile(f)
        t0 = time.perf_counter()
        if should_cancel is not None and should_cancel():
            raise reconstruct.Cancelled()
        if on_progress is not None:
            on_progress("encoding", engine.stage_start("encoding"))
        lufs = audio.loudness_lufs_file(raw, channels) if normalize else None
        gain = np.float32(audio.level_gain(lufs, peak))
        pcm = os.path.join(folder, "out.s16")
        image, peaks = _scale_to_pcm(raw, pcm, channels, gain, title is not None, peaks_columns)
        os.remove(raw)
        encoded = os.path.join(folder, f"out.{fmt}")
        audio.encode_file(pcm, channels, fmt, encoded)
        os.remove(pcm)
        if should_cancel is not None and should_cancel():
            raise reconstruct.Cancelled()
        audio.copy_file(encoded, out_path)
        png = None
        if title is not None:
            seconds = float(spectral.frames_to_seconds(spectral.n_frames(frames) - 1))
            png = render.spectrogram_png_of(image, seconds, title)
        timings["encoding"] = timings.get("encoding", 0.0) + time.perf_counter() - t0
    if on_progress is not None:
        on_progress("encoding", 1.0)
    return Streamed(format=fmt, spectrogram=png, peaks=peaks, timings=timings)


def _scale_to_pcm(rendered: str, pcm: str, channels: int, gain: np.float32, spectrogram: bool,
                  peaks_columns: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The raw interleaved float32 file ``rendered`` times ``gain`` → the raw 16-bit file
    ``pcm``, engine.BLOCK_FRAMES frames' worth at a time. With ``spectrogram``, also the
    mid's spectrogram image ((rows, columns) dB, :func:`render.spectrogram_rows`), its
    frames pooled by their maximum to at most about SPECTROGRAM_COLUMNS columns; with
    ``peaks_columns``, the scaled mid's :func:`render.waveform_peaks` (else None)."""
    frames = os.path.getsize(rendered) // (4 * channels)
    total = spectral.n_frames(frames)
    pool = -(-total // SPECTROGRAM_COLUMNS)
    chunk = engine.BLOCK_FRAMES // pool * pool * spectral.HOP  # whole pools of whole hops per chunk
    columns = []
    peaks = None if peaks_columns is None else render.WaveformPeaks(frames, peaks_columns)
    with open(rendered, "rb") as f, open(pcm, "wb") as out:
        for a in range(0, frames, chunk):
            y = np.fromfile(f, "<f4", count=min(chunk, frames - a) * channels).reshape(-1, channels).T * gain
            audio.to_pcm16(y).T.tofile(out)
            if peaks is not None:
                peaks.add(a, render.mid(y))
            if spectrogram:
                # frames of this chunk alone: the two at either seam see zeros past it, invisible in a picture
                rows = render.spectrogram_rows(spectral.magnitude(render.mid(y)))
                if a + chunk < frames:
                    rows = rows[:, :chunk // spectral.HOP]  # the next chunk's first frame is its own
                columns.append(rows if pool == 1 else _pool_columns(rows, pool))
    return (np.concatenate(columns, axis=1) if spectrogram else None), (None if peaks is None else peaks.value)


def _pool_columns(image: np.ndarray, pool: int) -> np.ndarray:
    """(rows, frames) → (rows, ceil(frames / pool)): the maximum of each ``pool`` frames."""
    pad = -image.shape[1] % pool
    if pad:
        image = np.concatenate([image, np.full((image.shape[0], pad), -np.inf, image.dtype)], axis=1)
    return image.reshape(image.shape[0], -1, pool).max(axis=2)
