"""Shared fixtures: audio files made with ffmpeg from synthesised signals, and the demo clip."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from musicoder import audio

REPO = Path(__file__).resolve().parent.parent
DEMO_CLIP = REPO / "examples" / "demo.ogg"


def ffmpeg(*args: str) -> None:
    """Run the project's ffmpeg quietly; fail the test if it fails."""
    subprocess.run([audio.ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def tone(freq: float, seconds: float, rate: int, channels: int = 1, level: float = 0.5) -> np.ndarray:
    """A sine at ``freq`` Hz: (n, channels) float32."""
    t = np.arange(int(seconds * rate)) / rate
    y = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(y[:, None], channels, axis=1)


def peak_frequency(y: np.ndarray, rate: int = audio.SAMPLE_RATE) -> float:
    """Frequency (Hz) of the strongest bin of a windowed spectrum of y."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * rate / len(y))


@pytest.fixture(scope="session")
def source_wav(tmp_path_factory) -> Path:
    """3 s of a 440 Hz tone, stereo, 48 kHz, 32-bit float WAV: the master for every format."""
    path = tmp_path_factory.mktemp("src") / "tone48k.wav"
    soundfile.write(path, tone(440.0, 3.0, 48000, channels=2), 48000, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def demo_samples() -> np.ndarray:
    """4 s of the bundled demo clip (real music), mono at the engine's rate."""
    return audio.load(DEMO_CLIP, start=2.0, duration=4.0).samples


@pytest.fixture()
def workdir(tmp_path) -> Path:
    os.makedirs(tmp_path, exist_ok=True)
    return tmp_path
