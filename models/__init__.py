"""MusiCoder's texture networks: one small trained network per texture.

    import models
    m = models.load("water")          # ModelError if its weights are missing or corrupt
    log_mag_out = m.transform(log_mag) # (1025, frames) float32 nats -> same shape

Conversions run the networks in numpy (:mod:`models.runtime`, weights ``{texture}.npz``);
TensorFlow is needed only to train, evaluate against Keras and export (the ``train``
extra), and nothing on the conversion path imports it.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np

# Training and export import TensorFlow (never a conversion): its C++ start-up lines
# would litter their logs; set before any import of it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "weights"
EXEMPLARS_DIR = HERE / "exemplars"
FORMAT_VERSION = 1


class ModelError(Exception):
    """A texture model's weights or metadata are missing, corrupt or incompatible."""


@dataclasses.dataclass(frozen=True)
class Texture:
    """A texture: ``name`` (id), ``label`` (UI), a ``description`` of what a conversion
    sounds like (measured on held-out music, not what the exemplar promises), and the
    path of its exemplar recording (the preview)."""

    name: str
    label: str
    description: str
    exemplar_path: Path


TEXTURES: "collections.OrderedDict[str, Texture]" = collections.OrderedDict(
    (t.name, t) for t in (
        Texture("laser", "Laser",
                ("Your music with a buzzy, metallic shimmer above 4 kHz that pulses on its beats; "
                 "not yet separate zaps (preview: the laser zaps it learns from)."),
                EXEMPLARS_DIR / "laser.flac"),
        Texture("water", "Water",
                ("Your music with its highs turned into a steady, even hiss, like distant running water; "
                 "no bubbles yet (preview: the brook it learns from)."),
                EXEMPLARS_DIR / "water.flac"),
        Texture("future", "Future",
                ("Your music darker and padded: kept below 4 kHz, the highs rolled off (only attacks reach "
                 "6 kHz); no filter sweep yet (preview: the synth pad it learns from)."),
                EXEMPLARS_DIR / "future.flac"),
    )
)


def texture(name: str) -> Texture:
    """The :class:`Texture` called ``name``; ``musicoder.errors.InputError`` (code
    "unknown_texture", listing the valid names) for a name a user typed wrong."""
    from musicoder.errors import InputError

    try:
        return TEXTURES[name]
    except (KeyError, TypeError):
        raise InputError("unknown_texture", f"Unknown texture {name!r}: choose one of "
                                            f"{', '.join(TEXTURES)}.") from None


def _check_name(name: str) -> str:
    if name not in TEXTURES:
        raise KeyError(f"unknown texture {name!r}: choose one of {', '.join(TEXTURES)}")
    return name


class TextureModel:
    """A loaded texture network. :meth:`transform` is thread-safe and reusable."""

    def __init__(self, name: str, weights: dict[str, np.ndarray], meta: dict):
        from . import network

        self.name = name
        self.meta = meta
        self.params = {**network.DEFAULT_PARAMS, **meta["architecture"]["params"]}
        self._weights = weights

    def transform(self, log_mag: np.ndarray, chunk_frames: int | None = None) -> np.ndarray:
        """(N_BINS, frames) float32 natural-log magnitude → the textured one, same shape.

        Deterministic: the network's noise input is seeded (same input, same output).
        Runs in chunks of ``chunk_frames`` (default ``runtime.CHUNK_FRAMES``) with the
        network's context around each, so the output does not depend on the chunking
        and memory does not grow with the clip. The result is frame-major in memory (the
        transpose of a C-contiguous (frames, N_BINS) array), the layout the network and
        phase retrieval work in: no transposed copies on the way.
        """
        from . import network, runtime

        log_mag = np.asarray(log_mag, dtype=np.float32)
        if log_mag.ndim != 2 or log_mag.shape[0] != network_bins():
            raise ValueError(f"expected a ({network_bins()}, frames) log-magnitude, got {log_mag.shape}")
        frames = log_mag.shape[1]
        if frames == 0:
            return log_mag.copy()
        z = network.noise(frames, int(self.params["noise_channels"]), int(self.params["noise_seed"]))
        y = runtime.forward_chunked(self._weights, self.params, np.ascontiguousarray(log_mag.T), z,
                                    chunk_frames or runtime.CHUNK_FRAMES)
        return y.T


