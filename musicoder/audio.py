"""Audio in and out: decode any common file to mono at the engine's rate, cut a window,
normalise loudness, encode to wav/flac/mp3/ogg.

Decoding goes through pydub and ffmpeg: the system's ffmpeg when there is one, else the
binary that the imageio-ffmpeg wheel ships, so a machine with only Python works too.
ffprobe is never needed: the file is probed by ``ffmpeg -i`` itself, and pydub is
given the decoder so that it does not call ffprobe.

Every problem with the input raises :class:`~musicoder.errors.InputError` with a
machine-readable code and a sentence for the user.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import math
import os
import re
import shutil
import subprocess
import warnings

import numpy as np

from .errors import InputError
from .spectral import SAMPLE_RATE

DEFAULT_WINDOW_SECONDS = 10.0  # the original's trial limit
MIN_WINDOW_SECONDS = 1.0
OUTPUT_FORMATS = ("wav", "flac", "mp3", "ogg")
TARGET_LUFS = -16.0  # loudness of normalised output (ITU-R BS.1770 integrated)
PEAK_CEILING_DB = -1.0  # clipping guard after normalisation, dBFS
SILENCE_DBFS = -70.0  # RMS below this counts as silent


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one input may be. Sizes in bytes, durations in seconds."""

    max_bytes: int = 200 * 1024 * 1024
    max_track_seconds: float = 30 * 60.0
    max_window_seconds: float = 60.0


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What ``ffmpeg -i`` says of a file: duration (s), audio codec, rate (Hz), layout."""

    duration: float
    codec: str
    sample_rate: int
    channel_layout: str


@dataclasses.dataclass(frozen=True)
class Clip:
    """A decoded window: mono float32 samples at ``SAMPLE_RATE``.

    start and duration are in seconds within the source; channels and sample_rate are
    the source's; warnings are sentences for the user (e.g. silent input).
    """

    samples: np.ndarray
    start: float
    duration: float
    source: SourceInfo
    channels: int
    warnings: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1)
def ffmpeg_path() -> str:
    """The ffmpeg binary: the system's if on PATH, else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - it is a dependency
        raise RuntimeError("no ffmpeg: install ffmpeg or the imageio-ffmpeg package") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _audio_segment():
    """pydub's AudioSegment, pointed at our ffmpeg (pydub warns at import without one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_path()
    return AudioSegment


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+\S*: Audio: (\w+)[^,\n]*(?:, (\d+) Hz)?(?:, ([^,\n]+))?")


def probe(path: str | os.PathLike) -> SourceInfo:
    """Read a file's duration and audio stream with ``ffmpeg -i`` (no ffprobe).

    Raises InputError: empty, not_audio, truncated, no_audio_stream.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("not_found", f"{os.path.basename(path)}: no such file.")
    if os.path.getsize(path) == 0:
        raise InputError("empty", "The file is empty (0 bytes).")
    proc = subprocess.run([ffmpeg_path(), "-hide_banner", "-nostdin", "-i", path],
                          capture_output=True, text=True, errors="replace", timeout=60)
    err = proc.stderr
    if "moov atom not found" in err:
        with open(path, "rb") as f:
            is_mp4 = f.read(12)[4:8] == b"ftyp"  # an MP4 whose index never arrived
        if is_mp4:
            raise InputError("truncated", "The file is truncated: its index is missing (an incomplete download?).")
    if "Invalid data found" in err or "Error opening input" in err:
        raise InputError("not_audio", "This file is not audio that can be read (unknown or damaged format).")
    stream = _AUDIO_STREAM.search(err)
    if stream is None:
        raise InputError("no_audio_stream", "The file has no audio stream.")
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else math.nan
    rate = int(stream[2]) if stream[2] else 0
    return SourceInfo(duration=duration, codec=stream[1], sample_rate=rate,
                      channel_layout=(stream[3] or "").strip())


