"""Audio in and out: decode any common file to mono or stereo at the engine's rate, cut a
window, normalise loudness, encode to wav/flac/mp3/ogg (keeping the channels).

Everything goes through one ffmpeg binary, called directly (no ffprobe, no wrapper):

- which: ``MUSICODER_FFMPEG`` names it (a path or a command on PATH); unset, the static
  binary that the imageio-ffmpeg wheel ships (one pinned version on every machine, and
  it starts in about 10 ms where a distribution's dynamically linked ffmpeg takes 70-90
  ms, three or four times per conversion), else the system's ``ffmpeg`` on PATH.
- probing: ``ffmpeg -i FILE`` reports the container, the duration and the streams.
- decoding: ffmpeg writes 32-bit float PCM (a WAV stream on a pipe, so that channels and
  rate come from its header), read with numpy; the mono mix (mean of channels) and the
  resampling (soxr) happen here, so the samples do not depend on ffmpeg's resampler.
  Stereo keeps a stereo source's two channels; a source with more is downmixed to stereo
  by ffmpeg (``-ac 2``: its downmix matrix knows 5.1's centre and LFE).
- encoding: 16-bit PCM on a pipe in, a temporary file out (seekable, so that flac's and
  mp3's headers get their lengths).
- time: every run has a time limit (:func:`ffmpeg_timeout`: ``MUSICODER_FFMPEG_TIMEOUT``
  seconds, default 60, plus a second per second of audio it handles); one that runs
  past it is killed (with anything it started) and raises :class:`FfmpegTimeout`, a
  :class:`NoFfmpeg`: a hung ffmpeg is a broken installation, not the user's file.

A file gives the same samples (to float rounding) and a bad one the same error code with
any ffmpeg (checked with 5.1, Debian 12's, with 7.0 and with 9.0): errors are classified
by whether ffmpeg could open the file, which streams it lists and the file's own bytes,
never by ffmpeg's wording, which changes between versions. (Only a file scrambled inside
may decode to a different length, as each version's decoders recover differently.)

Every problem with the input raises :class:`~musicoder.errors.InputError` with a
machine-readable code and a sentence for the user.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile

import numpy as np

from .errors import InputError
from .spectral import SAMPLE_RATE

DEFAULT_WINDOW_SECONDS = 10.0  # the original's trial limit
MIN_WINDOW_SECONDS = 1.0
OUTPUT_FORMATS = ("wav", "flac", "mp3", "ogg")
TARGET_LUFS = -16.0  # loudness of normalised output (ITU-R BS.1770 integrated)
PEAK_CEILING_DB = -1.0  # clipping guard after normalisation, dBFS
SILENCE_DBFS = -70.0  # RMS below this counts as silent
FFMPEG_ENV = "MUSICODER_FFMPEG"  # names the ffmpeg to use: a path or a command on PATH
FFMPEG_TIMEOUT_ENV = "MUSICODER_FFMPEG_TIMEOUT"  # seconds any ffmpeg run may take, before the per-second part
FFMPEG_TIMEOUT_S = 60.0  # its default: ffmpeg starts in 10-90 ms, so only a hung one comes near it
# and per second of audio a run decodes, encodes or measures: ffmpeg does these at
# hundreds of times real time, so a slow machine is far inside it
FFMPEG_TIMEOUT_PER_AUDIO_SECOND = 1.0
# decoded before a window and dropped, so that its first samples are whole: an mp3
# frame needs earlier frames' bit reservoir, AAC and Opus the previous block's overlap
SEEK_PREROLL_SECONDS = 1.0
# decoded past a window's end and cut here: where ffmpeg's own -t stops varies by up to
# a frame (10 ms) with the version
END_MARGIN_SECONDS = 0.5
# ffmpeg (every version) times Vorbis packets up to half a block off where the block size
# changes, so a cut by timestamps can land 10 ms away: these are cut by counting samples
COUNTED_CODECS = frozenset({"vorbis"})
ENCODER_OPTIONS = {  # output format: ffmpeg's encoder options
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "6"],
}
NOT_AUDIO = "This file is not audio that can be read (unknown or damaged format)."


class NoFfmpeg(RuntimeError):
    """No usable ffmpeg: the one ``MUSICODER_FFMPEG`` names is missing or is not ffmpeg,
    or there is none at all. A setup problem, not bad input; the message is one line."""


class FfmpegTimeout(NoFfmpeg):
    """An ffmpeg run went past :func:`ffmpeg_timeout` and was killed: a hung or broken
    ffmpeg, a setup problem like :class:`NoFfmpeg`. The message is one line."""


def ffmpeg_timeout(audio_seconds: float = 0.0) -> float:
    """Seconds one ffmpeg run may take before it is killed: ``$MUSICODER_FFMPEG_TIMEOUT``
    (default FFMPEG_TIMEOUT_S) plus FFMPEG_TIMEOUT_PER_AUDIO_SECOND per second of audio
    it handles (``audio_seconds``, 0 for a probe). NoFfmpeg when the variable is not a
    positive number."""
    value = os.environ.get(FFMPEG_TIMEOUT_ENV) or None
    try:
        base = FFMPEG_TIMEOUT_S if value is None else float(value)
    except ValueError:
        base = math.nan
    if not base > 0 or not math.isfinite(base):
        raise NoFfmpeg(f"{FFMPEG_TIMEOUT_ENV}={value}: give the seconds an ffmpeg run may take (a number above 0)")
    extra = audio_seconds if math.isfinite(audio_seconds) else 0.0
    return base + FFMPEG_TIMEOUT_PER_AUDIO_SECOND * max(extra, 0.0)


def run_ffmpeg(args: list[str], what: str, audio_seconds: float = 0.0,
               stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run an ffmpeg command line (``args``, the binary first) with stdin's bytes (None:
    no input), capturing stdout and stderr as bytes, within :func:`ffmpeg_timeout` of
    ``audio_seconds``. Past it, or on any exception here (Ctrl-C), ffmpeg is killed with
    every process it started (it runs in its own process group); a timeout raises
    FfmpegTimeout naming ``what`` it was doing ("decoding song.mp3")."""
    limit = ffmpeg_timeout(audio_seconds)
    with subprocess.Popen(args, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(stdin, timeout=limit)
        except BaseException as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # it ended just now
                pass
            proc.communicate()  # the pipes close with the group: nothing left running or open
            if isinstance(exc, subprocess.TimeoutExpired):
                raise FfmpegTimeout(f"ffmpeg did not finish {what} in {limit:g} s and was stopped (a hung ffmpeg? "
                                    f"check the installation, or {FFMPEG_ENV})") from None
            raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


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
    """A decoded window: float32 samples at ``SAMPLE_RATE``, (n,) mono or, when stereo
    was asked for, (channels, n) with channels 1 (a mono source) or 2.

    start and duration are in seconds within the source; channels and sample_rate are
    the source's; warnings are sentences for the user (e.g. silent input).
    """

    samples: np.ndarray
    start: float
    duration: float
    source: SourceInfo
    channels: int
    warnings: tuple[str, ...] = ()


def ffmpeg_path() -> str:
    """The ffmpeg binary: ``$MUSICODER_FFMPEG`` if set (a path, or a command on PATH),
    else imageio-ffmpeg's, else the system's ``ffmpeg`` on PATH.

    Raises NoFfmpeg when the one the variable names is missing or is not ffmpeg.
    """
    return _find_ffmpeg(os.environ.get(FFMPEG_ENV) or None)


@functools.lru_cache(maxsize=8)
def _find_ffmpeg(choice: str | None) -> str:
    """:func:`ffmpeg_path` for one value of the variable (None: unset), cached by that
    value, so that changing the variable (as the tests do) takes effect."""
    if choice is None:
        try:
            import imageio_ffmpeg

            return imageio_ffmpeg.get_ffmpeg_exe()  # its own binary, else the system's on PATH
        except (ImportError, RuntimeError):  # a platform it has no binary for, and no ffmpeg on PATH
            raise NoFfmpeg("no ffmpeg: install ffmpeg or the imageio-ffmpeg package") from None
    found = shutil.which(os.path.expanduser(choice))
    if not found:
        raise NoFfmpeg(f"{FFMPEG_ENV}={choice}: no such program, or not executable (give an ffmpeg "
                           f"binary's path or a command on PATH, or unset it)")
    # checked once: a wrong binary would otherwise make every file look like it is not audio
    try:
        version = run_ffmpeg([found, "-hide_banner", "-version"], "telling its version").stdout.decode(errors="replace")
    except OSError as exc:
        raise NoFfmpeg(f"{FFMPEG_ENV}={choice}: cannot run it ({exc.strerror or exc})") from None
    if not version.startswith("ffmpeg version"):
        raise NoFfmpeg(f"{FFMPEG_ENV}={choice}: {found} is not ffmpeg")
    return os.path.abspath(found)


# ffmpeg's dump of an input (av_dump_format), the same in every version: it is printed
# only once ffmpeg has opened the file and read its streams
_INPUT = re.compile(r"^Input #0, ", re.M)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", re.M)
_AUDIO_STREAM = re.compile(r"^\s*Stream #0:\d+\S*: Audio: (\w+)[^,\n]*(?:, (\d+) Hz)?(?:, ([^,\n]+))?", re.M)
# ffmpeg's standard channel layouts by name (libavutil's channel_layout_map): a source's
# channel count when the decoder hands over a downmix
_LAYOUT_CHANNELS = {
    "mono": 1, "stereo": 2, "downmix": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4,
    "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5, "5.1": 6, "5.1(side)": 6, "6.0": 6,
    "6.0(front)": 6, "3.1.2": 6, "hexagonal": 6, "6.1": 7, "6.1(back)": 7, "6.1(front)": 7, "7.0": 7,
    "7.0(front)": 7, "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8, "5.1.2": 8, "octagonal": 8, "cube": 8,
    "5.1.4": 10, "7.1.2": 10, "7.1.4": 12, "7.2.3": 12, "9.1.4": 14, "hexadecagonal": 16, "22.2": 24,
}
MAX_MP4_BOXES = 10_000  # top-level boxes read when telling a cut MP4 from a damaged one


def probe(path: str | os.PathLike) -> SourceInfo:
    """Read a file's duration and first audio stream with ``ffmpeg -i`` (no ffprobe).

    Raises InputError: not_found, empty, not_audio, truncated, no_audio_stream.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("not_found", f"{os.path.basename(path)}: no such file.")
    if os.path.getsize(path) == 0:
        raise InputError("empty", "The file is empty (0 bytes).")
    # "file:" so that a name like "http:x" or "concat:a|b" is read as a file name
    dump = run_ffmpeg([ffmpeg_path(), "-hide_banner", "-nostdin", "-i", "file:" + path],
                      f"reading {os.path.basename(path)}").stderr.decode(errors="replace")
    if not _INPUT.search(dump):  # ffmpeg could not open it (its exit status is 1 either way)
        if _mp4_without_index(path):
            raise InputError("truncated", "The file is truncated: its index is missing (an incomplete download?).")
        raise InputError("not_audio", NOT_AUDIO)
    return _source_info(dump)


def _source_info(dump: str) -> SourceInfo:
    """SourceInfo from what ``ffmpeg -i`` printed of an input it opened: duration (NaN
    when it gives none), and the first audio stream's codec, rate and layout.
    Raises InputError("no_audio_stream")."""
    stream = _AUDIO_STREAM.search(dump)
    if stream is None:
        raise InputError("no_audio_stream", "The file has no audio stream.")
    m = _DURATION.search(dump)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else math.nan
    rate = int(stream[2]) if stream[2] else 0
    return SourceInfo(duration=duration, codec=stream[1], sample_rate=rate,
                      channel_layout=(stream[3] or "").strip())


def layout_channels(layout: str) -> int | None:
    """The channel count ffmpeg's layout text names ("7.1" → 8, "3 channels" → 3), or
    None for a text it does not (the decoded count is then the source's)."""
    m = re.match(r"(\d+) channels?\b", layout)
    return int(m[1]) if m else _LAYOUT_CHANNELS.get(layout.split()[0] if layout else "")


def _mp4_without_index(path: str) -> bool:
    """Whether ``path`` is an MP4/M4A/MOV (ISO BMFF: an 'ftyp' box first) whose top-level
    boxes end at or past the end of the file with no 'moov' (the index) among them: a cut
    download. Read from the file's own box structure, not from ffmpeg's words."""
    size = os.path.getsize(path)
    pos = 0
    with open(path, "rb") as f:
        for count in range(MAX_MP4_BOXES):
            if pos + 8 > size:  # the boxes ran to (or past) the end: cut before the index
                return count > 0
            f.seek(pos)
            head = f.read(16)
            length, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if kind == b"moov" or (count == 0 and kind != b"ftyp"):
                return False
            if length == 1 and len(head) == 16:  # a 64-bit size follows
                length = int.from_bytes(head[8:16], "big")
            elif length == 0:  # the last box, to the end of the file
                length = size - pos
            if length < 8:  # not a box: damaged rather than cut
                return False
            pos += length
    return False


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
         limits: Limits = Limits(), *, stereo: bool = False) -> Clip:
    """Decode a window of an audio file to float32 at ``SAMPLE_RATE``: (n,) mono (the mean
    of the channels), or with ``stereo`` (channels, n), channels 1 for a mono source and 2
    for any other (more than two are downmixed to stereo).

    start, duration: seconds (sub-second allowed); duration None means the whole track
    (within ``limits.max_track_seconds``). Raises InputError for every bad input.
    """
    path = os.fspath(path)
    info = _probe_checked(path, limits)
    if duration is None:
        duration = info.duration if math.isfinite(info.duration) else limits.max_track_seconds
        max_window = limits.max_track_seconds
    else:
        max_window = limits.max_window_seconds
    return _load_probed(path, info, start, duration, max_window, stereo)


def _probe_checked(path: str, limits: Limits) -> SourceInfo:
    """:func:`probe` of a file within ``limits``' size, and of a track within their length."""
    _check_size(path, limits)
    info = probe(path)
    _check_track(info, limits)
    return info


def _check_size(path: str, limits: Limits) -> None:
    if os.path.exists(path) and os.path.getsize(path) > limits.max_bytes:
        raise InputError("too_large", f"The file is larger than the {limits.max_bytes // 2**20} MB limit.")


def _check_track(info: SourceInfo, limits: Limits) -> None:
    if info.duration > limits.max_track_seconds:
        raise InputError("too_long", f"The track lasts {info.duration / 60:.1f} min; the limit is "
                                     f"{limits.max_track_seconds / 60:g} min.")


def _load_probed(path: str, info: SourceInfo, start: float, duration: float, max_window: float,
                 stereo: bool = False) -> Clip:
    """:func:`load` of a file already probed (``info``): the window checked against the
    track and ``max_window`` s, decoded, mono (or ``stereo``: see :func:`load`) at
    SAMPLE_RATE, its DC removed."""
    start, duration = check_window(start, duration, info.duration, max_window)
    samples, rate, channels = _decode(path, info, start, duration, stereo)
    if samples.size == 0:
        raise InputError("truncated", "No audio could be decoded from the file (truncated or damaged).")
    if stereo:
        mono = np.ascontiguousarray(resample(samples, rate, SAMPLE_RATE).T)
        # a DC offset (a recording fault) would come back from phase retrieval as a loud sub-bass rumble
        mono -= mono.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    else:
        mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
        mono = resample(mono, rate, SAMPLE_RATE)
        mono -= np.float32(mono.mean())
    notes = _window_notes(rms_dbfs(mono), start + mono.shape[-1] / SAMPLE_RATE, start, duration, info)
    # with stereo, ffmpeg downmixed a wider layout: the source's count is in its layout
    source_channels = (layout_channels(info.channel_layout) or channels) if stereo else channels
    return Clip(samples=mono, start=start, duration=mono.shape[-1] / SAMPLE_RATE, source=info,
                channels=source_channels, warnings=notes)


def _window_notes(level_dbfs: float, ends: float, start: float, duration: float,
                  info: SourceInfo) -> tuple[str, ...]:
    """Warnings for the user about a decoded window of ``level_dbfs`` RMS (its DC removed)
    whose audio ends at ``ends`` s, asked for from ``start`` s for ``duration`` s."""
    notes = []
    if level_dbfs < SILENCE_DBFS:
        notes.append("The selected audio is silent; the result will be silent too.")
    if math.isfinite(info.duration) and ends < start + duration - 0.5:  # e.g. an mp4 with its index first, cut
        notes.append(f"The file is cut short: its audio ends at {ends:.1f} s, not at the {info.duration:.1f} s "
                     f"its header gives.")
    return tuple(notes)


@dataclasses.dataclass(frozen=True)
class DecodedFile:
    """A window decoded to a raw file for a song too long to hold: ``path`` holds
    ``frames`` × ``channels`` interleaved float32 samples at SAMPLE_RATE (channels 1 or 2),
    before ``dc`` ((channels,) float32, each channel's mean) is taken off; start, duration
    (s), source, source_channels and warnings as :class:`Clip`'s."""

    path: str
    frames: int
    channels: int
    dc: np.ndarray
    start: float
    duration: float
    source: SourceInfo
    source_channels: int
    warnings: tuple[str, ...] = ()

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples a to b (clipped to the window) as (channels, m) float32, DC removed:
        read from the file, so only these are held."""
        a, b = max(a, 0), min(b, self.frames)
        with open(self.path, "rb") as f:
            f.seek(a * self.channels * 4)
            y = np.fromfile(f, "<f4", count=max(b - a, 0) * self.channels)
        return np.ascontiguousarray(y.reshape(-1, self.channels).T) - self.dc[:, None]


FULL_DISK_BYTES = 1 << 20  # free space under which a failed decode to a file is a full disk
DECODE_CHUNK_SECONDS = 10.0  # read, resampled and written at a time when decoding to a file


def decode_to_file(path: str | os.PathLike, folder: str, start: float = 0.0, duration: float | None = None,
                   limits: Limits = Limits()) -> DecodedFile:
    """:func:`load` with ``stereo`` into files in ``folder`` (which the caller removes): the
    window (duration None: the whole track) is decoded by ffmpeg to a float WAV file, then
    resampled (soxr's stream, the same filter as :func:`resample`) DECODE_CHUNK_SECONDS at
    a time into a raw file: memory does not grow with the song, so a window may be as long
    as a track (``limits.max_track_seconds``), not only ``max_window_seconds``, which bounds
    what is held in memory. InputError as :func:`load`."""
    path = os.fspath(path)
    info = _probe_checked(path, limits)
    if duration is None:
        duration = info.duration if math.isfinite(info.duration) else limits.max_track_seconds
    start, duration = check_window(start, duration, info.duration, limits.max_track_seconds)
    wav = os.path.join(folder, "source.wav")
    command = _decode_command(ffmpeg_path(), path, info, start, duration, True)
    proc = run_ffmpeg([*command[:-1], "-y", "file:" + wav], f"decoding {os.path.basename(path)}",
                      duration + SEEK_PREROLL_SECONDS + END_MARGIN_SECONDS)
    if proc.returncode != 0 or not os.path.exists(wav):
        if shutil.disk_usage(folder).free < FULL_DISK_BYTES:  # ffmpeg could not write: not the file's fault
            raise OSError(errno.ENOSPC, f"No space left to decode {os.path.basename(path)}")
        raise InputError("not_audio", "The audio in this file could not be decoded (damaged or unsupported).")
    raw = os.path.join(folder, "samples.f32")
    frames, channels, source_channels, sums = _resample_file(wav, raw, duration)
    os.remove(wav)
    if frames == 0:
        raise InputError("truncated", "No audio could be decoded from the file (truncated or damaged).")
    dc = (sums[0] / frames).astype(np.float32)
    power = float(np.sum(sums[1] / frames - (sums[0] / frames) ** 2)) / channels
    level = 10 * math.log10(power) if power > 0 else -math.inf
    notes = _window_notes(level, start + frames / SAMPLE_RATE, start, duration, info)
    return DecodedFile(path=raw, frames=frames, channels=channels, dc=dc, start=start,
                       duration=frames / SAMPLE_RATE, source=info,
                       source_channels=layout_channels(info.channel_layout) or source_channels, warnings=notes)


def _resample_file(wav: str, raw: str, duration: float) -> tuple[int, int, int, tuple[np.ndarray, np.ndarray]]:
    """ffmpeg's float WAV file ``wav`` (its first ``duration`` s) → the raw interleaved
    float32 file ``raw`` at SAMPLE_RATE, the first two channels kept (ffmpeg has already
    downmixed a layout it knows). Returns (frames, channels, the source's channels,
    (per-channel sums, sums of squares) as float64 (channels,) arrays)."""
    import soxr

    with open(wav, "rb") as f:
        source_channels, rate, offset = _wav_header(f.read(1 << 16))
        f.seek(offset)
        left = round(duration * rate)
        channels = min(source_channels, 2)
        stream = soxr.ResampleStream(rate, SAMPLE_RATE, channels, dtype="float32", quality="HQ") \
            if rate != SAMPLE_RATE else None
        chunk = max(1, int(DECODE_CHUNK_SECONDS * rate))
        frames, sums, squares = 0, np.zeros(channels), np.zeros(channels)
        with open(raw, "wb") as out:
            while True:
                y = np.fromfile(f, "<f4", count=min(chunk, left) * source_channels)
                last = y.size < min(chunk, left) * source_channels or left <= chunk
                y = y[:y.size - y.size % source_channels].reshape(-1, source_channels)[:, :channels]
                left -= len(y)
                # float sources can hold anything (NaN in a damaged one): bound them as integer formats are
                y = np.clip(np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(np.float32)
                if stream is not None:
                    y = stream.resample_chunk(y, last=last)
                sums += y.sum(axis=0, dtype=np.float64)
                squares += np.square(y, dtype=np.float64).sum(axis=0)
                frames += len(y)
                np.ascontiguousarray(y, "<f4").tofile(out)
                if last:
                    break
    return frames, channels, source_channels, (sums, squares)


EXEMPLAR_MIN_SECONDS = 2.0  # less holds too few events for a texture's statistics
EXEMPLAR_MAX_SECONDS = 30.0  # the part of a longer exemplar that is used: its start
EXEMPLAR_MAX_FILE_SECONDS = 5 * 60.0  # longer is a song, not a texture: refused, not cut


def load_exemplar(path: str | os.PathLike, limits: Limits = Limits()) -> Clip:
    """Decode a user's texture exemplar: its first EXEMPLAR_MAX_SECONDS (a longer file is
    cut, with a warning), mono float32 at ``SAMPLE_RATE``. InputError for everything
    :func:`load` refuses, and: "too_short" (under EXEMPLAR_MIN_SECONDS), "too_long" (over
    EXEMPLAR_MAX_FILE_SECONDS), "silent"."""
    path = os.fspath(path)
    info = probe(path)  # once: the checks below and the decode share it
    if info.duration > EXEMPLAR_MAX_FILE_SECONDS:
        raise InputError("too_long", f"The exemplar lasts {info.duration / 60:.1f} min; an exemplar is a texture "
                                     f"of {EXEMPLAR_MIN_SECONDS:g} to {EXEMPLAR_MAX_SECONDS:g} s (files up to "
                                     f"{EXEMPLAR_MAX_FILE_SECONDS / 60:g} min are cut).")
    if info.duration < EXEMPLAR_MIN_SECONDS:
        raise InputError("too_short", f"The exemplar lasts {info.duration:.2f} s; it needs at least "
                                      f"{EXEMPLAR_MIN_SECONDS:g} s of the texture.")
    used = min(info.duration, EXEMPLAR_MAX_SECONDS) if math.isfinite(info.duration) else EXEMPLAR_MAX_SECONDS
    _check_size(path, limits)
    _check_track(info, limits)
    clip = _load_probed(path, info, 0.0, used, EXEMPLAR_MAX_SECONDS)
    if clip.duration < EXEMPLAR_MIN_SECONDS:
        raise InputError("too_short", f"Only {clip.duration:.2f} s of audio could be decoded from the exemplar; it "
                                      f"needs at least {EXEMPLAR_MIN_SECONDS:g} s.")
    if rms_dbfs(clip.samples) < SILENCE_DBFS:
        raise InputError("silent", "The exemplar is silent: there is no texture to take from it.")
    notes = list(clip.warnings)
    if info.duration > EXEMPLAR_MAX_SECONDS:
        notes.append(f"The exemplar lasts {info.duration:.0f} s; its first {EXEMPLAR_MAX_SECONDS:g} s are used.")
    return dataclasses.replace(clip, warnings=tuple(notes))


def _decode(path: str, info: SourceInfo, start: float, duration: float,
            stereo: bool = False) -> tuple[np.ndarray, int, int]:
    """Decode ``duration`` s from ``start`` s of the first audio stream with ffmpeg
    → ((n, channels) float32, rate Hz, channels), at the source's rate and channel count
    (with ``stereo``, more than two channels downmixed to two); samples in [-1, 1].
    Raises InputError("not_audio") if ffmpeg fails."""
    proc = run_ffmpeg(_decode_command(ffmpeg_path(), path, info, start, duration, stereo),
                      f"decoding {os.path.basename(path)}", duration + SEEK_PREROLL_SECONDS + END_MARGIN_SECONDS)
    if proc.returncode != 0:
        raise InputError("not_audio", "The audio in this file could not be decoded (damaged or unsupported).")
    samples, rate = _read_wav_stream(proc.stdout)
    samples = samples[:round(duration * rate)]
    # float sources can hold anything (NaN in a damaged one): bound them as integer formats are
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    if stereo and samples.shape[1] > 2:  # a layout ffmpeg did not know how to downmix: keep the front pair
        samples = np.ascontiguousarray(samples[:, :2])
    return samples, rate, samples.shape[1]


_TWO_OR_FEWER = re.compile(r"^(mono|stereo|[12] channels?)\b")


def _decode_command(ffmpeg: str, path: str, info: SourceInfo, start: float, duration: float,
                    stereo: bool = False) -> list[str]:
    """ffmpeg's command line that writes ``path``'s first audio stream from ``start`` s,
    for ``duration`` s and END_MARGIN_SECONDS more, to stdout as a 32-bit float WAV stream.

    The window starts where the decoded frames' timestamps reach ``start`` (``-ss`` after
    ``-i``: sample-accurate with every ffmpeg version where the timestamps are, that is
    for every codec but those in COUNTED_CODECS). Before that, ffmpeg seeks (``-ss``
    before ``-i``, to whole seconds) SEEK_PREROLL_SECONDS ahead, so that a late window
    costs no more than an early one. A seek alone is not accurate: the first frame after
    it is decoded without its predecessor (an mp3's or AAC's first samples wrong) or, for
    AAC in ffmpeg 9, dropped (the window would start up to 1024 samples late).
    A codec in COUNTED_CODECS is decoded from its start and cut by counting samples.
    With ``stereo``, a source whose layout has more than two channels is downmixed to two.
    """
    # -max_error_rate 1: frames that fail to decode are skipped, never fatal. The default
    # (fail past 2/3 of frames) is counted differently by each version (one damaged mp3
    # fails with 5.1 and 9.0, not with 7.0); load() judges what could be decoded by its length
    head = [ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-max_error_rate", "1"]
    tail = ["-map", "0:a:0", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    if stereo and not _TWO_OR_FEWER.match(info.channel_layout):
        tail = ["-ac", "2", *tail]
    if info.codec in COUNTED_CODECS and info.sample_rate:
        first = round(start * info.sample_rate)
        last = first + round((duration + END_MARGIN_SECONDS) * info.sample_rate)
        return [*head, "-i", "file:" + path, "-af", f"atrim=start_sample={first}:end_sample={last}", *tail]
    seek = max(0, math.floor(start - SEEK_PREROLL_SECONDS))
    before = ["-ss", str(seek)] if seek else []  # none at the start: even "-ss 0" alters AAC's first frame
    return [*head, *before, "-i", "file:" + path,
            "-ss", f"{start - seek:.6f}", "-t", f"{duration + END_MARGIN_SECONDS:.6f}", *tail]


def _read_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """The 32-bit float WAV that ffmpeg writes to a pipe → ((n, channels) float32, rate Hz).

    A pipe cannot be rewound, so the sizes in the header are placeholders: the samples
    run from the data chunk to the end. Channels and rate come from the fmt chunk (plain
    or WAVE_FORMAT_EXTENSIBLE, as ffmpeg versions differ). No bytes (ffmpeg decoded no
    frame, so wrote no header) give (0, 1) samples and rate 0.
    """
    if not data:
        return np.zeros((0, 1), np.float32), 0
    channels, rate, offset = _wav_header(data)
    frames = (len(data) - offset) // (4 * channels)
    samples = np.frombuffer(data, "<f4", count=frames * channels, offset=offset)
    return samples.reshape(frames, channels).astype(np.float32), rate  # a writable copy


def _wav_header(data: bytes) -> tuple[int, int, int]:
    """(channels, rate Hz, offset of the samples) of the 32-bit float WAV whose first
    bytes (through the start of its data chunk) are ``data``. RuntimeError if not one."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise RuntimeError("ffmpeg did not write a WAV stream")
    pos, channels, rate = 12, 0, 0
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if kind == b"fmt ":
            channels = int.from_bytes(data[pos + 10:pos + 12], "little")
            rate = int.from_bytes(data[pos + 12:pos + 16], "little")
            if int.from_bytes(data[pos + 22:pos + 24], "little") != 32 or channels == 0:
                raise RuntimeError("ffmpeg did not write 32-bit float samples")
        elif kind == b"data":
            if channels == 0:
                raise RuntimeError("ffmpeg wrote no WAV format chunk")
            return channels, rate, pos + 8
        pos += 8 + size + (size & 1)  # chunks are padded to even sizes
    raise RuntimeError("ffmpeg's WAV stream has no data chunk")


