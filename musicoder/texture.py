"""Texture transfer by band statistics: the music's pitch and rhythm, the exemplar's sound.

    ex = analyse_exemplar(exemplar_samples)              # once per exemplar
    transform = make_transform(ex, Settings(...))        # an engine.LogMagTransform
    log_out = transform(log_x)                           # (N_BINS, frames) nats -> same

Everything works on natural-log STFT magnitudes (``spectral``: 1025 bins, hop 512 at
44.1 kHz) and 48 log-spaced bands from 30 Hz to 16 kHz. Below a crossover frequency the
music's fine structure within each band is kept: that is where its pitch (harmony,
melody) lives. Above it the exemplar's own fine structure replaces the music's, so its
zaps, bubbles or hiss are heard there. Each band's envelope becomes ``μ + σ·z``:

* μ, σ: the band's level and spread, moved toward the exemplar's above the crossover;
* z: the music's normalised dynamics mixed with the exemplar's, and the exemplar's are
  placed by the music: at each music onset the exemplar replays from its next onset, so
  its events land on the music's beats.

No training is needed for a new exemplar; the few numbers of :class:`Settings` are tuned
per built-in texture on training music (``models.tune``). A trained network
(:mod:`musicoder.control`) can move every band's controls away from those settings, per
song and per frame, fine structure below the crossover included: ``make_transform(ex,
settings, controller)``.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from . import control, spectral

N_BANDS = 48
BAND_LO_HZ, BAND_HI_HZ = 30.0, 16000.0
ONSET_MIN_GAP = 6  # frames (70 ms) between two onsets: one event per note, not per partial
ONSET_THRESHOLD_STD = 0.5  # an onset's flux is above mean + this many standard deviations
ONSET_RANGE_NATS = 6.9  # flux counts within 60 dB of the loudest band: a noise floor's flicker is no onset
FLATNESS_HZ = (200.0, 8000.0)  # where an exemplar's noisiness is told apart from its tonality
_POWER_FLOOR = 1e-12  # of a band's power: 0.5·log gives -13.8 nats, under LOG_FLOOR's -11.5
_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class Settings:
    """How far a conversion moves toward its exemplar (each weight 0..1).

    crossover_hz: above it the exemplar's fine structure and band statistics; below it the
      music's. At or below BAND_LO_HZ every band is above it: a blend of the whole
      spectrum, which suits a steady tonal exemplar (a hum, a drone) better than
      replacing the highs. keep_low / keep_high: share of the music's own normalised band
      dynamics below / above the crossover (1 keeps them, 0 takes the exemplar's, placed
      on the music's onsets). spread / spread_low: how far band spreads above / below the
      crossover move to the exemplar's (below it, toward a steady exemplar, that compresses
      each band's dynamics: a share keeps the melody, all of it loses which band sounds
      when). level: how far band levels above the crossover move. fine: share of the
      exemplar's fine structure above the crossover (0 keeps the music's).
    """

    crossover_hz: float
    keep_low: float = 1.0
    keep_high: float = 0.5
    spread: float = 1.0
    level: float = 1.0
    fine: float = 1.0
    spread_low: float = 0.0

    def __post_init__(self):
        for name in ("keep_low", "keep_high", "spread", "level", "fine", "spread_low"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)}")
        if not self.crossover_hz > 0:
            raise ValueError(f"crossover_hz must be positive, got {self.crossover_hz}")


@functools.cache
def filterbank() -> tuple[np.ndarray, np.ndarray]:
    """(N_BANDS, N_BINS) float32 triangular weights, log-spaced from BAND_LO_HZ to
    BAND_HI_HZ, summing to 1 over every bin (bins outside the range belong to the end
    bands), and the (N_BANDS,) centre frequencies in Hz."""
    freqs = np.fft.rfftfreq(spectral.N_FFT, 1.0 / spectral.SAMPLE_RATE)
    centres = np.geomspace(BAND_LO_HZ, BAND_HI_HZ, N_BANDS)
    lf = np.log(np.clip(freqs, BAND_LO_HZ, BAND_HI_HZ))
    lc = np.log(centres)
    left = np.concatenate([[lc[0] - 1.0], lc[:-1]])[:, None]
    right = np.concatenate([lc[1:], [lc[-1] + 1.0]])[:, None]
    w = np.clip(np.minimum((lf - left) / (lc[:, None] - left), (right - lf) / (right - lc[:, None])), 0.0, 1.0)
    w[0, freqs <= centres[0]] = 1.0
    w[-1, freqs >= centres[-1]] = 1.0
    w /= w.sum(axis=0, keepdims=True)
    w.setflags(write=False)
    return w.astype(np.float32), centres


def band_envelopes(log_mag: np.ndarray) -> np.ndarray:
    """(N_BINS, T) natural-log magnitude → (N_BANDS, T) natural-log band amplitudes
    (half the log of each band's weighted power)."""
    w, _ = filterbank()
    return 0.5 * np.log(w @ np.exp(2.0 * log_mag) + _POWER_FLOOR)


def onsets(envelopes: np.ndarray) -> np.ndarray:
    """Frame indices (ascending int array) of the onsets of (N_BANDS, T) band envelopes:
    local peaks of the mean positive band flux above mean + ONSET_THRESHOLD_STD·std, at
    least ONSET_MIN_GAP frames apart (the earlier one wins). The envelopes are floored
    ONSET_RANGE_NATS below their maximum first: the narrow low bands of a quiet passage
    flicker by nats from frame to frame, and a sparse exemplar's gaps would be all onsets."""
    if envelopes.size == 0:
        return np.zeros(0, int)
    floored = np.maximum(envelopes, envelopes.max() - ONSET_RANGE_NATS)
    flux = np.maximum(np.diff(floored, axis=1, prepend=floored[:, :1]), 0.0).mean(axis=0)
    if len(flux) < 3:
        return np.zeros(0, int)
    threshold = flux.mean() + ONSET_THRESHOLD_STD * flux.std()
    mid = flux[1:-1]
    peaks = np.flatnonzero((mid > threshold) & (mid >= flux[:-2]) & (mid >= flux[2:])) + 1
    kept: list[int] = []
    for t in peaks:
        if not kept or t - kept[-1] >= ONSET_MIN_GAP:
            kept.append(int(t))
    return np.array(kept, int)


@dataclasses.dataclass(frozen=True)
class ExemplarAnalysis:
    """What a conversion needs of an exemplar, made once by :func:`analyse_exemplar`.

    envelopes: (N_BANDS, F) band log-envelopes; fine: (N_BINS, F) log-magnitude minus the
    envelopes spread over the bins (the structure within bands); onsets: frame indices;
    mean_power: mean squared magnitude over bins and frames, for level matching.
    """

    envelopes: np.ndarray
    fine: np.ndarray
    onsets: np.ndarray
    mean_power: float

    @property
    def frames(self) -> int:
        return self.envelopes.shape[1]


def analyse_exemplar(samples: np.ndarray) -> ExemplarAnalysis:
    """Analyse (n,) float samples at ``spectral.SAMPLE_RATE`` (at least one STFT frame)
    as an exemplar. ValueError for silence (no level to match)."""
    mag = spectral.magnitude(np.asarray(samples, np.float32))
    mean_power = float(np.mean(np.square(mag, dtype=np.float64)))
    if not mean_power > spectral.LOG_FLOOR**2:
        raise ValueError("the exemplar is silent")
    log_mag = spectral.to_log(mag)
    env = band_envelopes(log_mag)
    w, _ = filterbank()
    fine = (log_mag - w.T @ env).astype(np.float32)
    found = onsets(env)
    return ExemplarAnalysis(envelopes=env.astype(np.float32), fine=fine,
                            onsets=found if len(found) else np.zeros(1, int), mean_power=mean_power)


def flatness(exemplar: ExemplarAnalysis) -> float:
    """The spectral flatness of an exemplar in nats (<= 0): the mean over its frames of the
    log of the geometric over the arithmetic mean power of its bins within FLATNESS_HZ.
    Near 0 for noise (a brook, a sauna's hiss: -1 to -2), far below for tonal sounds (a
    bell, a hum: -8 to -16)."""
    w, _ = filterbank()
    freqs = np.fft.rfftfreq(spectral.N_FFT, 1.0 / spectral.SAMPLE_RATE)
    rows = np.flatnonzero((freqs > FLATNESS_HZ[0]) & (freqs < FLATNESS_HZ[1]))
    log_power = 2.0 * (exemplar.fine[rows].astype(np.float64) + w.T[rows].astype(np.float64) @ exemplar.envelopes)
    top = log_power.max(axis=0)
    arithmetic = top + np.log(np.exp(log_power - top).mean(axis=0))
    return float(np.mean(log_power.mean(axis=0) - arithmetic))


def placement(n_frames: int, music_onsets: np.ndarray, exemplar: ExemplarAnalysis) -> np.ndarray:
    """(n_frames,) exemplar frame index for each output frame: the exemplar plays from its
    start until the music's first onset; at each music onset it jumps to its own next
    onset (in its order, cycling) and runs on from there, wrapping at its end."""
    index = np.empty(n_frames, int)
    starts = [0, *(int(t) for t in music_onsets if t > 0)]
    sources = [0, *(int(exemplar.onsets[k % len(exemplar.onsets)]) for k in range(len(starts) - 1))]
    ends = [*starts[1:], n_frames]
    for a, b, src in zip(starts, ends, sources):
        index[a:b] = (src + np.arange(b - a)) % exemplar.frames
    return index


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a :class:`Transfer` decides from a whole song's band envelopes, before any block
    is transformed: env_x the music's (N_BANDS, T) band log-envelopes, env_y the target
    ones (same shape, float32), index the (T,) exemplar frame placed at each music frame;
    with a network, fine_moved its (N_BANDS, T) change to each band's share of the
    exemplar's fine structure. 10 MB for a 10-minute song (20 with a network): the
    whole-song statistics without the whole spectrogram."""

    env_x: np.ndarray
    env_y: np.ndarray
    index: np.ndarray
    fine_moved: np.ndarray | None = None  # (N_BANDS, T) the network's change to each band's fine share


class Transfer:
    """The transfer toward one exemplar with one :class:`Settings`, as an
    ``engine.LogMagTransform`` (call it on a (N_BINS, T) log-magnitude) that can also be
    split for a song too long to hold whole: :meth:`plan` takes only the whole song's band
    envelopes and mean power (streamed in a first pass), :meth:`apply` transforms any run
    of frames with that plan. The split gives the whole-clip result: every statistic
    (band means, spreads and maxima, the level match, the onsets and their threshold, the
    normalisation of z) is whole-song, and the rest works frame by frame.

    What it holds of the exemplar (the texture network's training reads them too): ``mu_s``,
    ``sd_s``, ``max_s`` its band means, spreads and maxima ((N_BANDS, 1) nats), ``z_s`` its
    normalised band envelopes (N_BANDS, F), and ``fine_bins`` the settings' share of its fine
    structure in each bin ((N_BINS,) float32)."""

    def __init__(self, exemplar: ExemplarAnalysis, settings: Settings,
                 controller: control.Controller | None = None):
        self.exemplar, self.settings, self.controller = exemplar, settings, controller
        w, centres = filterbank()
        low = (centres < settings.crossover_hz)[:, None]
        self._keep = np.where(low, settings.keep_low, settings.keep_high)
        self._level = np.where(low, 0.0, settings.level)
        self._spread = np.where(low, settings.spread_low, settings.spread)
        self._fine = np.where(low, 0.0, settings.fine)
        freqs = np.fft.rfftfreq(spectral.N_FFT, 1.0 / spectral.SAMPLE_RATE)
        self._high_bins = np.flatnonzero(freqs >= settings.crossover_hz)
        self.fine_bins = np.where(freqs >= settings.crossover_hz, settings.fine, 0.0).astype(np.float32)
        if controller is not None:
            self._stats = control.exemplar_statistics(exemplar.envelopes, exemplar.fine, w)
        self._w_high = np.ascontiguousarray(w.T[self._high_bins])
        env_s = exemplar.envelopes
        self.mu_s = env_s.mean(axis=1, keepdims=True)
        self.sd_s = env_s.std(axis=1, keepdims=True) + _EPS
        self.z_s = (env_s - self.mu_s) / self.sd_s
        self.max_s = env_s.max(axis=1, keepdims=True)

    def plan(self, env_x: np.ndarray, music_power: float) -> Plan:
        """The :class:`Plan` for a song whose (N_BANDS, T) band log-envelopes are ``env_x``
        (:func:`band_envelopes` of its log-magnitude) and whose mean squared magnitude over
        bins and frames is ``music_power``. The exemplar is matched to the music's level
        first, so only its sound moves, not its loudness."""
        keep, level, spread = self._keep, self._level, self._spread
        mu_x = env_x.mean(axis=1, keepdims=True)
        sd_x = env_x.std(axis=1, keepdims=True) + _EPS
        offset = 0.5 * np.log(max(music_power, _POWER_FLOOR) / self.exemplar.mean_power)
        index = placement(env_x.shape[1], onsets(env_x), self.exemplar)
        fine_moved = None
        if self.controller is not None and env_x.shape[1]:
            keep, level, spread, fine = self.controls(env_x, index)
            fine_moved = (fine - self._fine).astype(np.float32)
        z = keep * (env_x - mu_x) / sd_x + (1.0 - keep) * self.z_s[:, index]
        z /= z.std(axis=1, keepdims=True) + _EPS
        env_y = mu_x + level * (self.mu_s + offset - mu_x) + (sd_x + spread * (self.sd_s - sd_x)) * z
        # no band louder than the louder of the two ever is there: a wide exemplar spread
        # times a rare peak of the music's dynamics would otherwise boost one band by many
        # nats, and the loudness normalisation after would bury everything else
        env_y = np.minimum(env_y, np.maximum(env_x.max(axis=1, keepdims=True), self.max_s + offset))
        return Plan(env_x=env_x, env_y=env_y, index=index, fine_moved=fine_moved)

    def base(self) -> np.ndarray:
        """(4, N_BANDS) the settings' controls in each band (keep, level, spread, fine; 0..1),
        each band below or above the crossover by its centre: what a network moves from."""
        return np.concatenate([self._keep, self._level, self._spread, self._fine], axis=1).T

    def controls(self, env_x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """The network's controls for a song with (N_BANDS, T) band log-envelopes ``env_x``
        and exemplar placement ``index`` ((T,) frames): keep (N_BANDS, T), level and spread
        (N_BANDS, 1), fine (N_BANDS, T), each 0..1, the settings' own where it outputs 0."""
        base = self.base()
        clip, frame = self.controller(control.clip_features(env_x, self._stats, base),
                                      control.frame_features(env_x, self.z_s[:, index]))
        keep = control.moved(self._keep, clip[0][:, None] + frame[0])
        level = control.moved(self._level, clip[1][:, None])
        spread = control.moved(self._spread, clip[2][:, None])
        fine = control.moved(self._fine, clip[3][:, None] + frame[1])
        return keep, level, spread, fine

    def fine_share(self, plan: Plan, first: int, frames: int) -> np.ndarray | None:
        """(N_BINS, frames) float32 share of the exemplar's fine structure in each bin of
        frames ``first`` to ``first + frames`` of ``plan``'s song, or None without a network
        (then it is the settings' ``fine`` above the crossover and 0 below, in every frame)."""
        if plan.fine_moved is None:
            return None
        w, _ = filterbank()
        moved = plan.fine_moved[:, first:first + frames]
        return np.clip(self.fine_bins[:, None] + w.T @ moved, 0.0, 1.0).astype(np.float32)

    def apply(self, log_x: np.ndarray, plan: Plan, first: int = 0) -> np.ndarray:
        """Frames ``first`` to ``first + T`` of the song that ``plan`` was made for: (N_BINS, T)
        natural-log magnitude of those frames → (N_BINS, T) float32."""
        w, _ = filterbank()
        frames = slice(first, first + log_x.shape[1])
        env_x, env_y, index = plan.env_x[:, frames], plan.env_y[:, frames], plan.index[frames]
        out = log_x + w.T @ (env_y - env_x)
        share = self.fine_share(plan, first, log_x.shape[1])
        if share is not None:
            # every band may take some of the exemplar's fine structure: a mix in place of the music's
            out += share * (self.exemplar.fine[:, index] - (log_x - w.T @ env_x))
            return out.astype(np.float32)
        high_bins = self._high_bins
        if self.settings.fine > 0 and len(high_bins):
            # above the crossover: the target envelope over a mix of the two fine structures
            fine_x = log_x[high_bins] - self._w_high @ env_x
            out[high_bins] = (self._w_high @ env_y + (1.0 - self.settings.fine) * fine_x
                              + self.settings.fine * self.exemplar.fine[np.ix_(high_bins, index)])
        return out.astype(np.float32)

    def music_share(self, strength: float = 1.0, plan: Plan | None = None, first: int = 0,
                    frames: int = 0) -> np.ndarray:
        """The share of the music's own fine structure in each bin of the result at
        ``strength`` (0..1): 1 − strength·(the exemplar's share). Without a network,
        (N_BINS,) float32: 1 below the crossover, 1 − strength·fine above it; with one, for
        frames ``first`` to ``first + frames`` of ``plan``'s song, (frames, N_BINS) float32
        (frame-major, as the engine's stereo side). The engine keeps that share of the
        music's stereo side there, so a replaced band is the texture alone, in both channels."""
        share = self.fine_share(plan, first, frames) if plan is not None else None
        if share is not None:
            return np.ascontiguousarray((1.0 - strength * share).T)
        share = np.ones(spectral.N_BINS, np.float32)
        share[self._high_bins] = 1.0 - strength * self.settings.fine
        return share

    def __call__(self, log_x: np.ndarray) -> np.ndarray:
        """The whole clip at once: (N_BINS, T) natural-log magnitude → (N_BINS, T) float32."""
        log_x = np.asarray(log_x, np.float32)
        if log_x.shape[1] == 0:
            return log_x.copy()
        env_x = band_envelopes(log_x)
        return self.apply(log_x, self.plan(env_x, float(np.mean(np.exp(2.0 * log_x, dtype=np.float64)))))


def make_transform(exemplar: ExemplarAnalysis, settings: Settings,
                   controller: control.Controller | None = None) -> Transfer:
    """The transfer toward ``exemplar`` as an ``engine.LogMagTransform``: (N_BINS, T)
    natural-log magnitude → (N_BINS, T) float32, a :class:`Transfer` (so the engine can
    also work through a long song in blocks with its plan); driven by ``controller``, the
    trained network, when one is given, else by ``settings`` alone."""
    return Transfer(exemplar, settings, controller)
