"""The texture network: a small fully convolutional (over time) Keras model.

It treats frequency as channels: a frame-major log-magnitude (batch, frames, 1025) is
projected to a compressed representation, passed through dilated 1-D convolutions over
time (with a few seeded noise channels so it can make texture that the music does not
contain), and expanded again into two full-resolution maps:

* ``gain``: a log-gain (nats, bounded to ±GAIN_LIMIT) applied to the music itself, set
  per mel band and interpolated smoothly across frequency (an equaliser that moves in
  time: a gain that wobbles from bin to bin makes the magnitude inconsistent, and phase
  reconstruction then smears the music's partials),
* ``texture``: the log-magnitude of a new layer, drawn by short spectro-temporal
  templates (a transposed-in-spirit Conv1D with 1025 output channels), mixed in.

output = log(exp(input + gain) + exp(texture)), so the net starts as the identity
(gain 0, texture near the log floor) and every layer is cheap at 1025 x 862.
"""
from __future__ import annotations

import numpy as np

from musicoder import spectral

ARCHITECTURE = "gain-texture-tcn"
ARCH_VERSION = 1
DEFAULT_PARAMS = {
    "channels": 128,          # width of the compressed (hidden) representation
    "dilations": [1, 2, 4, 8, 16, 1],  # one residual Conv1D block (kernel 3) per entry
    "noise_channels": 8,      # seeded Gaussian noise channels concatenated to the input
    "template_channels": 32,  # channels feeding the texture templates
    "template_width": 9,      # frames (9 x 11.6 ms = 104 ms) of each texture template
    "noise_seed": 1234,       # seed of the noise used at inference
    "gain_bands": 48,         # the gain is a smooth curve through this many mel bands (0: per bin)
}
GAIN_LIMIT = 3.0  # nats (±26 dB)
IN_MEAN, IN_SCALE = -6.0, 3.0  # rough centring of natural-log magnitudes


def noise(frames: int, channels: int, seed: int) -> np.ndarray:
    """Seeded noise input: (frames, channels) float32 standard normal, deterministic."""
    return np.random.default_rng(seed).standard_normal((frames, channels)).astype(np.float32)


def gain_basis(bands: int) -> np.ndarray:
    """(bands, N_BINS) float32: triangular mel-spaced bumps (40 Hz-20 kHz) that sum to 1
    at every bin, so band gains interpolate smoothly to a per-bin gain curve."""
    import librosa

    m = librosa.filters.mel(sr=spectral.SAMPLE_RATE, n_fft=spectral.N_FFT, n_mels=bands,
                            fmin=40.0, fmax=spectral.SAMPLE_RATE / 2, norm=None)
    m[0, :np.argmax(m[0])] = 1.0  # hold the edge bands flat out to DC and Nyquist
    m[-1, np.argmax(m[-1]):] = 1.0
    return (m / np.maximum(m.sum(0, keepdims=True), 1e-6)).astype(np.float32)


def build(params: dict | None = None, with_gain: bool = False):
    """Build the Keras model.

    Inputs: log-magnitude (batch, frames, N_BINS) float32 in nats, noise
    (batch, frames, noise_channels). Output: log-magnitude (batch, frames, N_BINS), and
    with ``with_gain`` also the log-gain map (batch, frames, N_BINS) nats (for its loss).
    Any number of frames works (all layers are convolutions over time, 'same' padding).
    """
    import keras
    from keras import layers, ops

    p = {**DEFAULT_PARAMS, **(params or {})}
    n = spectral.N_BINS
    x_in = keras.Input((None, n), name="log_mag")
    z_in = keras.Input((None, p["noise_channels"]), name="noise")
    x = layers.Rescaling(1.0 / IN_SCALE, offset=-IN_MEAN / IN_SCALE, name="centre")(x_in)
    h = layers.Concatenate(name="with_noise")([x, z_in])
    h = layers.Dense(p["channels"], name="compress")(h)
    for i, d in enumerate(p["dilations"]):
        c = layers.Conv1D(p["channels"], 3, dilation_rate=d, padding="same", activation="gelu",
                          name=f"block{i}")(h)
        h = layers.Add(name=f"residual{i}")([h, c])
    if p["gain_bands"]:
        basis = gain_basis(int(p["gain_bands"]))
        g = layers.Dense(int(p["gain_bands"]), kernel_initializer="zeros", name="gain")(h)
        g = layers.Lambda(lambda v: ops.matmul(v, ops.convert_to_tensor(basis)), name="smooth_gain")(g)
    else:
        g = layers.Dense(n, kernel_initializer="zeros", name="gain")(h)
    g = layers.Lambda(lambda v: GAIN_LIMIT * ops.tanh(v / GAIN_LIMIT), name="bound_gain")(g)
    t = layers.Dense(p["template_channels"], activation="gelu", name="template_drive")(h)
    t = layers.Conv1D(n, p["template_width"], padding="same", name="templates",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                      bias_initializer=keras.initializers.Constant(-12.0))(t)
    y = layers.Lambda(lambda v: ops.logaddexp(v[0] + v[1], v[2]), name="mix")([x_in, g, t])
    return keras.Model([x_in, z_in], [y, g] if with_gain else y, name=ARCHITECTURE)


def weight_count(model) -> int:
    """Number of scalar weights of ``model``."""
    return int(sum(np.prod(w.shape) for w in model.weights))
