"""Decoding: every input format, mono and rate conversion, windows, and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile

from musicoder import audio
from musicoder.errors import InputError

from .conftest import ffmpeg, peak_frequency, tone

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