def network_bins() -> int:
    """N_BINS of the engine's STFT (1025)."""
    from musicoder import spectral

    return spectral.N_BINS


_CACHE: dict[str, TextureModel] = {}
_CACHE_LOCK = threading.Lock()


def load(name: str, weights_dir: str | Path | None = None) -> TextureModel:
    """Load (once, then cached) the network of texture ``name``.

    KeyError for an unknown name (the message lists the valid ones); ModelError naming
    the file when the weights or metadata are missing, corrupt or incompatible.
    """
    _check_name(name)
    folder = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    key = f"{folder}/{name}"
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(name, folder)
        return _CACHE[key]


def _load(name: str, folder: Path) -> TextureModel:
    from musicoder import spectral

    from . import network

    meta_path = folder / f"{name}.json"
    weights_path = folder / f"{name}.npz"
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise ModelError(f"{p}: the {name} texture model file is missing (train it with python -m "
                             f"models.train --texture {name} --data DIR, then python -m models.export)")
    try:
        meta = json.loads(meta_path.read_text())
        arch = meta["architecture"]
        expected = {"format_version": FORMAT_VERSION, "sample_rate": spectral.SAMPLE_RATE,
                    "n_fft": spectral.N_FFT, "hop": spectral.HOP, "n_bins": spectral.N_BINS}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{meta_path}: corrupt texture model metadata ({e})") from None
    for k, v in expected.items():
        if meta.get(k) != v:
            raise ModelError(f"{meta_path}: {k} is {meta.get(k)!r}, this version of MusiCoder needs {v!r}")
    if arch.get("name") != network.ARCHITECTURE or arch.get("version") != network.ARCH_VERSION:
        raise ModelError(f"{meta_path}: architecture {arch.get('name')!r} v{arch.get('version')} is not "
                         f"{network.ARCHITECTURE!r} v{network.ARCH_VERSION}")
    try:
        with np.load(weights_path, allow_pickle=False) as npz:
            weights = {k: np.ascontiguousarray(npz[k], dtype=np.float32) for k in npz.files}
    except Exception as e:  # zipfile/numpy raise many types for truncated or damaged files
        raise ModelError(f"{weights_path}: corrupt weights ({type(e).__name__}: {e})") from None
    problem = _weights_problem(weights, {**network.DEFAULT_PARAMS, **(arch.get("params") or {})})
    if problem:
        raise ModelError(f"{weights_path}: incompatible weights ({problem})")
    return TextureModel(name, weights, meta)


def _weights_problem(weights: dict[str, np.ndarray], params: dict) -> str | None:
    """What is wrong with exported weights for these parameters, or None: every layer
    present with the shape the architecture gives it."""
    n, c = network_bins(), int(params["channels"])
    shapes = {"compress/kernel": (n + int(params["noise_channels"]), c),
              "gain/kernel": (c, int(params["gain_bands"]) or n),
              "template_drive/kernel": (c, int(params["template_channels"])),
              "templates/kernel": (int(params["template_width"]), int(params["template_channels"]), n)}
    shapes.update({f"block{i}/kernel": (3, c, c) for i in range(len(params["dilations"]))})
    if params["gain_bands"]:
        shapes["gain_basis"] = (int(params["gain_bands"]), n)
    for key, shape in shapes.items():
        if key not in weights:
            return f"no {key}"
        if weights[key].shape != shape:
            return f"{key} is {weights[key].shape}, expected {shape}"
        bias = key.replace("/kernel", "/bias")
        if key.endswith("/kernel") and weights.get(bias, np.empty(0)).shape != (shape[-1],):
            return f"{bias} missing or of the wrong shape"
    return None
