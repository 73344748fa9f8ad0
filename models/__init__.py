"""MusiCoder's texture networks: one small trained Keras model per texture.

    import models
    m = models.load("water")          # ModelError if its weights are missing or corrupt
    log_mag_out = m.transform(log_mag) # (1025, frames) float32 nats -> same shape

TensorFlow is imported only when a model is loaded, so importing this package is cheap.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import threading
from pathlib import Path

import numpy as np

# TensorFlow's C++ start-up lines would litter the CLI's stderr and the server's log;
# set before any import of it (this package and its modules are where it is imported)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
WEIGHTS_DIR = HERE / "weights"
EXEMPLARS_DIR = HERE / "exemplars"
FORMAT_VERSION = 1


class ModelError(Exception):
    """A texture model's weights or metadata are missing, corrupt or incompatible."""


@dataclasses.dataclass(frozen=True)
class Texture:
    """A texture: ``name`` (id), ``label`` (UI), one-sentence ``description``, and the
    path of its exemplar recording."""

    name: str
    label: str
    description: str
    exemplar_path: Path


TEXTURES: "collections.OrderedDict[str, Texture]" = collections.OrderedDict(
    (t.name, t) for t in (
        Texture("laser", "Laser",
                "Bright sci-fi zaps: fast downward-sweeping, buzzy pitch glides fired several times a second.",
                EXEMPLARS_DIR / "laser.flac"),
        Texture("water", "Water",
                "A babbling brook: a bed of flowing noise with bubbling, gurgling highs.",
                EXEMPLARS_DIR / "water.flac"),
        Texture("future", "Future",
                "A futuristic synth pad: chorused sawtooth chords through a slowly sweeping resonant filter, gated in sixteenths.",
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

    def __init__(self, name: str, model, meta: dict):
        import tensorflow as tf

        from . import network

        self.name = name
        self.meta = meta
        self._model = model
        params = meta["architecture"]["params"]
        self._noise_channels = int(params["noise_channels"])
        self._noise_seed = int(params["noise_seed"])
        self._fn = tf.function(lambda x, z: model([x, z], training=False), reduce_retracing=True,
                               input_signature=[tf.TensorSpec([1, None, network_bins()], tf.float32),
                                                tf.TensorSpec([1, None, self._noise_channels], tf.float32)])
        self._network = network

    def transform(self, log_mag: np.ndarray) -> np.ndarray:
        """(N_BINS, frames) float32 natural-log magnitude → the textured one, same shape.

        Deterministic: the network's noise input is seeded (same input, same output).
        """
        log_mag = np.asarray(log_mag, dtype=np.float32)
        if log_mag.ndim != 2 or log_mag.shape[0] != network_bins():
            raise ValueError(f"expected a ({network_bins()}, frames) log-magnitude, got {log_mag.shape}")
        frames = log_mag.shape[1]
        if frames == 0:
            return log_mag.copy()
        z = self._network.noise(frames, self._noise_channels, self._noise_seed)
        y = self._fn(np.ascontiguousarray(log_mag.T)[None], z[None]).numpy()[0]
        return np.ascontiguousarray(y.T, dtype=np.float32)


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

    meta_path = folder / f"{name}.json"
    weights_path = folder / f"{name}.weights.h5"
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise ModelError(f"{p}: the {name} texture model file is missing (train it with "
                             f"python -m models.train --texture {name} --data DIR)")
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
    from . import network

    if arch.get("name") != network.ARCHITECTURE or arch.get("version") != network.ARCH_VERSION:
        raise ModelError(f"{meta_path}: architecture {arch.get('name')!r} v{arch.get('version')} is not "
                         f"{network.ARCHITECTURE!r} v{network.ARCH_VERSION}")
    try:
        model = network.build(arch.get("params"))
    except Exception as e:  # bad params in the metadata
        raise ModelError(f"{meta_path}: cannot build the network from its parameters ({e})") from None
    try:
        model.load_weights(str(weights_path))
    except Exception as e:  # h5py/keras raise many types for truncated or mismatched files
        raise ModelError(f"{weights_path}: corrupt or incompatible weights ({type(e).__name__}: {e})") from None
    return TextureModel(name, model, meta)
