"""Export the runtime's weights from the Keras checkpoints (needs the ``train`` extra).

    python -m models.export [--texture NAME ...] [--weights-dir DIR]

Reads ``{texture}.json`` and ``{texture}.weights.h5`` (what training writes) and writes
``{texture}.npz``: every kernel and bias by Keras layer name (``compress/kernel``, ...)
and the fixed mel ``gain_basis``, float32, the arrays :mod:`models.runtime` runs.
Then checks the export on a real spectrogram (the demo clip): the numpy pass must equal
the Keras model to 1e-4 nats, else nothing is written.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from . import TEXTURES, WEIGHTS_DIR, network, runtime

LAYERS = ("compress", "gain", "template_drive", "templates")
TOLERANCE = 1e-4  # nats: far below what a 16-bit output can show


def keras_model(meta: dict, weights_path: Path):
    """The Keras model of a checkpoint, weights loaded."""
    model = network.build(meta["architecture"]["params"])
    model.load_weights(str(weights_path))
    return model


def runtime_arrays(model, params: dict) -> dict[str, np.ndarray]:
    """{name: float32 array} for :func:`models.runtime.forward` from a built Keras model."""
    names = list(LAYERS) + [f"block{i}" for i in range(len(params["dilations"]))]
    arrays = {}
    for name in names:
        kernel, bias = model.get_layer(name).get_weights()
        arrays[f"{name}/kernel"] = np.asarray(kernel, dtype=np.float32)
        arrays[f"{name}/bias"] = np.asarray(bias, dtype=np.float32)
    if params.get("gain_bands"):
        arrays["gain_basis"] = network.gain_basis(int(params["gain_bands"]))
    return arrays


def keras_forward(model, log_mag: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The Keras model on one clip. log_mag: (T, N_BINS); noise: (T, channels). → (T, N_BINS)."""
    return np.asarray(model([log_mag[None], noise[None]], training=False))[0]


def demo_log_mag(seconds: float = 10.0) -> np.ndarray:
    """(frames, N_BINS) float32 log-magnitude of the demo clip's first ``seconds``."""
    from musicoder import audio

    demo = Path(__file__).resolve().parent.parent / "examples" / "demo.ogg"
    return runtime.frame_major_log_mag(audio.load(demo, duration=seconds).samples)


def export(texture: str, weights_dir: Path = WEIGHTS_DIR) -> float:
    """Write ``{texture}.npz`` beside its checkpoint; returns the largest difference (nats)
    from the Keras model on the demo clip. ValueError if it exceeds TOLERANCE."""
    meta = json.loads((weights_dir / f"{texture}.json").read_text())
    params = {**network.DEFAULT_PARAMS, **meta["architecture"]["params"]}
    model = keras_model(meta, weights_dir / f"{texture}.weights.h5")
    arrays = runtime_arrays(model, params)
    x = demo_log_mag()
    z = network.noise(x.shape[0], int(params["noise_channels"]), int(params["noise_seed"]))
    diff = float(np.max(np.abs(runtime.forward(arrays, params, x, z) - keras_forward(model, x, z))))
    if diff > TOLERANCE:
        raise ValueError(f"{texture}: the numpy pass differs from Keras by {diff:.2e} nats")
    path = weights_dir / f"{texture}.npz"
    tmp = path.with_name(path.name + ".part.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return diff


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", action="append", choices=list(TEXTURES), help="default: all")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    a = ap.parse_args(argv)
    for name in a.texture or TEXTURES:
        diff = export(name, a.weights_dir)
        print(f"{name}: wrote {a.weights_dir / (name + '.npz')} (max |numpy - keras| {diff:.2e} nats)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
