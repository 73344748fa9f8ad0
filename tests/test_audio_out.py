"""Output: encoding by extension, loudness, the clipping guard, peaks, spectrogram PNG."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from musicoder import audio, render
from musicoder.errors import InputError

from .conftest import peak_frequency, tone


@pytest.mark.parametrize("fmt", audio.OUTPUT_FORMATS)
def test_save_writes_the_format_its_extension_names(fmt, tmp_path):
    y = tone(440.0, 2.0, audio.SAMPLE_RATE)[:, 0]
    path = tmp_path / f"out.{fmt}"
    assert audio.save(y, path) == fmt
    back = audio.load(path)
    assert back.source.sample_rate == 44100
    assert abs(back.duration - 2.0) < 0.06
    assert abs(peak_frequency(back.samples) - 440.0) < 2
    assert not list(tmp_path.glob("*.part"))
    expected_codec = {"wav": "pcm_s16le", "flac": "flac", "mp3": "mp3", "ogg": "vorbis"}[fmt]
    assert back.source.codec == expected_codec


def test_unknown_output_extension_is_refused(tmp_path):
    with pytest.raises(InputError) as err:
        audio.save(np.zeros(100, np.float32), tmp_path / "out.xyz")
    assert err.value.code == "bad_format"


def test_wav_output_is_16_bit_pcm(tmp_path):
    path = tmp_path / "out.wav"
    audio.save(tone(440.0, 1.0, 44100)[:, 0], path)
    info = soundfile.info(path)
    assert info.subtype == "PCM_16" and info.samplerate == 44100 and info.channels == 1


def test_loudness_normalisation_reaches_the_target(demo_samples):
    quiet = demo_samples * 0.05
    out = audio.normalize_loudness(quiet)
    assert abs(audio.loudness_lufs(out) - audio.TARGET_LUFS) < 0.5


@pytest.mark.parametrize("gain,rate", [(1.0, 44100), (0.01, 44100), (0.3, 22050)])
def test_loudness_agrees_with_pyloudnorm(demo_samples, gain, rate):
    # ffmpeg's ebur128 meter against an independent BS.1770-4 implementation, on music
    import pyloudnorm
    import soxr

    y = soxr.resample(demo_samples * gain, 44100, rate).astype(np.float32) if rate != 44100 else demo_samples * gain
    theirs = pyloudnorm.Meter(rate).integrated_loudness(y.astype(np.float64))
    assert abs(audio.loudness_lufs(y, rate) - theirs) < 0.1


def test_loudness_of_silence_and_of_too_short_a_clip_is_minus_infinity():
    assert audio.loudness_lufs(np.zeros(44100 * 2, np.float32)) == -np.inf
    assert audio.loudness_lufs(np.full(1000, 0.5, np.float32)) == -np.inf


def test_clipping_guard_holds_the_peak(demo_samples):
    out = audio.normalize_loudness(demo_samples, target_lufs=-3.0)
    assert np.max(np.abs(out)) <= 10 ** (audio.PEAK_CEILING_DB / 20) + 1e-6


def test_normalising_silence_leaves_it_silent():
    assert np.all(audio.normalize_loudness(np.zeros(44100, np.float32)) == 0)


def test_waveform_peaks_bound_each_column():
    y = np.sin(np.linspace(0, 20 * np.pi, 10000)).astype(np.float32)
    peaks = render.waveform_peaks(y, 50)
    assert peaks.shape == (2, 50)
    assert np.all(peaks[0] <= peaks[1])
    for c in range(50):
        part = y[c * 200:(c + 1) * 200]
        assert peaks[0, c] == part.min() and peaks[1, c] == part.max()


def test_waveform_peaks_of_a_short_signal():
    peaks = render.waveform_peaks(np.array([0.5, -0.25], np.float32), 4)
    assert peaks.shape == (2, 4) and peaks.max() == 0.5 and peaks.min() == -0.25


def test_spectrogram_png_is_a_valid_image(demo_samples):
    from matplotlib.image import imread

    png = render.spectrogram_png(demo_samples, "demo")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (400, 1000)
    assert image[..., :3].std() > 0.05  # something is drawn


def test_spectrogram_png_keeps_nothing_of_the_previous_picture(demo_samples):
    # each picture is drawn over a background kept from the first: a title or an image
    # left behind by an earlier call would show through
    first = render.spectrogram_png(demo_samples, "")
    render.spectrogram_png(demo_samples[::-1] * 0.1, "a long title " * 6)
    assert render.spectrogram_png(demo_samples, "") == first
    titled = render.spectrogram_png(demo_samples, "demo")
    assert titled != first
