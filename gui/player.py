"""Playback of a mono or stereo clip through simpleaudio, with pause, seek and a playhead.

simpleaudio plays a buffer from its start and can only stop; pause and seek are a
stop and a new play from the remembered position. Plain Python, no GUI: the window
polls :attr:`Player.position` to draw the playhead.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


class PlaybackUnavailable(Exception):
    """No audio device (or no simpleaudio): the message says so in one sentence."""


def _simpleaudio_play(pcm: bytes, rate: int, channels: int = 1):
    """Start playing 16-bit PCM (channels interleaved); returns an object with .stop()
    and .is_playing()."""
    try:
        import simpleaudio
    except ImportError as exc:
        raise PlaybackUnavailable("Playback needs the simpleaudio package (pip install 'musicoder[gui]').") from exc
    try:
        return simpleaudio.play_buffer(pcm, channels, 2, rate)
    except Exception as exc:  # simpleaudio.SimpleaudioError when ALSA has no device
        raise PlaybackUnavailable(f"No audio device to play on ({exc}).") from exc


class Player:
    """One clip's transport: play, pause, stop, seek; ``position`` in seconds.

    samples: (n,) or (channels, n) float in [-1, 1] at ``rate`` Hz. ``play_fn(pcm_bytes,
    rate, channels)`` starts playback (simpleaudio by default); ``clock`` gives seconds
    (time.monotonic).
    """

    def __init__(self, play_fn: Callable = _simpleaudio_play, clock: Callable[[], float] = time.monotonic):
        self._play_fn = play_fn
        self._clock = clock
        self._pcm = b""
        self._rate = 44100
        self._channels = 1
        self._handle = None
        self._offset = 0.0  # position (s) when playback last started or paused
        self._started_at = 0.0

    def load(self, samples: np.ndarray, rate: int) -> None:
        """Replace the clip (stops playback, position back to 0)."""
        self.stop()
        y = np.asarray(samples, dtype=np.float32)
        pcm = (np.clip(y, -1, 1) * 32767).astype("<i2")
        self._channels = 1 if y.ndim == 1 else y.shape[0]
        self._pcm, self._rate = (pcm if y.ndim == 1 else pcm.T).tobytes(), rate  # frames of interleaved channels

    @property
    def duration(self) -> float:
        return len(self._pcm) / 2 / self._channels / self._rate

    @property
    def loaded(self) -> bool:
        return bool(self._pcm)

    @property
    def playing(self) -> bool:
        if self._handle is None:
            return False
        if self._elapsed_position() >= self.duration or not self._handle.is_playing():
            self._offset, self._handle = 0.0, None  # reached the end: back to the start
            return False
        return True

    def _elapsed_position(self) -> float:
        return self._offset + (self._clock() - self._started_at)

    @property
    def position(self) -> float:
        """Seconds from the start of the clip."""
        return min(self._elapsed_position(), self.duration) if self.playing else self._offset

    def play(self) -> None:
        """Play from the current position. Raises PlaybackUnavailable without a device."""
        if not self._pcm or self.playing:
            return
        start_byte = int(self._offset * self._rate) * 2 * self._channels
        self._handle = self._play_fn(self._pcm[start_byte:], self._rate, self._channels)
        self._started_at = self._clock()

    def pause(self) -> None:
        if self.playing:
            self._offset = self.position
            self._handle.stop()
        self._handle = None

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.stop()
        self._handle, self._offset = None, 0.0

    def seek(self, seconds: float) -> None:
        """Move the playhead; playback goes on from there if it was playing."""
        was_playing = self.playing
        self.pause()
        self._offset = float(min(max(seconds, 0.0), self.duration))
        if was_playing:
            self.play()


class PlayerPair:
    """The input and output players: starting one pauses the other."""

    def __init__(self, make_player: Callable[[], Player] = Player):
        self.input = make_player()
        self.output = make_player()

    def play(self, which: str) -> None:
        other = self.output if which == "input" else self.input
        other.pause()
        getattr(self, which).play()

    def stop_all(self) -> None:
        self.input.stop()
        self.output.stop()
