"""Training data: log-magnitude spectrograms of music, cached as .npy, cut into clips.

Each audio file contributes up to ``SEGMENTS`` windows of ``SEGMENT_S`` seconds (spread
over the track), decoded with :func:`musicoder.audio.load` (mono, 44.1 kHz) and stored
frame-major, (frames, N_BINS) float16 natural-log magnitudes, in a cache directory
outside the repository, so later runs start in seconds.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from musicoder import audio, spectral

AUDIO_EXTENSIONS = {".ogg", ".opus", ".flac", ".wav", ".mp3", ".m4a", ".aac", ".oga"}
SEGMENTS = 2
SEGMENT_S = 30.0
QUIET_NATS = -9.0  # mean log-magnitude of a near-silent clip (music is about -5)
DEFAULT_CACHE = Path(os.environ.get("MUSICODER_CACHE", Path.home() / ".cache" / "musicoder" / "logspec"))


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Sorted audio files directly in ``folder``."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)


def split_dirs(data: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(train files, val files) of DATA: its train/ and val/ subfolders, or all files of
    DATA for training and none for validation."""
    data = Path(data)
    if (data / "train").is_dir():
        val = audio_files(data / "val") if (data / "val").is_dir() else []
        return audio_files(data / "train"), val
    return audio_files(data), []


def log_spectrogram(samples: np.ndarray) -> np.ndarray:
    """(n,) float samples at 44.1 kHz → (frames, N_BINS) float32 log-magnitude (nats)."""
    return spectral.to_log(spectral.magnitude(samples)).T.copy()


def cached_segments(path: Path, cache: Path = DEFAULT_CACHE) -> list[np.ndarray]:
    """The track's segments as (frames, N_BINS) float16 arrays, decoded once and cached."""
    key = hashlib.sha1(f"{path.resolve()}|{path.stat().st_size}|{SEGMENTS}|{SEGMENT_S}|"
                       f"{spectral.N_FFT}|{spectral.HOP}".encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    files = [cache / f"{path.stem}-{key}-{i}.npy" for i in range(SEGMENTS)]
    if all(f.exists() for f in files):
        return [np.load(f, mmap_mode="r") for f in files]
    duration = audio.probe(path).duration
    out = []
    for i, f in enumerate(files):
        start = max(0.0, (i + 0.5) * duration / SEGMENTS - SEGMENT_S / 2)
        length = min(SEGMENT_S, duration - start)
        spec = log_spectrogram(audio.load(path, start=start, duration=length).samples).astype(np.float16)
        np.save(f, spec)
        out.append(spec)
    return out


class ClipSampler:
    """Random clips of ``frames`` frames from cached segments, seeded.

    batch(n) → (n, frames, N_BINS) float32 log-magnitudes; near-silent clips (mean
    log-magnitude below ``QUIET_NATS``) are redrawn.
    """

    def __init__(self, files: list[Path], frames: int, seed: int, cache: Path = DEFAULT_CACHE,
                 progress=None):
        self.frames = frames
        self.rng = np.random.default_rng(seed)
        it = progress(files) if progress else files
        self.segments = [s for f in it for s in cached_segments(f, cache) if s.shape[0] > frames]
        if not self.segments:
            raise ValueError("no audio segment longer than one training clip")

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, self.frames, spectral.N_BINS), np.float32)
        i = 0
        while i < n:
            s = self.segments[self.rng.integers(len(self.segments))]
            t = self.rng.integers(s.shape[0] - self.frames)
            clip = np.asarray(s[t:t + self.frames], np.float32)
            if clip.mean() < QUIET_NATS:
                continue
            out[i] = clip
            i += 1
        return out
