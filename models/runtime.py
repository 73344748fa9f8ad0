"""The texture network's forward pass in plain numpy: what a conversion runs.

The same arithmetic as the Keras model of :mod:`models.network` (its layers, in its
order, float32), on the weights that ``python -m models.export`` writes from the Keras
checkpoint into ``weights/{texture}.npz``. TensorFlow is for training only: importing it
costs 5-8 s and 600 MB, the forward pass itself is a few matrix products.

The network is fully convolutional over time with a finite receptive field
(:func:`context_frames`), so it runs over the clip in chunks that overlap by that
context on each side: each chunk's inner frames see exactly what the whole-clip pass
sees (the zero padding of 'same' convolutions included, at the clip's true ends), and
memory stays flat in the clip's length.

Arrays are frame-major as the network sees them: (frames, N_BINS) natural-log
magnitude (nats) in, the same shape out.
"""
from __future__ import annotations

import math

import numpy as np

from . import network

CHUNK_FRAMES = 1024  # frames a chunk produces (11.9 s): big enough that matrix products dominate


def frame_major_log_mag(samples: np.ndarray) -> np.ndarray:
    """(n,) float samples at the engine's rate → (frames, N_BINS) float32 natural-log
    magnitude, the layout the network sees."""
    from musicoder import spectral

    return np.ascontiguousarray(spectral.to_log(spectral.magnitude(samples)).T)


def context_frames(params: dict) -> int:
    """Frames of context one output frame needs on each side: the dilated kernel-3
    blocks reach ``d`` frames each way, the templates ``(width - 1) // 2``."""
    return int(sum(params["dilations"])) + (int(params["template_width"]) - 1) // 2


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x·Φ(x) (Keras' default, ``approximate=False``), in place on x."""
    from scipy.special import erf

    return np.multiply(x, 0.5 * (1.0 + erf(x * np.float32(1 / math.sqrt(2)))), out=x)


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, dilation: int = 1) -> np.ndarray:
    """Keras Conv1D with padding 'same'. x: (T, c_in); kernel: (width, c_in, c_out) with
    odd width; bias: (c_out,). Returns (T, c_out) float32; outside x counts as zero."""
    width = kernel.shape[0]
    reach = dilation * (width - 1) // 2
    padded = np.pad(x, ((reach, reach), (0, 0)))
    frames = x.shape[0]
    if width > 3:  # one product over all taps (im2col) beats many thin ones
        taps = np.concatenate([padded[j * dilation:j * dilation + frames] for j in range(width)], axis=1)
        return taps @ kernel.reshape(-1, kernel.shape[2]) + bias
    out = padded[:frames] @ kernel[0]
    for j in range(1, width):
        out += padded[j * dilation:j * dilation + frames] @ kernel[j]
    return out + bias


def forward(weights: dict[str, np.ndarray], params: dict, log_mag: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """One pass of the network over a whole (or a chunk of a) clip.

    weights: the exported arrays (``{layer}/kernel``, ``{layer}/bias``, ``gain_basis``);
    params: the architecture's parameters. log_mag: (T, N_BINS) float32 nats;
    noise: (T, noise_channels) float32. Returns (T, N_BINS) float32 nats.
    """
    x = np.asarray(log_mag, dtype=np.float32)
    centred = x * np.float32(1.0 / network.IN_SCALE) + np.float32(-network.IN_MEAN / network.IN_SCALE)
    h = np.concatenate([centred, noise], axis=1) @ weights["compress/kernel"] + weights["compress/bias"]
    for i, d in enumerate(params["dilations"]):
        h += _gelu(_conv_same(h, weights[f"block{i}/kernel"], weights[f"block{i}/bias"], int(d)))
    g = h @ weights["gain/kernel"] + weights["gain/bias"]
    if "gain_basis" in weights:
        g = g @ weights["gain_basis"]
    limit = np.float32(network.GAIN_LIMIT)
    g = limit * np.tanh(g / limit)
    t = _gelu(h @ weights["template_drive/kernel"] + weights["template_drive/bias"])
    t = _conv_same(t, weights["templates/kernel"], weights["templates/bias"])
    return np.logaddexp(x + g, t, out=t)


def forward_chunked(weights: dict[str, np.ndarray], params: dict, log_mag: np.ndarray, noise: np.ndarray,
                    chunk_frames: int = CHUNK_FRAMES) -> np.ndarray:
    """:func:`forward` over ``chunk_frames`` frames at a time, each chunk widened by
    :func:`context_frames` on both sides (cut at the clip's ends): the same output as one
    pass over the whole clip, in memory that does not grow with it.

    Shapes as :func:`forward`; chunk_frames >= 1.
    """
    frames = log_mag.shape[0]
    reach = context_frames(params)
    out = np.empty((frames, log_mag.shape[1]), dtype=np.float32)
    for start in range(0, frames, chunk_frames):
        stop = min(start + chunk_frames, frames)
        lo, hi = max(0, start - reach), min(frames, stop + reach)
        y = forward(weights, params, log_mag[lo:hi], noise[lo:hi])
        out[start:stop] = y[start - lo:stop - lo]
    return out
