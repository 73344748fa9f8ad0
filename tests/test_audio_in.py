"""Decoding: every input format, mono and rate conversion, windows, and bad input; the
same samples and errors from the system's ffmpeg and the wheel's; MUSICODER_FFMPEG."""
from __future__ import annotations

import dataclasses
import math
import os
import shutil
import struct
import sys

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile

from musicoder import audio
from musicoder.errors import InputError

from .conftest import DEMO_CLIP, ffmpeg, peak_frequency, tone

FORMATS = {  # name: (file suffix, ffmpeg encoder options)
    "wav_s16": (".wav", ["-c:a", "pcm_s16le"]),
    "wav_s24": (".wav", ["-c:a", "pcm_s24le"]),
    "wav_s32": (".wav", ["-c:a", "pcm_s32le"]),
    "wav_u8": (".wav", ["-c:a", "pcm_u8"]),
    "wav_f32": (".wav", ["-c:a", "pcm_f32le"]),
    "wav_f64": (".wav", ["-c:a", "pcm_f64le"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame"]),
    "m4a_aac": (".m4a", ["-c:a", "aac"]),
    "mp4_aac": (".mp4", ["-c:a", "aac"]),
    "flac": (".flac", ["-c:a", "flac"]),
    "ogg_vorbis": (".ogg", ["-c:a", "libvorbis"]),
    "opus": (".opus", ["-c:a", "libopus"]),
}


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_decodes_to_mono_at_engine_rate(name, source_wav, tmp_path):
    suffix, options = FORMATS[name]
    path = tmp_path / f"{name}{suffix}"
    ffmpeg("-i", str(source_wav), *options, str(path))
    clip = audio.load(path)
    assert clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert clip.channels == 2
    assert abs(clip.duration - 3.0) < 0.05
    assert abs(len(clip.samples) - clip.duration * audio.SAMPLE_RATE) <= 1
    assert abs(peak_frequency(clip.samples) - 440.0) < 2.0  # right rate: pitch kept
    level = audio.rms_dbfs(clip.samples)
    assert abs(level - 20 * math.log10(0.5 / math.sqrt(2))) < 1.0  # not attenuated or doubled


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_rate_conversion_keeps_pitch_and_duration(rate, tmp_path):
    # The original forced 44.1 kHz on everything: a 48 kHz song played 9 % slow.
    path = tmp_path / f"tone_{rate}.wav"
    soundfile.write(path, tone(1000.0, 2.0, rate), rate)
    clip = audio.load(path)
    assert clip.source.sample_rate == rate
    assert abs(clip.duration - 2.0) < 1e-3
    assert abs(peak_frequency(clip.samples) - 1000.0) < 1.0


def test_eight_channels_96k_float_becomes_mono(tmp_path):
    t = np.arange(96000 * 2) / 96000
    channels = np.stack([0.1 * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(8)], axis=1)
    path = tmp_path / "eight.wav"
    soundfile.write(path, channels.astype(np.float32), 96000, subtype="FLOAT")
    clip = audio.load(path)
    assert clip.channels == 8 and clip.source.sample_rate == 96000
    spectrum = np.abs(np.fft.rfft(clip.samples))
    freqs = np.fft.rfftfreq(len(clip.samples), 1 / audio.SAMPLE_RATE)
    for c in range(8):  # every channel is in the mix, at 1/8 of its amplitude
        f = 300 + 100 * c
        assert spectrum[np.argmin(abs(freqs - f))] > 0.5 * spectrum.max()


def test_window_cuts_the_right_part(tmp_path):
    rate = 44100
    y = np.concatenate([tone(220, 2.0, rate), tone(880, 2.0, rate)])[:, 0]
    path = tmp_path / "two_tones.wav"
    soundfile.write(path, y, rate)
    clip = audio.load(path, start=2.25, duration=1.5)
    assert clip.start == 2.25 and abs(clip.duration - 1.5) < 1e-3
    assert abs(peak_frequency(clip.samples) - 880) < 2


def test_window_is_shortened_at_the_end_of_the_track(source_wav):
    clip = audio.load(source_wav, start=1.5, duration=10)
    assert abs(clip.duration - 1.5) < 0.01


@pytest.mark.parametrize("start,duration,match", [
    (-1.0, 10.0, "before 0"),
    (float("nan"), 10.0, "finite"),
    (0.0, float("nan"), "finite"),
    (float("inf"), 10.0, "finite"),
    (3.5, 10.0, "past the end"),
    (2.5, 10.0, "Less than 1 s"),
    (0.0, 0.2, "at least 1 s"),
    (0.0, 61.0, "at most 60 s"),
])
def test_bad_windows_are_refused(start, duration, match, source_wav):
    with pytest.raises(InputError, match=match) as err:
        audio.load(source_wav, start=start, duration=duration)
    assert err.value.code == "bad_window"


def test_the_window_limit_is_configurable(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, np.zeros(44100 * 80, dtype=np.float32), 44100)
    clip = audio.load(path, duration=75, limits=audio.Limits(max_window_seconds=90))
    assert abs(clip.duration - 75) < 0.01


def _bad_file(kind: str, tmp_path, source_wav):
    if kind == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
    elif kind == "not_audio":
        path = tmp_path / "noise.mp3"
        path.write_bytes(np.random.default_rng(0).bytes(20000))
    elif kind == "text_as_mp4":
        path = tmp_path / "letter.mp4"
        path.write_text("Dear user, this is not a song.\n" * 50)
    elif kind == "truncated":
        full = tmp_path / "full.mp4"
        ffmpeg("-i", str(source_wav), "-c:a", "aac", str(full))
        path = tmp_path / "truncated.mp4"
        path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif kind == "no_audio_stream":
        path = tmp_path / "video_only.mp4"
        ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=10", "-c:v", "mpeg4", str(path))
    return path


@pytest.mark.parametrize("kind,code", [
    ("empty", "empty"),
    ("not_audio", "not_audio"),
    ("text_as_mp4", "not_audio"),
    ("truncated", "truncated"),
    ("no_audio_stream", "no_audio_stream"),
])
def test_bad_files_get_one_clear_error(kind, code, tmp_path, source_wav):
    path = _bad_file(kind, tmp_path, source_wav)
    with pytest.raises(InputError) as err:
        audio.load(path)
    assert err.value.code == code
    message = str(err.value)
    assert "\n" not in message and "ffmpeg" not in message.lower() and len(message) < 200


def test_too_long_is_refused_before_decoding(source_wav):
    with pytest.raises(InputError) as err:
        audio.load(source_wav, limits=audio.Limits(max_track_seconds=2.0))
    assert err.value.code == "too_long"


def test_too_large_is_refused(source_wav):
    with pytest.raises(InputError) as err:
        audio.load(source_wav, limits=audio.Limits(max_bytes=1000))
    assert err.value.code == "too_large"


def test_silence_is_allowed_with_a_warning(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(44100 * 2, dtype=np.float32), 44100)
    clip = audio.load(path)
    assert np.all(clip.samples == 0)
    assert any("silent" in w for w in clip.warnings)


def _float_wav(y: np.ndarray, rate: int, bits: int, extensible: bool) -> bytes:
    """A float WAV file's bytes: y (n, channels); a plain (format 3) or a
    WAVE_FORMAT_EXTENSIBLE header (ffmpeg 5.1 writes the latter, 7 and later the former)."""
    channels = y.shape[1]
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, channels, rate, rate * block, block, bits)
    if extensible:  # valid bits, channel mask, the IEEE float sub-format GUID
        fmt += struct.pack("<HHI", 22, bits, 0) + bytes.fromhex("0300000000001000800000aa00389b71")
    data = y.astype(f"<f{bits // 8}").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
def test_float_wav_decodes_at_its_level_whatever_its_header(bits, extensible, tmp_path):
    # pydub read an extensible float WAV's samples as integers (+3 dB, or KeyError: 64)
    path = tmp_path / "float.wav"
    path.write_bytes(_float_wav(tone(440.0, 2.0, 44100, channels=2), 44100, bits, extensible))
    clip = audio.load(path)
    assert clip.channels == 2 and abs(clip.duration - 2.0) < 1e-3
    assert abs(audio.rms_dbfs(clip.samples) - 20 * math.log10(0.5 / math.sqrt(2))) < 0.01


def test_damaged_float_samples_are_bounded(tmp_path):
    y = tone(440.0, 2.0, 44100)
    y[1000:1100] = np.nan
    y[2000:2100] = np.inf
    y[3000:3100] = 1e30
    path = tmp_path / "damaged.wav"
    path.write_bytes(_float_wav(y, 44100, 32, extensible=False))
    samples = audio.load(path).samples
    assert np.all(np.isfinite(samples)) and np.max(np.abs(samples)) <= 2.0  # [-1, 1] less the DC removed


# ---- the same samples from every ffmpeg ----------------------------------------------------

LOSSLESS = {"wav": ["-c:a", "pcm_s16le"], "flac": ["-c:a", "flac"]}
LOSSY = {"mp3": ["-c:a", "libmp3lame"], "ogg": ["-c:a", "libvorbis"], "opus": ["-c:a", "libopus"],
         # no noise substitution: its noise is seeded by how many frames the decoder has
         # seen, so a window of it cannot equal that part of the whole track
         "m4a": ["-c:a", "aac", "-aac_pns", "0"]}
WINDOWS = [(0.0, 2.0), (0.37, 2.0), (2.3, 3.0)]  # from the start; before the seek; after a seek


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> dict:
    """6 s of stereo music-like sound (a chirp over noise: no period, so any misplaced
    window start shows) at 44.1 kHz, in every format: {format: path}."""
    folder = tmp_path_factory.mktemp("encoded")
    rate, rng = 44100, np.random.default_rng(7)
    t = np.arange(6 * rate) / rate
    noise = np.convolve(rng.standard_normal(len(t)), np.ones(8) / 8, "same")
    y = 0.2 * np.sin(2 * np.pi * (150 * t + 40 * t * t)) + 0.3 * noise * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    source = folder / "source.wav"
    soundfile.write(source, np.stack([y, 0.7 * y], axis=1).astype(np.float32), rate, subtype="FLOAT")
    paths = {}
    for fmt, options in (LOSSLESS | LOSSY).items():
        paths[fmt] = folder / f"music.{fmt}"
        ffmpeg("-i", str(source), *options, str(paths[fmt]))
    return paths


def _lag(a: np.ndarray, b: np.ndarray, most: int = 50) -> int:
    """The shift (samples) of b against a, within ±most, that correlates best."""
    n = min(len(a), len(b)) - 2 * most
    return max(range(-most, most + 1), key=lambda k: float(np.dot(a[most:most + n], b[most + k:most + k + n])))


def _agree(a: np.ndarray, b: np.ndarray, lossless: bool) -> None:
    """Two decodings of one window are the same samples: equal to 1e-4 for lossless
    formats; for lossy ones, aligned within 2 samples, correlated > 0.999, level within 0.1 dB."""
    assert abs(len(a) - len(b)) <= 2
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if lossless:
        assert np.max(np.abs(a - b)) < 1e-4
        return
    assert abs(_lag(a, b)) <= 2
    assert np.corrcoef(a, b)[0, 1] > 0.999
    assert abs(audio.rms_dbfs(a) - audio.rms_dbfs(b)) < 0.1


@pytest.mark.parametrize("start,duration", WINDOWS)
@pytest.mark.parametrize("fmt", LOSSLESS | LOSSY)
def test_a_window_is_that_part_of_the_whole_track(fmt, start, duration, encoded):
    """Seeking is sample-accurate: a window is the same samples as that span of the
    whole track decoded from its start."""
    whole = audio.load(encoded[fmt], duration=None).samples
    window = audio.load(encoded[fmt], start=start, duration=duration).samples
    first = round(start * audio.SAMPLE_RATE)
    edge = 0 if fmt != "opus" else 200  # opus decodes at 48 kHz: resampling a part differs at its edges
    assert len(window) == round(duration * audio.SAMPLE_RATE)
    part = whole[first:first + len(window)]
    part, window = part - part.mean(), window - window.mean()  # each had its own DC removed
    _agree(part[edge:len(part) - edge], window[edge:len(window) - edge], fmt in LOSSLESS)


@pytest.mark.parametrize("start", [0.5, 5.413, 9.738])
def test_a_window_of_real_vorbis_is_that_part_of_the_whole_track(start):
    """The demo's Vorbis changes block size on transients, where ffmpeg's timestamps are
    off by up to half a block: cut by timestamps, these windows started 251 and -445
    samples away (and ffmpeg's -t ended them up to 448 samples short)."""
    whole = audio.load(DEMO_CLIP, duration=None).samples
    window = audio.load(DEMO_CLIP, start=start, duration=3.0).samples
    assert len(window) == 3 * audio.SAMPLE_RATE
    part = whole[round(start * audio.SAMPLE_RATE):][:len(window)]
    assert np.max(np.abs((part - part.mean()) - (window - window.mean()))) < 1e-4


def _both_ffmpegs() -> tuple[str, str]:
    """The system's ffmpeg and imageio-ffmpeg's; the test skips unless both exist and differ."""
    system = shutil.which("ffmpeg")
    try:
        wheel = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        wheel = None
    if not system or not wheel or os.path.realpath(system) == os.path.realpath(wheel):
        pytest.skip("needs both a system ffmpeg and imageio-ffmpeg's")
    return system, wheel


@pytest.mark.parametrize("fmt", LOSSLESS | LOSSY)
def test_the_system_and_the_wheel_ffmpeg_decode_the_same_samples(fmt, encoded, monkeypatch):
    ffmpegs = _both_ffmpegs()
    clips = {}
    for binary in ffmpegs:
        monkeypatch.setenv(audio.FFMPEG_ENV, binary)
        clips[binary] = [audio.load(encoded[fmt], start=start, duration=duration) for start, duration in WINDOWS]
    for ours, theirs in zip(*clips.values()):
        assert (ours.start, ours.channels) == (theirs.start, theirs.channels)
        assert dataclasses.replace(ours.source, duration=0) == dataclasses.replace(theirs.source, duration=0)
        # ffmpeg 5.1 gives an mp3's duration with its encoder padding (6.03 s, not 6.00)
        assert abs(ours.source.duration - theirs.source.duration) < 0.05
        _agree(ours.samples, theirs.samples, fmt in LOSSLESS)


@pytest.mark.parametrize("kind", ["empty", "not_audio", "text_as_mp4", "truncated", "no_audio_stream"])
def test_the_system_and_the_wheel_ffmpeg_give_the_same_error(kind, tmp_path, source_wav, monkeypatch):
    ffmpegs = _both_ffmpegs()
    path = _bad_file(kind, tmp_path, source_wav)
    errors = []
    for binary in ffmpegs:
        monkeypatch.setenv(audio.FFMPEG_ENV, binary)
        with pytest.raises(InputError) as err:
            audio.load(path)
        errors.append((err.value.code, err.value.message))
    assert errors[0] == errors[1]


# ---- MUSICODER_FFMPEG ----------------------------------------------------------------------

def test_musicoder_ffmpeg_names_the_binary(source_wav, tmp_path, monkeypatch):
    if os.name != "posix":
        pytest.skip("the stand-in ffmpeg is a shell script")
    real = audio.ffmpeg_path()
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "bin" / "my-ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    for choice in (str(wrapper), "my-ffmpeg"):  # a path, or a command on PATH
        monkeypatch.setenv(audio.FFMPEG_ENV, choice)
        assert audio.ffmpeg_path() == str(wrapper)
        log.unlink(missing_ok=True)
        assert abs(audio.load(source_wav).duration - 3.0) < 0.01
        assert len(log.read_text().splitlines()) == 2  # the probe and the decoding
    monkeypatch.delenv(audio.FFMPEG_ENV)  # unset: the wheel's (which falls back to the system's)
    assert audio.ffmpeg_path() == imageio_ffmpeg.get_ffmpeg_exe()


@pytest.mark.parametrize("choice,match", [("/no/such/ffmpeg", "no such program"),
                                          ("no-such-ffmpeg-command", "no such program"),
                                          (sys.executable, "is not ffmpeg")])
def test_a_wrong_musicoder_ffmpeg_is_a_clear_error(choice, match, source_wav, monkeypatch):
    monkeypatch.setenv(audio.FFMPEG_ENV, choice)
    with pytest.raises(audio.NoFfmpeg, match=match) as err:
        audio.load(source_wav)
    assert audio.FFMPEG_ENV in str(err.value) and "\n" not in str(err.value)