def resample(y: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality). y: (n,) or (n, channels) float →
    (m,) or (m, channels) float32."""
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
    """Integrated loudness (ITU-R BS.1770-4 / EBU R 128) of y in LUFS, measured by
    ffmpeg's ebur128 filter; -inf if too quiet (below its -70 LUFS gate) or shorter than
    one 400 ms block. y: (n,) mono or (channels, n) float at ``rate`` Hz (the channels'
    powers summed, as BS.1770 does).

    ffmpeg's meter rather than pyloudnorm's: pyloudnorm imports the whole of scipy.signal
    (0.7 s, a third of a cold conversion's start-up) for its two filters. The two agree
    to 0.05 LU on music (tests/test_audio_out.py) and the meter reads the same with
    every ffmpeg version; it costs one ffmpeg run (~0.03 s for 10 s).
    """
    if np.shape(y)[-1] < int(0.4 * rate) + 1:
        return -math.inf
    return _loudness_reading(_ffmpeg_on_pcm(_interleaved(y, "<f4"), "f32le", rate, [*_METER, "-f", "null", "-"],
                                            "measuring loudness", channels(y)))


def loudness_lufs_file(path: str, channel_count: int, rate: int = SAMPLE_RATE) -> float:
    """:func:`loudness_lufs` of a raw file of interleaved float32 samples (``channel_count``
    channels at ``rate`` Hz), read by ffmpeg itself: a whole song is measured without
    holding it in memory."""
    seconds = os.path.getsize(path) / (4 * channel_count * rate)
    if seconds < 0.4:
        return -math.inf
    return _loudness_reading(run_ffmpeg(
        [ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(rate),
         "-ac", str(channel_count), "-i", "file:" + path, *_METER, "-f", "null", "-"], "measuring loudness", seconds))


# the running integrated loudness after each 100 ms, as frame metadata; the last is the whole
_METER = ["-af", "ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file=-"]


def _loudness_reading(proc: subprocess.CompletedProcess) -> float:
    """The integrated loudness in LUFS that ffmpeg's meter (_METER) printed last; -inf
    under the gate. RuntimeError when it printed none."""
    values = _LOUDNESS.findall(proc.stdout)
    if proc.returncode != 0 or not values:
        raise RuntimeError(f"ffmpeg could not measure loudness: {_last_line(proc.stderr, 'no reading')}")
    lufs = float(values[-1])
    return lufs if lufs > _GATE_LUFS else -math.inf


_LOUDNESS = re.compile(rb"^lavfi\.r128\.I=(\S+)", re.M)
_GATE_LUFS = -70.0  # BS.1770's absolute gate: ebur128 reports it for silence


def normalize_loudness(y: np.ndarray, target_lufs: float = TARGET_LUFS, rate: int = SAMPLE_RATE,
                       ceiling_db: float = PEAK_CEILING_DB) -> np.ndarray:
    """Gain to ``target_lufs`` integrated loudness, then :func:`peak_limit` (so no sample
    peaks above ``ceiling_db`` dBFS). Silence is returned as is.
    y: (n,) or (channels, n) float. Returns the same shape, float32."""
    y = np.asarray(y, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return y * np.float32(level_gain(loudness_lufs(y, rate), peak, target_lufs, ceiling_db))


def level_gain(lufs: float | None, peak: float, target_lufs: float = TARGET_LUFS,
               ceiling_db: float = PEAK_CEILING_DB) -> float:
    """The one gain that :func:`normalize_loudness` (``lufs`` the measured loudness) or
    :func:`peak_limit` (``lufs`` None) applies to audio whose largest absolute sample is
    ``peak``: to ``target_lufs`` (none for silence, -inf), then down only as far as keeps
    the peak at ``ceiling_db`` dBFS. A whole song is measured first and scaled as it is
    encoded, with this same gain."""
    gain = 10 ** ((target_lufs - lufs) / 20) if lufs is not None and math.isfinite(lufs) else 1.0
    ceiling = 10 ** (ceiling_db / 20)
    scaled = float(np.float32(peak) * np.float32(gain))
    return gain * ceiling / scaled if scaled > ceiling else gain


def peak_limit(y: np.ndarray, ceiling_db: float = PEAK_CEILING_DB) -> np.ndarray:
    """Scale down only if a sample would clip past ``ceiling_db`` dBFS. (n,) or (channels,
    n) → the same shape, float32."""
    y = np.asarray(y, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    gain = level_gain(None, peak, ceiling_db=ceiling_db)
    return y * np.float32(gain) if gain != 1.0 else y


def channels(y: np.ndarray) -> int:
    """The channel count of samples laid out as (n,) (mono: 1) or (channels, n)."""
    return 1 if np.ndim(y) == 1 else int(np.shape(y)[0])


def _interleaved(y: np.ndarray, dtype: str) -> bytes:
    """(n,) or (channels, n) samples as interleaved raw PCM bytes of ``dtype``."""
    return np.ascontiguousarray(np.asarray(y).T, dtype=dtype).tobytes()


def output_format(path: str | os.PathLike) -> str:
    """Output format from a file name's extension; InputError if not one we write."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    ext = {"oga": "ogg"}.get(ext, ext)
    if ext not in OUTPUT_FORMATS:
        raise InputError("bad_format", f"Cannot write .{ext or '?'} files: use one of "
                                       f"{', '.join('.' + f for f in OUTPUT_FORMATS)}.")
    return ext


def encode(y: np.ndarray, fmt: str, rate: int = SAMPLE_RATE) -> bytes:
    """Encode audio. y: (n,) mono or (channels, n) float in [-1, 1], the channels kept;
    fmt: wav (16-bit PCM), flac, mp3 (192 kbit/s) or ogg (Vorbis q6); rate in Hz.
    Returns the file's bytes."""
    _check_format(fmt)
    with tempfile.TemporaryDirectory(prefix="musicoder-") as folder:
        # a file, not a pipe: flac's and mp3's muxers go back to write the length in the header
        out = os.path.join(folder, f"out.{fmt}")
        proc = _ffmpeg_on_pcm(_interleaved(to_pcm16(y), "<i2"), "s16le", rate, _encoder_output(fmt, out),
                              f"encoding {fmt}", channels(y))
        return _encoded(proc, fmt, out)


def encode_file(pcm_path: str, channel_count: int, fmt: str, out: str, rate: int = SAMPLE_RATE) -> None:
    """Encode a raw file of interleaved 16-bit PCM (:func:`to_pcm16`'s samples,
    ``channel_count`` channels at ``rate`` Hz) to the file ``out`` as ``fmt``: a whole song
    is encoded without holding it in memory. RuntimeError when ffmpeg fails."""
    _check_format(fmt)
    seconds = os.path.getsize(pcm_path) / (2 * channel_count * rate)
    proc = run_ffmpeg([ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-f", "s16le", "-ar", str(rate),
                       "-ac", str(channel_count), "-i", "file:" + pcm_path, *_encoder_output(fmt, out)],
                      f"encoding {fmt}", seconds)
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"ffmpeg could not encode {fmt}: {_last_line(proc.stderr, 'no output')}")


