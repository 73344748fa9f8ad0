"""Wrong texture engines, kept so that the suite's checks can be shown to catch them.

Each ``ENGINES[name]`` is a drop-in for ``musicoder.texture.make_transform(exemplar,
settings, controller=None)``: it returns an ``engine.LogMagTransform``, a (N_BINS, frames) natural-log
magnitude -> the same shape, float32. ``tests.test_broken_engines`` swaps each in and
requires the check named for its failure (``tests.texture_checks``) to fail. (A model
takes ``make_transform`` when it is made, so a swap clears ``models._CACHE`` too.)
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from musicoder import control, spectral
from musicoder import texture as transfer

REAL_MAKE_TRANSFORM = transfer.make_transform  # kept before any test swaps it out
FAR_ABOVE_HZ = 6000.0  # the "far above" engine's crossover: well above every tuned one (up to 3.5 kHz)


def identity(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """The music unchanged: an engine that forgot to transfer anything."""
    def transform(log_x: np.ndarray) -> np.ndarray:
        return np.array(log_x, np.float32)

    return transform


def exemplar_log_mag(exemplar: transfer.ExemplarAnalysis) -> np.ndarray:
    """The exemplar's own (N_BINS, F) natural-log magnitude, rebuilt from its analysis."""
    w, _ = transfer.filterbank()
    return w.T @ exemplar.envelopes + exemplar.fine


def pasted_exemplar(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """The exemplar from its start (cycled to the music's length) at the music's level
    (mean spectral power): the music thrown away."""
    log_s = exemplar_log_mag(exemplar)

    def transform(log_x: np.ndarray) -> np.ndarray:
        log_x = np.asarray(log_x, np.float32)
        power = float(np.mean(np.exp(2.0 * log_x, dtype=np.float64))) if log_x.size else 1.0
        offset = 0.5 * np.log(max(power, 1e-12) / exemplar.mean_power)
        return (log_s[:, np.arange(log_x.shape[1]) % exemplar.frames] + offset).astype(np.float32)

    return transform


def noise_under_the_music(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """White noise shaped by the music's 48 band envelopes: its loudness contour and
    rhythm kept, its pitch (the fine structure within each band) lost, the exemplar unused."""
    w, _ = transfer.filterbank()

    def transform(log_x: np.ndarray) -> np.ndarray:
        log_x = np.asarray(log_x, np.float32)
        rng = np.random.default_rng(0)
        noise = np.log(np.abs(rng.standard_normal(log_x.shape) + 1j * rng.standard_normal(log_x.shape)) + 1e-9)
        fine = noise - w.T @ transfer.band_envelopes(noise)  # the noise's structure within bands, its band levels taken out
        return (w.T @ transfer.band_envelopes(log_x) + fine).astype(np.float32)

    return transform


def ignores_the_exemplar(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """The real transfer with the settings it is given, but toward a fixed hiss (a sound no
    texture ships with) whatever the exemplar it is given."""
    return REAL_MAKE_TRANSFORM(_hiss_analysis(), settings, controller)


def far_above(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """The real transfer, but only above FAR_ABOVE_HZ (the music kept whole below it): a
    texture hardly anyone would hear. Without the network, which would move the texture
    below it."""
    only_above = dataclasses.replace(settings, crossover_hz=max(settings.crossover_hz, FAR_ABOVE_HZ), spread_low=0.0)
    return REAL_MAKE_TRANSFORM(exemplar, only_above)


def every_band_replaced(exemplar: transfer.ExemplarAnalysis, settings: transfer.Settings, controller=None):
    """The real transfer driven by a network gone wrong: every band, every frame, the
    exemplar's fine structure and dynamics in place of the music's (output offsets
    saturated): the music's pitch lost below the crossover too."""
    weights = control.zero_weights()
    biases = np.zeros((len(control.CONTROLS), control.N_BANDS), np.float32)
    biases[control.CONTROLS.index("fine")] = 20.0
    biases[control.CONTROLS.index("keep")] = -20.0
    weights["clip_out/bias"] = biases.ravel()
    return REAL_MAKE_TRANSFORM(exemplar, settings, control.Controller(weights))


def hiss(seconds: float = 4.0) -> np.ndarray:
    """A steady white hiss, (n,) float32 at the engine's rate."""
    return (0.1 * np.random.default_rng(7).standard_normal(int(seconds * spectral.SAMPLE_RATE))).astype(np.float32)


@functools.cache
def _hiss_analysis() -> transfer.ExemplarAnalysis:
    """The analysis of :func:`hiss`, made once."""
    return transfer.analyse_exemplar(hiss())


ENGINES = {
    "identity": identity,
    "pasted exemplar": pasted_exemplar,
    "noise under the music": noise_under_the_music,
    "ignores the exemplar": ignores_the_exemplar,
    "far above the music": far_above,
    "every band replaced": every_band_replaced,
}
