"""The texture network: what drives the band-statistics transfer per clip, band and frame.

    stats = exemplar_statistics(exemplar)                  # once per exemplar
    net = Controller.load(path)                            # shipped weights (.npz), numpy only
    clip_logits, frame_logits = net(clip_features(env_x, stats, base), frame_features(env_x, z_s))

The transfer (:mod:`musicoder.texture`) has four controls in each of its 48 bands: how
much of the music's own normalised dynamics it keeps (``keep``), how far the band's
level and spread move toward the exemplar's (``level``, ``spread``), and how much of
the exemplar's fine structure replaces the music's there (``fine``). A tuned
:class:`~musicoder.texture.Settings` fixes them by one crossover for every song; the
network reads the song's and the exemplar's band analysis and moves each control, in
logit space, away from that tuned base: per clip for all four, and per frame for
``keep`` and ``fine``. Its last layers start at zero, so an untrained network is the
tuned engine exactly.

Everything here is a numpy forward pass of small dense and 1-D convolution layers
(168,544 weights, a few ms per 10 s); the weights are trained with TensorFlow
(``models.train``) and shipped as an ``.npz``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

CONTROLS = ("keep", "level", "spread", "fine")  # the per-clip outputs, in this order
FRAME_CONTROLS = ("keep", "fine")  # the per-frame outputs, in this order
N_BANDS = 48  # texture.N_BANDS (not imported: texture imports this module)
CLIP_FAMILIES = 11  # 48-band rows of clip_features: 3 of the music, 4 of the exemplar, 4 of the base
FRAME_CHANNELS = 2 * N_BANDS  # frame_features: the music's normalised envelopes, the placed exemplar's
BASE_EPS = 1e-3  # a base control of 0 or 1 sits this far inside for its logit: logit(0.001) = -6.9


@dataclasses.dataclass(frozen=True)
class ExemplarStatistics:
    """An exemplar's band analysis as the network reads it, each (N_BANDS,) float32:
    ``shape`` its band levels (nats) less their mean over bands, ``spread`` each band's
    standard deviation over time (nats), ``motion`` the mean absolute frame-to-frame change
    of each band (nats), ``roughness`` the standard deviation of its fine structure within
    the band (nats: high for a tonal band, low for noise)."""

    shape: np.ndarray
    spread: np.ndarray
    motion: np.ndarray
    roughness: np.ndarray


def _shape_spread_motion(env: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N_BANDS, T) band log-envelopes → the three (N_BANDS,) float32 rows named in
    :class:`ExemplarStatistics` (shape, spread, motion); a single frame has no motion."""
    env = np.asarray(env, np.float64)
    mean = env.mean(axis=1)
    motion = np.abs(np.diff(env, axis=1)).mean(axis=1) if env.shape[1] > 1 else np.zeros(len(env))
    return ((mean - mean.mean()).astype(np.float32), env.std(axis=1).astype(np.float32),
            motion.astype(np.float32))


def exemplar_statistics(envelopes: np.ndarray, fine: np.ndarray, weights: np.ndarray) -> ExemplarStatistics:
    """The :class:`ExemplarStatistics` of an exemplar: its (N_BANDS, F) band log-envelopes,
    its (N_BINS, F) fine structure and the (N_BANDS, N_BINS) band filterbank."""
    shape, spread, motion = _shape_spread_motion(envelopes)
    fine = np.asarray(fine, np.float64)
    mean_sq = weights.astype(np.float64) @ np.mean(fine**2, axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return ExemplarStatistics(shape, spread, motion, np.sqrt(mean_sq).astype(np.float32))


def clip_features(env_x: np.ndarray, exemplar: ExemplarStatistics, base: np.ndarray) -> np.ndarray:
    """(CLIP_FAMILIES · N_BANDS,) float32: what the clip head reads. env_x the music's
    (N_BANDS, T) band log-envelopes (nats); base the (4, N_BANDS) tuned controls (keep,
    level, spread, fine, 0..1) the network moves away from. Levels enter as shapes (less
    their mean over bands), so the features do not depend on loudness."""
    shape, spread, motion = _shape_spread_motion(env_x)
    rows = [shape, spread, motion, exemplar.shape, exemplar.spread, exemplar.motion, exemplar.roughness,
            *np.asarray(base, np.float32)]
    return np.concatenate([np.asarray(r, np.float32).ravel() for r in rows])


def frame_features(env_x: np.ndarray, placed_z: np.ndarray) -> np.ndarray:
    """(FRAME_CHANNELS, T) float32: what the frame head reads at each frame: the music's
    band envelopes normalised per band over the clip (zero mean, unit spread) and the
    exemplar's normalised envelopes placed on the music (``placed_z``, (N_BANDS, T))."""
    env_x = np.asarray(env_x, np.float64)
    z_x = (env_x - env_x.mean(axis=1, keepdims=True)) / (env_x.std(axis=1, keepdims=True) + 1e-6)
    return np.concatenate([z_x, placed_z]).astype(np.float32)


def base_logits(base: np.ndarray) -> np.ndarray:
    """The logits of tuned controls (any shape, 0..1), each held BASE_EPS inside 0..1."""
    b = np.clip(np.asarray(base, np.float64), BASE_EPS, 1.0 - BASE_EPS)
    return np.log(b / (1.0 - b))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def moved(base: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Controls moved by the network: base + σ(logit(base) + delta) − σ(logit(base)), in
    0..1. Exactly ``base`` where delta is 0 (so a zero network is the tuned engine);
    base and delta broadcast (e.g. (N_BANDS, 1) and (N_BANDS, T))."""
    lb = base_logits(base)
    return np.clip(np.asarray(base, np.float64) + _sigmoid(lb + delta) - _sigmoid(lb), 0.0, 1.0)


def _conv1d_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'same'-padded 1-D convolution over time (cross-correlation, as TensorFlow's Conv1D):
    x (C_in, T), kernel (K, C_in, C_out), bias (C_out,) → (C_out, T)."""
    k, c_in, c_out = kernel.shape
    pad_l = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (pad_l, k - 1 - pad_l)))
    t = x.shape[1]
    # all K shifted copies stacked (K·C_in, T): one matrix product instead of K small ones
    stacked = np.concatenate([padded[:, i:i + t] for i in range(k)])
    return kernel.reshape(k * c_in, c_out).T @ stacked + bias[:, None]