def to_pcm16(y: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] (clipped past it) → 16-bit integers, same shape."""
    return (np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")


def _check_format(fmt: str) -> None:
    if fmt not in OUTPUT_FORMATS:
        raise InputError("bad_format", f"Unknown output format {fmt!r}: use one of {', '.join(OUTPUT_FORMATS)}.")


def _encoder_output(fmt: str, out: str) -> list[str]:
    """ffmpeg's output options writing ``fmt`` to the file ``out``."""
    return [*ENCODER_OPTIONS[fmt], "-fflags", "+bitexact", "-f", fmt, "-y", "file:" + out]


def _encoded(proc: subprocess.CompletedProcess, fmt: str, out: str) -> bytes:
    """The bytes of the file ``out`` that the ffmpeg run ``proc`` encoded as ``fmt``."""
    if proc.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"ffmpeg could not encode {fmt}: {_last_line(proc.stderr, 'no output')}")
    with open(out, "rb") as f:
        return f.read()


def _ffmpeg_on_pcm(pcm: bytes, sample_format: str, rate: int, output: list[str],
                   what: str, channel_count: int = 1) -> subprocess.CompletedProcess:
    """Run ffmpeg on interleaved raw PCM of ``channel_count`` channels given on stdin
    (``sample_format``: s16le or f32le, at ``rate`` Hz), with ``output``: its output
    options and target; ``what`` it does, for a timeout's message. Output captured; its
    time limit grows with the PCM's seconds."""
    seconds = len(pcm) / (rate * channel_count * (2 if sample_format == "s16le" else 4))
    return run_ffmpeg([ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-f", sample_format,
                       "-ar", str(rate), "-ac", str(channel_count), "-i", "pipe:0", *output], what, seconds,
                      stdin=pcm)