def check_window(start: float, duration: float, track_seconds: float,
                 max_seconds: float = Limits.max_window_seconds) -> tuple[float, float]:
    """Validate a window of a track; returns (start, duration) in seconds, the duration
    shortened where the track ends first. Raises InputError("bad_window")."""
    for name, value in (("start", start), ("duration", duration)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError("bad_window", f"The window {name} must be a finite number of seconds.")
    if start < 0:
        raise InputError("bad_window", f"The window cannot start before 0 s (got {start:g} s).")
    if duration < MIN_WINDOW_SECONDS:
        raise InputError("bad_window", f"The window must last at least {MIN_WINDOW_SECONDS:g} s (got {duration:g} s).")
    if duration > max_seconds:
        raise InputError("bad_window", f"The window may last at most {max_seconds:g} s (got {duration:g} s).")
    if math.isfinite(track_seconds):
        if start >= track_seconds:
            raise InputError("bad_window", f"The window starts at {start:g} s, past the end of the track ({track_seconds:.2f} s).")
        duration = min(duration, track_seconds - start)
        if duration < MIN_WINDOW_SECONDS:
            raise InputError("bad_window", f"Less than {MIN_WINDOW_SECONDS:g} s of the track is left after {start:g} s.")
    return float(start), float(duration)


def load(path: str | os.PathLike, start: float = 0.0, duration: float | None = DEFAULT_WINDOW_SECONDS,
         limits: Limits = Limits()) -> Clip:
    """Decode a window of an audio file to mono float32 at ``SAMPLE_RATE``.

    start, duration: seconds (sub-second allowed); duration None means the whole track
    (within ``limits.max_track_seconds``). Raises InputError for every bad input.
    """
    path = os.fspath(path)
    if os.path.exists(path) and os.path.getsize(path) > limits.max_bytes:
        raise InputError("too_large", f"The file is larger than the {limits.max_bytes // 2**20} MB limit.")
    info = probe(path)
    if info.duration > limits.max_track_seconds:
        raise InputError("too_long", f"The track lasts {info.duration / 60:.1f} min; the limit is "
                                     f"{limits.max_track_seconds / 60:g} min.")
    if duration is None:
        duration = info.duration if math.isfinite(info.duration) else limits.max_track_seconds
        max_window = limits.max_track_seconds
    else:
        max_window = limits.max_window_seconds
    start, duration = check_window(start, duration, info.duration, max_window)
    samples, rate, channels = _decode(path, info, start, duration)
    if samples.size == 0:
        raise InputError("truncated", "No audio could be decoded from the file (truncated or damaged).")
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    mono = resample(mono, rate, SAMPLE_RATE)
    # a DC offset (a recording fault) would come back from phase retrieval as a loud sub-bass rumble
    mono -= np.float32(mono.mean())
    notes = []
    if rms_dbfs(mono) < SILENCE_DBFS:
        notes.append("The selected audio is silent; the result will be silent too.")
    ends = start + len(mono) / SAMPLE_RATE
    if math.isfinite(info.duration) and ends < start + duration - 0.5:  # e.g. an mp4 with its index first, cut
        notes.append(f"The file is cut short: its audio ends at {ends:.1f} s, not at the {info.duration:.1f} s "
                     f"its header gives.")
    return Clip(samples=mono, start=start, duration=len(mono) / SAMPLE_RATE, source=info,
                channels=channels, warnings=tuple(notes))


def _decode(path: str, info: SourceInfo, start: float, duration: float) -> tuple[np.ndarray, int, int]:
    """ffmpeg through pydub → ((n, channels) float32 in [-1, 1], rate, channels)."""
    AudioSegment = _audio_segment()
    try:
        # codec given: pydub then skips its ffprobe call
        seg = AudioSegment.from_file(path, codec=info.codec, start_second=start, duration=duration)
    except Exception as exc:  # pydub raises CouldntDecodeError, or others on odd headers
        raise InputError("not_audio", "The audio in this file could not be decoded (damaged or unsupported).") from exc
    raw = np.array(seg.get_array_of_samples())
    scale = float(1 << (8 * seg.sample_width - 1))
    # pydub has already made 8-bit (unsigned in WAV) samples signed
    samples = (raw.astype(np.float32) / scale).reshape(-1, seg.channels)
    return samples, seg.frame_rate, seg.channels


def resample(y: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality). y: (n,) float → (m,) float32."""
    y = np.asarray(y, dtype=np.float32)
    if rate_in == rate_out:
        return y
    import soxr  # librosa's own resampler backend

    return soxr.resample(y, rate_in, rate_out, quality="HQ").astype(np.float32)


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def loudness_lufs(y: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """Integrated loudness (ITU-R BS.1770, pyloudnorm) in LUFS; -inf if too quiet or
    shorter than one 400 ms block."""
    import pyloudnorm

    if len(y) < int(0.4 * rate) + 1:
        return -math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pyloudnorm.Meter(rate).integrated_loudness(np.asarray(y, dtype=np.float64)))


def normalize_loudness(y: np.ndarray, target_lufs: float = TARGET_LUFS, rate: int = SAMPLE_RATE,
                       ceiling_db: float = PEAK_CEILING_DB) -> np.ndarray:
    """Gain to ``target_lufs`` integrated loudness, then :func:`peak_limit` (so no sample
    peaks above ``ceiling_db`` dBFS). Silence is returned as is.
    y: (n,) float. Returns (n,) float32."""
    y = np.asarray(y, dtype=np.float32)
    current = loudness_lufs(y, rate)
    gain = 10 ** ((target_lufs - current) / 20) if math.isfinite(current) else 1.0
    return peak_limit(y * np.float32(gain), ceiling_db)


def peak_limit(y: np.ndarray, ceiling_db: float = PEAK_CEILING_DB) -> np.ndarray:
    """Scale down only if a sample would clip past ``ceiling_db`` dBFS. (n,) → (n,) float32."""
    y = np.asarray(y, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    ceiling = 10 ** (ceiling_db / 20)
    return y * np.float32(ceiling / peak) if peak > ceiling else y


def output_format(path: str | os.PathLike) -> str:
    """Output format from a file name's extension; InputError if not one we write."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    ext = {"oga": "ogg"}.get(ext, ext)
    if ext not in OUTPUT_FORMATS:
        raise InputError("bad_format", f"Cannot write .{ext or '?'} files: use one of "
                                       f"{', '.join('.' + f for f in OUTPUT_FORMATS)}.")
    return ext


def encode(y: np.ndarray, fmt: str, rate: int = SAMPLE_RATE) -> bytes:
    """Encode mono audio. y: (n,) float in [-1, 1]; fmt: wav (16-bit PCM), flac, mp3
    (192 kbit/s) or ogg (Vorbis q6). Returns the file's bytes."""
    if fmt not in OUTPUT_FORMATS:
        raise InputError("bad_format", f"Unknown output format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}.")
    pcm = (np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
    seg = _audio_segment()(data=pcm.tobytes(), sample_width=2, frame_rate=rate, channels=1)
    buf = io.BytesIO()
    options = {"mp3": {"bitrate": "192k"}, "ogg": {"codec": "libvorbis", "parameters": ["-q:a", "6"]}}
    seg.export(buf, format=fmt, **options.get(fmt, {}))
    return buf.getvalue()


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` under a temporary name, then rename: a full disk or a
    crash leaves no partial file."""
    path = os.fspath(path)
    tmp = f"{path}.part"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(y: np.ndarray, path: str | os.PathLike, rate: int = SAMPLE_RATE) -> str:
    """Write mono audio to ``path`` in the format its extension names. Returns the format."""
    fmt = output_format(path)
    write_file(path, encode(y, fmt, rate))
    return fmt


def decode_bytes(data: bytes, limits: Limits = Limits()) -> np.ndarray:
    """A whole audio file given as bytes → (n,) float32 mono at ``SAMPLE_RATE``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="musicoder-") as folder:
        path = os.path.join(folder, "audio")
        with open(path, "wb") as f:
            f.write(data)
        return load(path, duration=None, limits=limits).samples
