#!/usr/bin/env python3
"""Synthesise MusiCoder's texture exemplars: laser.flac, water.flac, future.flac.

Each exemplar is a 12 s, mono, 44.1 kHz, 16-bit FLAC holding one *steady*
texture: its statistics do not change over the file (no intro, no build-up,
no fade except 10 ms at both ends), so any excerpt of it is representative
of the texture a conversion transfers onto the music. Everything is rendered with a 2 s
margin on both sides that is then cut away, so event tails, filters and the
reverb are already "running" at the first sample. The result is high-passed
at 20 Hz (no DC) and peak-normalised to -1 dBFS (no clipping). Oscillators
are band-limited (additive synthesis / band-limited wavetables), so nothing
aliases.

laser
    Sci-fi laser zaps fired ~8 times a second at a slightly irregular rate
    (gamma-distributed intervals): exponential downward pitch sweeps from
    1.5-4.5 kHz to 120-500 Hz in 80-250 ms, with a 1 ms attack and a quick
    exponential decay. Each zap picks a voice: a sine with fast vibrato (FM),
    a band-limited saw/square-like harmonic stack, or a two-tone sweep; about
    half ring through a short resonant comb filter (the metallic "pew").
water
    A brook: a bed of octave-band noise whose bands have slow independent
    random (log-normal) amplitude modulation and a faster gurgle, plus
    Poisson-distributed bubbles (~40 per second): Minnaert-like damped
    sinusoids of 300 Hz-4 kHz whose pitch rises quickly as they ring,
    with damping after van den Doel's bubble model and varied amplitudes.
future
    A futuristic synth pad: an A minor 9 chord of band-limited sawtooth
    voices (three detuned, slowly drifting voices per note: chorus), a
    sub-bass sine, through a resonant low-pass (TPT state-variable filter)
    whose cutoff an LFO sweeps every 4 s (2 bars at 120 BPM), a shimmer of
    high sine partials, a 16th-note gate at 120 BPM at 40 % depth and a small
    Schroeder reverb.

Usage::

    python models/exemplars/synthesize.py [--out-dir DIR] [--only NAME ...]

By default the files are written next to this script. Only numpy, scipy and
soundfile are needed; fixed seeds make every run produce identical files.
Part of MusiCoder, AGPL-3.0-or-later (the exemplars are the project's own work).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

SR = 44100
DURATION_S = 12.0
MARGIN_S = 2.0          # rendered on both sides and cut away (steady from sample 0)
EDGE_FADE_S = 0.010
PEAK_DBFS = -1.0
SEEDS = {"laser": 1001, "water": 2002, "future": 3003}

N_OUT = int(round(DURATION_S * SR))
N_MARGIN = int(round(MARGIN_S * SR))
N_TOTAL = N_OUT + 2 * N_MARGIN


# ------------------------------------------------------------------ helpers --
def smooth_noise(rng: np.random.Generator, n: int, cutoff_hz: float,
                 control_rate: float = 400.0) -> np.ndarray:
    """Unit-variance random signal band-limited to ``cutoff_hz`` (slow modulator)."""
    m = int(np.ceil(n / SR * control_rate)) + 8
    sos = signal.butter(2, cutoff_hz, fs=control_rate, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal(m))
    x = (x - x.mean()) / (x.std() + 1e-12)
    return np.interp(np.arange(n) / SR, np.arange(m) / control_rate, x)


def comb_feedback(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """y[n] = x[n] + gain * y[n - delay], computed block-wise (vectorised)."""
    y = np.array(x, dtype=np.float64, copy=True)
    for start in range(delay, len(y), delay):
        stop = min(start + delay, len(y))
        y[start:stop] += gain * y[start - delay:stop - delay]
    return y


def allpass(x: np.ndarray, delay: int, gain: float) -> np.ndarray:
    """Schroeder all-pass y[n] = -g x[n] + x[n-D] + g y[n-D], block-wise."""
    y = -gain * x
    y[delay:] += x[:-delay]
    for start in range(delay, len(y), delay):
        stop = min(start + delay, len(y))
        y[start:stop] += gain * y[start - delay:stop - delay]
    return y


def schroeder_reverb(x: np.ndarray, rt_gain: float = 0.78) -> np.ndarray:
    combs = [(1427, 1.00), (1637, 0.98), (1811, 0.96), (1933, 0.94)]  # ~32-44 ms
    wet = sum(comb_feedback(x, d, rt_gain * g) for d, g in combs) / len(combs)
    for d, g in ((225, 0.7), (341, 0.7), (441, 0.6)):
        wet = allpass(wet, d, g)
    return wet


def finish(x: np.ndarray) -> np.ndarray:
    """Cut the margins, remove DC, 10 ms edge fades, peak-normalise to -1 dBFS."""
    sos = signal.butter(2, 20.0, btype="highpass", fs=SR, output="sos")
    x = signal.sosfiltfilt(sos, x)[N_MARGIN:N_MARGIN + N_OUT]
    x = x - x.mean()
    nf = int(round(EDGE_FADE_S * SR))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, nf))
    x[:nf] *= ramp
    x[-nf:] *= ramp[::-1]
    return x * (10 ** (PEAK_DBFS / 20) / np.max(np.abs(x)))


# -------------------------------------------------------------------- laser --
def _laser_zap(rng: np.random.Generator) -> np.ndarray:
    dur = rng.uniform(0.08, 0.25)
    f_hi = np.exp(rng.uniform(np.log(1500.0), np.log(4500.0)))
    f_lo = np.exp(rng.uniform(np.log(120.0), np.log(500.0)))
    n = int(dur * SR)
    t = np.arange(n) / SR
    # Exponential sweep, sometimes with a slightly bent (faster-then-slower) trajectory.
    bend = rng.uniform(0.7, 1.3)
    freq = f_hi * (f_lo / f_hi) ** ((t / dur) ** bend)
    voice = rng.choice(["fm", "harmonic", "dual"], p=[0.35, 0.4, 0.25])
    if voice == "fm":  # buzzy vibrato: slight FM
        fm_rate, fm_depth = rng.uniform(35.0, 90.0), rng.uniform(0.03, 0.08)
        freq = freq * (1.0 + fm_depth * np.sin(2 * np.pi * fm_rate * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(freq) / SR + rng.uniform(0, 2 * np.pi)

    def harmonic_stack(ph: np.ndarray, f: np.ndarray, slope: float, odd_only: bool) -> np.ndarray:
        out = np.zeros_like(ph)
        for k in range(1, 40):
            if odd_only and k % 2 == 0:
                continue
            # fade each harmonic out smoothly between 9 and 13 kHz: no aliasing, not harsh
            w = np.clip((13000.0 - k * f) / 4000.0, 0.0, 1.0)
            if not w.any():
                break
            out += w * np.sin(k * ph) / k ** slope
        return out

    if voice == "fm":
        wave = np.sin(phase) + 0.25 * np.sin(2 * phase)
    elif voice == "harmonic":
        wave = harmonic_stack(phase, freq, rng.uniform(1.0, 1.6), odd_only=rng.random() < 0.5)
    else:  # two sweeps a fifth / an octave apart
        ratio = rng.choice([1.5, 2.0, 1.26])
        wave = np.sin(phase) + 0.6 * harmonic_stack(ratio * phase, ratio * freq, 1.5, False)
    attack = 1.0 - np.exp(-t / rng.uniform(0.0004, 0.0012))
    decay = np.exp(-t / (dur * rng.uniform(0.25, 0.4)))
    tail = np.ones(n)
    nt = max(8, n // 8)
    tail[-nt:] = 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, nt))
    zap = wave * attack * decay * tail
    if rng.random() < 0.5:  # resonant, metallic ringing: short feedback comb
        delay = int(SR / rng.uniform(350.0, 1100.0))
        gain = rng.uniform(0.55, 0.75)
        ring = delay * int(np.ceil(np.log(1e-3) / np.log(gain)))  # until -60 dB
        zap = comb_feedback(np.concatenate([zap, np.zeros(ring)]), delay, gain)
        nt = min(len(zap) // 4, int(0.02 * SR))
        zap[-nt:] *= 0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, nt))
    return zap / (np.max(np.abs(zap)) + 1e-12)


def synth_laser(rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(N_TOTAL + SR)
    rate, shape = 8.0, 12.0  # ~8 zaps/s, slightly irregular (CV ~ 0.29)
    t = rng.uniform(0.0, 1.0 / rate)
    while t < N_TOTAL / SR:
        zap = _laser_zap(rng) * rng.uniform(0.55, 1.0)
        i = int(t * SR)
        out[i:i + len(zap)] += zap[:len(out) - i]
        t += rng.gamma(shape, 1.0 / (rate * shape))
    out = out[:N_TOTAL]
    # a touch of room so the zaps do not sound glued onto silence
    return out + 0.12 * schroeder_reverb(out, 0.7)


# -------------------------------------------------------------------- water --
def synth_water(rng: np.random.Generator) -> np.ndarray:
    n = N_TOTAL
    # Stream bed: band-split noise, each band with its own slow log-normal AM + gurgle.
    white = rng.standard_normal(n)
    bed = np.zeros(n)
    # octave bands 125 Hz .. 16 kHz; level peaks around 0.5-1 kHz and falls 6 dB/octave above
    for centre in 125.0 * 2.0 ** np.arange(8):
        octaves = np.log2(centre / 700.0)
        gain = 10 ** (-(6.0 * octaves if octaves > 0 else 3.0 - 4.0 * octaves) / 20)
        lo, hi = centre / np.sqrt(2.0), min(centre * np.sqrt(2.0), 0.45 * SR)
        sos = signal.butter(2, (lo, hi), btype="bandpass", fs=SR, output="sos")
        band = signal.sosfilt(sos, white)
        band /= band.std()
        am = np.exp(0.45 * smooth_noise(rng, n, rng.uniform(0.4, 1.2))
                    + 0.25 * smooth_noise(rng, n, rng.uniform(6.0, 12.0)))
        bed += gain * band * am
    bed *= 0.05

    # Bubbles: Poisson process, Minnaert-like damped sinusoids with rising pitch.
    out = np.zeros(n + SR)
    rate = 40.0
    count = rng.poisson(rate * n / SR)
    onsets = np.sort(rng.uniform(0.0, n / SR, count))
    for onset in onsets:
        f0 = np.exp(rng.uniform(np.log(300.0), np.log(4000.0)))
        damping = 0.043 * f0 + 0.0014 * f0 ** 1.5          # van den Doel (2005)
        tau = float(np.clip(rng.uniform(1.2, 3.0) / damping, 0.003, 0.06))
        rise = rng.uniform(0.12, 0.4)                       # pitch rise per time constant
        m = int(6.0 * tau * SR)
        t = np.arange(m) / SR
        freq = f0 * (1.0 + rise * np.minimum(t / tau, 3.0))  # at most x2.2
        phase = 2 * np.pi * np.cumsum(freq) / SR
        env = np.exp(-t / tau) * (1.0 - np.exp(-t / 0.0004))
        amp = np.exp(rng.normal(0.0, 0.6)) * (f0 / 1000.0) ** -0.35
        i = int(onset * SR)
        out[i:i + m] += amp * env * np.sin(phase)
    bubbles = 0.12 * out[:n]
    return bed + bubbles


# ------------------------------------------------------------------- future --
def _midi_hz(m: float) -> float:
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def _saw_table(f_max: float, size: int = 8192) -> np.ndarray:
    """One band-limited sawtooth cycle: harmonics up to 0.45 * SR at ``f_max``."""
    k_max = max(1, int(0.45 * SR / f_max))
    ph = 2 * np.pi * np.arange(size) / size
    k = np.arange(1, k_max + 1)[:, None]
    # gentle roll-off of the top harmonics (softens the "buzz", no Gibbs ringing)
    taper = np.cos(0.5 * np.pi * (k - 1) / k_max) ** 2 if k_max > 1 else np.ones_like(k)
    table = (2.0 / np.pi) * np.sum(taper * np.sin(k * ph) / k, axis=0)
    return np.append(table, table[0])


def _wavetable_osc(table: np.ndarray, freq: np.ndarray, phase0: float) -> np.ndarray:
    size = len(table) - 1
    ph = (phase0 + np.cumsum(freq) / SR) % 1.0
    return np.interp(ph * size, np.arange(size + 1), table)


def _svf_lowpass(x: np.ndarray, cutoff: np.ndarray, q: float) -> np.ndarray:
    """Time-varying resonant low-pass: TPT state-variable filter (Zavalishin)."""
    g = np.tan(np.pi * np.clip(cutoff, 20.0, 0.45 * SR) / SR)
    k = 1.0 / q
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    a3 = g * a2
    y = np.empty_like(x)
    ic1 = ic2 = 0.0
    for i, (v0, b1, b2, b3) in enumerate(zip(x.tolist(), a1.tolist(), a2.tolist(), a3.tolist())):
        v3 = v0 - ic2
        v1 = b1 * ic1 + b2 * v3
        v2 = ic2 + b2 * ic1 + b3 * v3
        ic1 = 2.0 * v1 - ic1
        ic2 = 2.0 * v2 - ic2
        y[i] = v2
    return y


def synth_future(rng: np.random.Generator) -> np.ndarray:
    n = N_TOTAL
    t = np.arange(n) / SR
    bpm = 120.0
    chord = [45, 52, 55, 59, 60, 64]  # A2 E3 G3 B3 C4 E4: A minor 9
    pad = np.zeros(n)
    for idx, note in enumerate(chord):
        f = _midi_hz(note)
        table = _saw_table(f * 1.01)
        level = 1.0 if idx < 2 else 0.7
        for cents in (-9.0, 0.0, 8.0):
            drift = 3.0 * np.sin(2 * np.pi * rng.uniform(0.08, 0.35) * t + rng.uniform(0, 2 * np.pi))
            freq = f * 2.0 ** ((cents + rng.uniform(-2, 2) + drift) / 1200.0)
            pad += level * _wavetable_osc(table, freq, rng.uniform())
    pad /= np.std(pad)

    # Resonant low-pass swept by an LFO: one cycle every 2 bars (4 s at 120 BPM).
    lfo_hz = bpm / 60.0 / 8.0
    lfo = np.sin(2 * np.pi * lfo_hz * t) + 0.25 * np.sin(4 * np.pi * lfo_hz * t + 1.0)
    cutoff = 1400.0 * 2.0 ** (0.9 * lfo)          # ~ 650 Hz .. 3 kHz
    pad = _svf_lowpass(pad, cutoff, q=4.0)

    sub = 0.45 * np.sin(2 * np.pi * _midi_hz(33) * t)   # A1 sine
    shimmer = np.zeros(n)
    for note in chord[2:]:
        for mult in (2.0, 4.0):
            trem = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 1.3) * t + rng.uniform(0, 2 * np.pi))
            detune = 2.0 ** (rng.uniform(-4, 4) / 1200.0)
            shimmer += trem * np.sin(2 * np.pi * _midi_hz(note) * mult * detune * t
                                     + rng.uniform(0, 2 * np.pi)) / mult
    shimmer *= 0.12

    # 16th-note gate at 120 BPM (8 per second), soft edges, 40 % depth, beat accents.
    sixteenth = bpm / 60.0 * 4.0
    gate = 0.5 + 0.5 * np.tanh(5.0 * np.cos(2 * np.pi * sixteenth * t))
    accent = 0.92 + 0.08 * (0.5 + 0.5 * np.cos(2 * np.pi * sixteenth / 4.0 * t)) ** 6  # on the beat
    gate = (1.0 - 0.4 * (1.0 - gate)) * accent
    dry = (pad + sub) * gate + shimmer
    return dry + 0.25 * schroeder_reverb(dry, 0.8)


# --------------------------------------------------------------------- main --
SYNTHS = {"laser": synth_laser, "water": synth_water, "future": synth_future}


def render(name: str) -> np.ndarray:
    rng = np.random.default_rng(SEEDS[name])
    return finish(SYNTHS[name](rng))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Synthesise the texture exemplars (FLAC).")
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent,
                   help="where to write <name>.flac (default: next to this script)")
    p.add_argument("--only", nargs="+", choices=sorted(SYNTHS), help="render only these")
    args = p.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(SYNTHS):
        x = render(name)
        path = args.out_dir / f"{name}.flac"
        sf.write(str(path), x.astype(np.float32), SR, format="FLAC", subtype="PCM_16")
        rms = 20 * np.log10(np.sqrt(np.mean(x ** 2)))
        print(f"wrote {path} ({len(x) / SR:.1f} s, peak {20 * np.log10(np.max(np.abs(x))):.1f} dBFS, "
              f"RMS {rms:.1f} dBFS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