def _last_line(stderr: bytes, default: str) -> str:
    """ffmpeg's last line on stderr (its error), or ``default`` when it printed none."""
    return (stderr.decode(errors="replace").strip().splitlines() or [default])[-1]


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` whole or not at all (see :func:`placed`). OSError names ``path``."""
    with placed(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def copy_file(source: str, path: str | os.PathLike) -> None:
    """Copy the file ``source`` to ``path`` whole or not at all (see :func:`placed`).
    OSError names ``path``."""
    with placed(path) as tmp, open(source, "rb") as f, open(tmp, "wb") as out:
        shutil.copyfileobj(f, out, 1 << 20)


@contextlib.contextmanager
def placed(path: str | os.PathLike):
    """Yield a new, empty temporary file's name beside ``path``; when the block ends without
    an error, that file is renamed over ``path`` (replacing a file there): written whole
    or not at all. A full disk, an error or Ctrl-C mid-way removes the temporary file and
    leaves ``path`` as it was. OSError names ``path``."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}-{os.urandom(4).hex()}.part")
    try:
        # O_EXCL: never through a link or over another's file; 0o666 less the umask, as open() gives
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, path) from None
        raise


def save(y: np.ndarray, path: str | os.PathLike, rate: int = SAMPLE_RATE) -> str:
    """Write (n,) mono or (channels, n) audio to ``path`` in the format its extension
    names, the channels kept. Returns the format."""
    fmt = output_format(path)
    write_file(path, encode(y, fmt, rate))
    return fmt


def decode_bytes(data: bytes, limits: Limits = Limits(), *, stereo: bool = False) -> np.ndarray:
    """A whole audio file given as bytes → float32 at ``SAMPLE_RATE``: (n,) mono, or with
    ``stereo`` (channels, n) as :func:`load` gives."""
    with tempfile.TemporaryDirectory(prefix="musicoder-") as folder:
        path = os.path.join(folder, "audio")
        with open(path, "wb") as f:
            f.write(data)
        return load(path, duration=None, limits=limits, stereo=stereo).samples