class Controller:
    """The trained network (weights from :meth:`load`). Calling it with a clip's features
    and frame features returns ``(clip, frame)`` logit offsets: clip (len(CONTROLS),
    N_BANDS), frame (len(FRAME_CONTROLS), N_BANDS, T), both float64."""

    LAYERS = ("clip_in", "clip_hidden", "clip_out", "frame_in", "frame_clip", "frame_out")

    def __init__(self, weights: dict[str, np.ndarray], meta: dict | None = None):
        missing = [f"{n}/{p}" for n in self.LAYERS for p in ("kernel", "bias") if f"{n}/{p}" not in weights]
        if missing:
            raise ValueError(f"the network's weights lack {', '.join(missing)}")
        self.weights = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        self.meta = meta or {}
        if self.weights["clip_in/kernel"].shape[0] != CLIP_FAMILIES * N_BANDS:
            raise ValueError(f"clip_in takes {self.weights['clip_in/kernel'].shape[0]} features, "
                             f"not {CLIP_FAMILIES * N_BANDS}")

    @classmethod
    def load(cls, path: str | Path) -> "Controller":
        """The weights saved by :meth:`save` (``.npz``); ValueError for a file that holds
        no such network, OSError for a missing one."""
        with np.load(path, allow_pickle=False) as f:
            return cls({k: f[k] for k in f.files})

    def save(self, path: str | Path) -> None:
        """Write the weights as float32 ``.npz`` (what :meth:`load` reads)."""
        np.savez(path, **{k: v.astype(np.float32) for k, v in self.weights.items()})

    def _dense(self, name: str, x: np.ndarray) -> np.ndarray:
        return x @ self.weights[f"{name}/kernel"] + self.weights[f"{name}/bias"]

    def __call__(self, clip: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.tanh(self._dense("clip_in", np.asarray(clip, np.float64)))
        h = np.tanh(self._dense("clip_hidden", h))
        clip_out = self._dense("clip_out", h).reshape(len(CONTROLS), N_BANDS)
        w = self.weights
        g = _conv1d_same(np.asarray(frame, np.float64), w["frame_in/kernel"], w["frame_in/bias"])
        g = np.tanh(g + self._dense("frame_clip", h)[:, None])
        frame_out = _conv1d_same(g, w["frame_out/kernel"], w["frame_out/bias"])
        return clip_out, frame_out.reshape(len(FRAME_CONTROLS), N_BANDS, -1)


def zero_weights(hidden: int = 128, frame_hidden: int = 32, kernel: int = 9,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Initial weights: random hidden layers (Glorot-uniform), zero output layers, so the
    network's offsets are all zero and it starts as the tuned engine."""
    rng = np.random.default_rng(seed)

    def glorot(*shape: int) -> np.ndarray:
        fan_in, fan_out = int(np.prod(shape[:-1])), shape[-1]
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)

    n_in = CLIP_FAMILIES * N_BANDS
    return {
        "clip_in/kernel": glorot(n_in, hidden), "clip_in/bias": np.zeros(hidden, np.float32),
        "clip_hidden/kernel": glorot(hidden, hidden), "clip_hidden/bias": np.zeros(hidden, np.float32),
        "clip_out/kernel": np.zeros((hidden, len(CONTROLS) * N_BANDS), np.float32),
        "clip_out/bias": np.zeros(len(CONTROLS) * N_BANDS, np.float32),
        "frame_in/kernel": glorot(kernel, FRAME_CHANNELS, frame_hidden),
        "frame_in/bias": np.zeros(frame_hidden, np.float32),
        "frame_clip/kernel": glorot(hidden, frame_hidden), "frame_clip/bias": np.zeros(frame_hidden, np.float32),
        "frame_out/kernel": np.zeros((kernel, frame_hidden, len(FRAME_CONTROLS) * N_BANDS), np.float32),
        "frame_out/bias": np.zeros(len(FRAME_CONTROLS) * N_BANDS, np.float32),
    }
