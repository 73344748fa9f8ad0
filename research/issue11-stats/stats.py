"""Prototype: band-statistics transfer. The music's fine structure, the exemplar's band
envelope statistics (level, spread) and its events (envelopes placed on the music)."""
from __future__ import annotations
import dataclasses
import numpy as np
import sys
sys.path.insert(0, "/work/main")
from musicoder import spectral

SR = spectral.SAMPLE_RATE
FREQS = np.arange(spectral.N_BINS) * SR / spectral.N_FFT


def filterbank(n_bands=48, lo=30.0, hi=16000.0):
    """(n_bands, N_BINS) triangular weights, log-spaced, summing to 1 over each bin in range."""
    centres = np.geomspace(lo, hi, n_bands)
    f = np.clip(FREQS, lo, hi)
    W = np.zeros((n_bands, len(FREQS)))
    lf, lc = np.log(np.maximum(f, 1e-3)), np.log(centres)
    for b in range(n_bands):
        left = lc[b - 1] if b > 0 else lc[b] - 1
        right = lc[b + 1] if b < n_bands - 1 else lc[b] + 1
        up = (lf - left) / (lc[b] - left)
        down = (right - lf) / (right - lc[b])
        W[b] = np.clip(np.minimum(up, down), 0, 1)
    W[0, f <= centres[0]] = 1.0
    W[-1, f >= centres[-1]] = 1.0
    W /= np.maximum(W.sum(axis=0, keepdims=True), 1e-9)
    return W, centres


def band_env(log_mag, W):
    """(B, T) natural-log band amplitude envelopes of a (N_BINS, T) log magnitude."""
    power = np.exp(2 * log_mag)
    return 0.5 * np.log(W @ power + 1e-12)


def onsets(env, min_gap=6):
    """Frame indices of onsets: peaks of the summed positive band flux."""
    flux = np.maximum(np.diff(env, axis=1, prepend=env[:, :1]), 0).mean(axis=0)
    thr = flux.mean() + 0.5 * flux.std()
    idx = [t for t in range(1, len(flux) - 1) if flux[t] > thr and flux[t] >= flux[t - 1] and flux[t] >= flux[t + 1]]
    out = []
    for t in idx:
        if not out or t - out[-1] >= min_gap:
            out.append(t)
    return np.array(out, int), flux


@dataclasses.dataclass
class P:
    keep_low: float = 0.7     # weight of the music's own normalised dynamics below the crossover
    keep_high: float = 0.3    # above it
    crossover_hz: float = 4000.0
    level: float = 1.0        # how far band levels move to the exemplar's (0..1), above crossover
    spread: float = 1.0       # how far spreads move, above crossover
    level_low: float = 1.0
    spread_low: float = 1.0
    align: str = "onsets"     # "tile" or "onsets"
    fine_high: float = 0.0    # weight of the exemplar's fine structure above crossover
    n_bands: int = 48


def make_transform(ex_log_mag, p=P()):
    W, centres = filterbank(p.n_bands)
    e_s = band_env(ex_log_mag, W)
    mu_s, sd_s = e_s.mean(1, keepdims=True), e_s.std(1, keepdims=True) + 1e-6
    z_s_full = (e_s - mu_s) / sd_s
    ons_s, _ = onsets(e_s)
    if len(ons_s) == 0:
        ons_s = np.array([0])
    fine_s = ex_log_mag - (W.T @ e_s)  # the exemplar's structure within its bands
    low = (centres < p.crossover_hz)[:, None]
    keep = np.where(low, p.keep_low, p.keep_high)
    lev = np.where(low, p.level_low, p.level)
    spr = np.where(low, p.spread_low, p.spread)

    Ts = e_s.shape[1]
    quiet = int(np.argmin(e_s.mean(0)))  # the exemplar's quietest frame: between events
    ev_len = np.diff(np.append(ons_s, Ts))

    def place(T, ons_x):
        """(T,) exemplar frame index for each output frame."""
        if p.align == "tile" or len(ons_x) == 0:
            return np.arange(T) % Ts
        if p.align == "events":  # one exemplar event per music onset, in the exemplar's order
            idx = np.full(T, quiet)
            for k, a in enumerate(ons_x):
                b = ons_x[k + 1] if k + 1 < len(ons_x) else T
                j = k % len(ons_s)
                n = min(b - a, ev_len[j])
                idx[a:a + n] = ons_s[j] + np.arange(n)
            return idx
        idx = np.empty(T, int)
        starts = list(ons_x)
        if starts[0] != 0:
            starts = [0] + starts
        k = 0
        for i, a in enumerate(starts):
            b = starts[i + 1] if i + 1 < len(starts) else T
            src = ons_s[k % len(ons_s)] if a in ons_x else 0
            k += a in ons_x
            idx[a:b] = (src + np.arange(b - a)) % Ts
        return idx

    def transform(log_x):
        e_x = band_env(log_x, W)
        mu_x, sd_x = e_x.mean(1, keepdims=True), e_x.std(1, keepdims=True) + 1e-6
        z_x = (e_x - mu_x) / sd_x
        ons_x, _ = onsets(e_x)
        idx = place(log_x.shape[1], ons_x)
        z = keep * z_x + (1 - keep) * z_s_full[:, idx]
        z /= z.std(1, keepdims=True) + 1e-6
        mu = mu_x + lev * (mu_s - mu_x)
        sd = sd_x + spr * (sd_s - sd_x)
        e_y = mu + sd * z
        out = log_x + W.T @ (e_y - e_x)
        if p.fine_high > 0:
            hi = (FREQS >= p.crossover_hz)[:, None]
            fine_x = log_x - W.T @ e_x
            mixed = (1 - p.fine_high) * fine_x + p.fine_high * fine_s[:, idx]
            out = np.where(hi, W.T @ e_y + mixed, out)
        return out.astype(np.float32)
    return transform
