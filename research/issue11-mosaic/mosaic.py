"""Exemplar mosaicing for MusiCoder textures (issue 11): the exemplar's own frames,
placed by the music. Magnitudes only: the engine's Griffin-Lim, started from the
music's phase, makes the audio. Nothing is trained; an exemplar is analysed in
milliseconds (plus its STFT).

Two methods.

A. Event mosaic (:func:`make_event_transform`, the one recommended; defaults in
   :class:`EventParams`), a hybrid:
   * below a crossover (3 kHz, raised-cosine over 2 octaves in log frequency) the output
     is the music's own magnitude (melody and harmony untouched), amplitude-modulated by
     the sequenced exemplar's band envelopes (each band / its clip mean, exponent
     ``low_am`` = 0.2): the exemplar's movement (zaps, bubbles, gating) in the music's
     own partials;
   * above it, the exemplar's own STFT frames, sequenced by a playhead (Concatenator-
     like, deterministic): at each music onset (spectral-flux peaks) it jumps to the
     exemplar event (exemplar onset) whose first frame best matches the music's band
     spectrum there; between onsets the event plays as recorded and then holds its
     last frame (no events the music did not ask for); each frame's level follows the
     music's level above the crossover with exponent ``gain_follow`` = 0.75.
   Cost: two band projections and a gather, ~20-60 ms per 10 s clip.

B. NMF mosaic in the manner of *Let it Bee* (Driedger, Prätzlich & Müller, ISMIR 2015;
   :func:`make_transform`, :class:`Params`), tried first and kept for comparison:
   1. dictionary: the exemplar's magnitude frames, every ``step``-th, in pitch-shifted
      copies (frequency-warped magnitudes, ±6 semitones), also compressed to 64
      log-frequency bands (semitone spacing, ≥ 1 bin, up to 1.5 kHz, sixth-octave above);
   2. fit: candidates per music frame by cosine similarity with continuity (diagonal
      smoothing: exemplar frames play in order) and optional repetition restriction,
      then KL multiplicative updates of V ≈ W·H restricted to the candidates, then
      polyphony (the p largest kept);
   3. render M = W_full·H, blend with the music (geometric or power sum).

Units and shapes: magnitudes are linear STFT amplitudes, (N_BINS=1025, n_frames)
float32, 44.1 kHz, n_fft 2048, hop 512 (musicoder.spectral); log-magnitudes are natural
log (spectral.to_log). Frequencies in Hz, times in STFT frames (11.6 ms).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.ndimage import maximum_filter1d

SAMPLE_RATE = 44100
N_FFT = 2048
N_BINS = N_FFT // 2 + 1
EPS = 1e-9


def band_matrix(fmin: float = 40.0, split_hz: float = 1500.0, hi_per_octave: int = 6,
                n_bins: int = N_BINS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular log-frequency filterbank. Returns (n_bands, n_bins) float32.

    Centres are a semitone apart from ``fmin`` to ``split_hz`` (but never closer than one
    STFT bin, 21.5 Hz), ``1/hi_per_octave`` octave apart above, up to Nyquist. Each row
    is a triangle from the previous centre to the next, with unit peak.
    """
    bin_hz = sr / (2 * (n_bins - 1))
    centres = [fmin]
    while True:
        c = centres[-1]
        ratio = 2 ** (1 / 12) if c < split_hz else 2 ** (1 / hi_per_octave)
        nxt = max(c * ratio, c + bin_hz)
        if nxt >= sr / 2:
            break
        centres.append(nxt)
    edges = np.array([centres[0] - bin_hz] + centres + [sr / 2], dtype=np.float64)
    f = np.arange(n_bins) * bin_hz
    fb = np.zeros((len(centres), n_bins), dtype=np.float32)
    for i in range(len(centres)):
        lo, c, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (f - lo) / (c - lo)
        down = (hi - f) / (hi - c)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
    return fb


def pitch_shift_magnitude(mag: np.ndarray, semitones: float) -> np.ndarray:
    """Magnitude frames transposed by frequency warping: out[k] = mag[k / 2^(s/12)].

    mag: (n_bins, n) linear magnitude. Linear interpolation between bins; bins whose
    source lies above Nyquist are zero. Returns (n_bins, n) float32.
    """
    n_bins = mag.shape[0]
    src = np.arange(n_bins) / 2 ** (semitones / 12)
    k0 = np.floor(src).astype(int)
    frac = (src - k0).astype(np.float32)[:, None]
    valid = k0 < n_bins - 1
    out = np.zeros_like(mag, dtype=np.float32)
    k = k0[valid]
    out[valid] = mag[k] * (1 - frac[valid]) + mag[k + 1] * frac[valid]
    return out


@dataclasses.dataclass(frozen=True)
class Dictionary:
    """Atoms of one exemplar.

    full: (N_BINS, n_atoms) float32 linear magnitudes; comp: (n_bands, n_atoms) float32,
    the same atoms through ``bands`` (full_t, comp_t: atom-major copies); each compressed atom has unit L1 norm (full is
    scaled alike). Atom index = shift_index * n_per_shift + time_index, time_index being
    the exemplar frame number divided by ``step``. mean_band: (n_bands,) the exemplar's
    average band magnitude (linear).
    """

    full: np.ndarray
    comp: np.ndarray
    full_t: np.ndarray
    comp_t: np.ndarray
    bands: np.ndarray
    n_shifts: int
    n_per_shift: int
    step: int
    mean_band: np.ndarray


def build_dictionary(ex_mag: np.ndarray, shifts=tuple(range(-6, 7)), step: int = 6,
                     bands: np.ndarray | None = None, max_frames: int = 862,
                     floor_db: float = -50.0) -> Dictionary:
    """The exemplar's frames as mosaic atoms.

    ex_mag: (N_BINS, n_ex_frames) the exemplar's linear magnitude (at most ``max_frames``
    frames are used, ~12.8 s). shifts: transpositions in semitones. step: keep every
    step-th frame. Atoms are normalised to unit L1 band norm, but never divided by less
    than the loudest atom's norm × 10^(floor_db/20), so that near-silent frames stay
    small instead of being blown up (they stay in, so indexing stays regular).
    """
    if bands is None:
        bands = band_matrix()
    ex = np.asarray(ex_mag, dtype=np.float32)[:, :max_frames]
    frames = ex[:, ::step]
    full = np.concatenate([pitch_shift_magnitude(frames, s) for s in shifts], axis=1)
    comp = bands @ full
    norm = comp.sum(axis=0)
    loud = norm.max()
    norm = np.maximum(norm, loud * 10 ** (floor_db / 20))
    comp = comp / norm
    full = full / norm
    mean_band = (bands @ ex).mean(axis=1)
    comp = comp.astype(np.float32)
    return Dictionary(full=full, comp=comp, full_t=np.ascontiguousarray(full.T),
                      comp_t=np.ascontiguousarray(comp.T),
                      bands=bands, n_shifts=len(shifts), n_per_shift=frames.shape[1], step=step,
                      mean_band=mean_band.astype(np.float32))


def _continuity(c: np.ndarray, d: Dictionary, half: int) -> np.ndarray:
    """Diagonal smoothing of frame-major scores: out[t, j] = Σ_{|k|≤half} c[t+k·step, j+k]
    within one pitch shift (atoms of adjacent exemplar frames, music frames ``step``
    apart). c: (T, n_atoms). Returns the same shape."""
    if half <= 0:
        return c
    T = c.shape[0]
    a = c.reshape(T, d.n_shifts, d.n_per_shift)
    out = a.copy()
    for k in range(1, half + 1):
        dt = k * d.step
        if k >= d.n_per_shift or dt >= T:
            break
        out[:-dt, :, :-k] += a[dt:, :, k:]   # future neighbour: atom j+k at t+k·step
        out[dt:, :, k:] += a[:-dt, :, :-k]   # past neighbour: atom j−k at t−k·step
    return out.reshape(c.shape)


def _top_p_mask(h: np.ndarray, p: int) -> np.ndarray:
    """Boolean (n_atoms, T): the p largest entries of each column."""
    if p >= h.shape[0]:
        return np.ones_like(h, dtype=bool)
    thresh = np.partition(h, h.shape[0] - p, axis=0)[h.shape[0] - p]
    return h >= thresh[None, :]


def candidate_scores(v: np.ndarray, d: Dictionary, continuity: int = 3, repetition: int = 3,
                     power: float = 0.5) -> np.ndarray:
    """How well each atom matches each music frame, with Let it Bee's restrictions.

    Cosine similarity of power-compressed (``power``) band spectra, then continuity
    (diagonal smoothing, :func:`_continuity`: an atom scores well where the exemplar's
    next frames also match the music's next frames) and repetition (a score is halved
    where it is not its atom's maximum within ±repetition frames, so one atom is not
    held on consecutive frames unless the diagonal carries it on).
    v: (n_bands, T) linear. Returns frame-major (T, n_atoms) float32.
    """
    w = d.comp ** power
    w = w / (np.linalg.norm(w, axis=0, keepdims=True) + EPS)
    vv = np.maximum(v, 0.0) ** power
    vv = vv / (np.linalg.norm(vv, axis=0, keepdims=True) + EPS)
    c = vv.T.astype(np.float32) @ w                                  # (T, n_atoms)
    c = _continuity(c, d, continuity)
    if repetition > 0:
        peak = maximum_filter1d(c, size=2 * repetition + 1, axis=0, mode="constant")
        c[c < peak] *= 0.5
    return c


def fit_activations(v: np.ndarray, d: Dictionary, iterations: int = 20, repetition: int = 3,
                    polyphony: int = 8, continuity: int = 3, candidates: int = 24
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Sparse activations with V ≈ d.comp·H: the ``candidates`` best-scoring atoms per
    frame (:func:`candidate_scores`) get KL multiplicative updates (W fixed), then only
    the ``polyphony`` largest per frame are kept.

    v: (n_bands, T) linear band magnitudes of the music. Returns (idx, h): (T, p) int
    atom indices and (T, p) float32 non-negative gains (H in sparse form:
    H[idx[t, i], t] = h[t, i]). Cost: one (T × n_bands × n_atoms) matmul; the updates
    touch only T × candidates × n_bands numbers.
    """
    vt = np.maximum(v, EPS).T.astype(np.float32)                    # (T, n_bands)
    c = candidate_scores(v, d, continuity, repetition)
    n = c.shape[1]
    k = min(candidates, n)
    idx = np.argpartition(c, n - k, axis=1)[:, -k:]                  # (T, k)
    wk = d.comp_t[idx]                                               # (T, k, n_bands)
    h = np.take_along_axis(c, idx, axis=1) ** 4                      # favour the best at the start
    h *= vt.sum(axis=1, keepdims=True) / (np.einsum("tkb,tk->t", wk, h)[:, None] + EPS)
    denom = wk.sum(axis=2) + EPS                                     # (T, k)
    for _ in range(iterations):
        approx = np.einsum("tkb,tk->tb", wk, h) + EPS
        h *= np.einsum("tkb,tb->tk", wk, vt / approx) / denom
    p = min(polyphony, k)
    top = np.argpartition(h, k - p, axis=1)[:, -p:]
    return np.take_along_axis(idx, top, axis=1), np.take_along_axis(h, top, axis=1).astype(np.float32)


def render(idx: np.ndarray, h: np.ndarray, d: Dictionary) -> np.ndarray:
    """M = d.full · H for sparse H (idx, h: (T, p), see :func:`fit_activations`):
    (N_BINS, T) float32 linear magnitude of the mosaic."""
    m = np.zeros((idx.shape[0], d.full_t.shape[1]), dtype=np.float32)  # frame-major
    for i in range(idx.shape[1]):
        m += d.full_t[idx[:, i]] * h[:, i:i + 1]
    return m.T


def equalise_to(v: np.ndarray, mean_band: np.ndarray, amount: float) -> np.ndarray:
    """The music's band magnitudes re-coloured towards the exemplar's average spectrum.

    v: (n_bands, T) linear; mean_band: (n_bands,). amount 0: unchanged, 1: the music's
    time-average band spectrum replaced by the exemplar's (overall level kept).
    """
    if amount == 0:
        return v
    mv = v.mean(axis=1) + EPS
    me = mean_band * (mv.sum() / (mean_band.sum() + EPS)) + EPS
    return v * ((me / mv) ** amount)[:, None]


@dataclasses.dataclass(frozen=True)
class Params:
    """Method parameters (see module doc). blend: "geo" | "add" | "mosaic"; b: the
    mosaic's share; eq: equalisation of the music towards the exemplar before the fit;
    level_match: match each mosaic frame's band-summed level to the music's (0..1)."""

    shifts: tuple = tuple(range(-6, 7))
    step: int = 6
    iterations: int = 20
    repetition: int = 0
    polyphony: int = 8
    continuity: int = 3
    candidates: int = 24
    eq: float = 0.5
    blend: str = "geo"
    b: float = 0.5
    level_match: float = 1.0


def mosaic_magnitude(x: np.ndarray, d: Dictionary, p: Params) -> np.ndarray:
    """The music's magnitude x (N_BINS, T) re-made from the exemplar's atoms. Returns M,
    (N_BINS, T) float32 linear, before blending."""
    v = d.bands @ x
    v_fit = equalise_to(v, d.mean_band, p.eq)
    idx, h = fit_activations(v_fit, d, p.iterations, p.repetition, p.polyphony, p.continuity,
                             p.candidates)
    m = render(idx, h, d)
    if p.level_match > 0:
        lm = (d.bands @ m).sum(axis=0) + EPS
        lv = v_fit.sum(axis=0) + EPS
        m *= ((lv / lm) ** p.level_match)[None, :]
    return m.astype(np.float32)


def blend(x: np.ndarray, m: np.ndarray, p: Params) -> np.ndarray:
    """Music x and mosaic m (both (N_BINS, T) linear) → output magnitude."""
    if p.blend == "mosaic":
        return m
    if p.blend == "geo":
        return np.exp((1 - p.b) * np.log(x + 1e-7) + p.b * np.log(m + 1e-7)).astype(np.float32)
    if p.blend == "add":
        return np.sqrt((1 - p.b) * x * x + p.b * m * m).astype(np.float32)
    raise ValueError(p.blend)


def make_transform(ex_mag: np.ndarray, p: Params = Params()):
    """A ``musicoder.engine.LogMagTransform`` for one exemplar (built in well under a
    second from its magnitude, (N_BINS, n) linear): log-magnitude (N_BINS, T) in nats →
    log-magnitude out."""
    d = build_dictionary(ex_mag, p.shifts, p.step)

    def transform(log_mag: np.ndarray) -> np.ndarray:
        x = np.exp(log_mag).astype(np.float32)
        y = blend(x, mosaic_magnitude(x, d, p), p)
        return np.log(np.maximum(y, 1e-5)).astype(np.float32)

    transform.dictionary = d
    return transform


# ---------------------------------------------------------------------------------
# Event mosaic: the exemplar replayed by a playhead that the music's onsets re-trigger,
# over the bands above a crossover; the music kept below it.
# ---------------------------------------------------------------------------------

def onset_envelope(mag: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Spectral flux: mean over bands of the positive first difference of the log band
    magnitude (nats per frame). mag: (N_BINS, T) linear. Returns (T,) float32, 0 at t=0."""
    lb = np.log(bands @ mag + 1e-6)
    flux = np.maximum(np.diff(lb, axis=1), 0.0).mean(axis=0)
    return np.concatenate([[0.0], flux]).astype(np.float32)


def pick_onsets(env: np.ndarray, delta: float = 0.5, wait: int = 4, window: int = 8) -> np.ndarray:
    """Frame indices of onsets: local maxima of ``env`` (over a window of window+3
    frames, mostly before t) that exceed the local mean by ``delta`` standard
    deviations of env, at least ``wait`` frames apart. Returns int (n_onsets,)."""
    T = len(env)
    mx = maximum_filter1d(env, size=window + 3, origin=(window - 2) // 2)
    kernel = np.ones(2 * window + 1) / (2 * window + 1)
    local_mean = np.convolve(env, kernel, mode="same")
    thr = local_mean + delta * env.std()
    cand = np.flatnonzero((env >= mx) & (env > thr))
    out, last = [], -wait - 1
    for t in cand:
        if t - last > wait:
            out.append(t)
            last = t
    return np.array(out, dtype=int)


@dataclasses.dataclass(frozen=True)
class EventParams:
    """crossover_hz: below it the output is the music, above it the exemplar (a cosine
    ramp over ``ramp_octaves`` centred on it); gain_follow: 0 = the exemplar keeps its
    own envelope (level-matched to the music's high band overall), 1 = each frame is
    set to the music's high-band level; low_morph: geometric morph of the kept music
    towards the exemplar's average spectrum (0..1); free_run: whether the playhead runs
    on into the exemplar's next events between music onsets (else it loops the current
    event); min_event: frames an event plays before another onset can re-trigger it;
    tilt: 0 = the exemplar part has the music's level above the crossover, 1 = the
    exemplar's own ratio of energy above to below the crossover (relative to the music's
    level below it), in between geometric; low_mix: power share of the sequenced
    exemplar frames added below the crossover too (at the music's level there);
    low_am: exponent of the sequenced exemplar's band envelopes (each band divided by its
    mean over the clip) imposed on the music below the crossover, an amplitude
    modulation that carries the exemplar's movement (bubbles, zaps, gating) into the
    music's own partials without moving them; low_geo: geometric morph of the kept music
    towards the sequenced exemplar frames (each frame matched to the music's level),
    X^(1−b)·E^b: the morph reference, but with the exemplar placed by the music's onsets
    instead of tiled."""

    crossover_hz: float = 3000.0
    ramp_octaves: float = 2.0
    gain_follow: float = 0.75
    low_morph: float = 0.0
    free_run: bool = False
    loop: bool = False
    min_event: int = 4
    onset_delta: float = 0.5
    tilt: float = 0.0
    low_mix: float = 0.0
    low_am: float = 0.2
    low_geo: float = 0.0


@dataclasses.dataclass(frozen=True)
class EventExemplar:
    """One exemplar analysed for the event mosaic: mag (N_BINS, n) linear; starts: int
    frame indices of its events (onsets); bands (n_bands, N_BINS); band_feat (n, n_bands)
    L2-normalised sqrt band spectra for choosing which event answers an onset;
    mean_spec (N_BINS,) its average magnitude."""

    mag: np.ndarray
    starts: np.ndarray
    bands: np.ndarray
    band_feat: np.ndarray
    mean_spec: np.ndarray


def analyse_exemplar(ex_mag: np.ndarray, p: EventParams = EventParams(), max_frames: int = 2600) -> EventExemplar:
    """Everything the event mosaic needs from an exemplar (its magnitude, (N_BINS, n)
    linear, ≤ max_frames ≈ 30 s used), in a few milliseconds: no training."""
    mag = np.ascontiguousarray(ex_mag[:, :max_frames], dtype=np.float32)
    bands = band_matrix()
    starts = pick_onsets(onset_envelope(mag, bands), p.onset_delta, wait=p.min_event)
    if len(starts) == 0:
        starts = np.array([0])
    f = np.sqrt(bands @ mag).T
    f /= np.linalg.norm(f, axis=1, keepdims=True) + EPS
    return EventExemplar(mag=mag, starts=starts, bands=bands, band_feat=f.astype(np.float32),
                         mean_spec=mag.mean(axis=1))


def playhead(x: np.ndarray, ex: EventExemplar, p: EventParams) -> np.ndarray:
    """Exemplar frame to play at each music frame. x: (N_BINS, T) linear music magnitude.

    At each music onset the playhead jumps to the exemplar event whose first frame best
    matches the music's band spectrum there (cosine; the event used last is skipped);
    between onsets it advances one frame per frame (the exemplar plays as recorded),
    wrapping at the end (free_run) or, at the end of the current event, looping it
    (loop) or holding its last frame (not loop).
    Returns int (T,) frame indices into ex.mag.
    """
    T = x.shape[1]
    n = ex.mag.shape[1]
    onsets = set(pick_onsets(onset_envelope(x, ex.bands), p.onset_delta, wait=p.min_event).tolist())
    fx = np.sqrt(ex.bands @ x)
    fx /= np.linalg.norm(fx, axis=0, keepdims=True) + EPS
    sim = ex.band_feat[ex.starts] @ fx                       # (n_events, T)
    ends = np.append(ex.starts[1:], n)
    pos = np.empty(T, dtype=int)
    cur, ev, since = int(ex.starts[0]), 0, 0
    for t in range(T):
        if t in onsets and since >= p.min_event:
            s = sim[:, t].copy()
            if len(s) > 1:
                s[ev] = -np.inf
            ev = int(np.argmax(s))
            cur, since = int(ex.starts[ev]), 0
        pos[t] = cur
        cur += 1
        since += 1
        if p.free_run:
            if cur >= n:
                cur = 0
        elif cur >= ends[ev]:
            cur = int(ex.starts[ev]) if p.loop else int(ends[ev]) - 1
    return pos


def crossover_mask(p: EventParams, n_bins: int = N_BINS, sr: int = SAMPLE_RATE) -> np.ndarray:
    """(n_bins, 1) float32: 0 below the ramp, 1 above, raised-cosine in log frequency."""
    f = np.maximum(np.arange(n_bins) * sr / (2 * (n_bins - 1)), 1.0)
    z = np.log2(f / p.crossover_hz) / p.ramp_octaves + 0.5
    return (0.5 - 0.5 * np.cos(np.pi * np.clip(z, 0.0, 1.0)))[:, None].astype(np.float32)


def event_mosaic(x: np.ndarray, ex: EventExemplar, p: EventParams = EventParams()) -> np.ndarray:
    """Output magnitude: the music below the crossover, the exemplar's own frames
    (sequenced by :func:`playhead`) above it. x: (N_BINS, T) linear. Returns (N_BINS, T)
    float32 linear."""
    mask = crossover_mask(p)
    pos = playhead(x, ex, p)
    e = ex.mag[:, pos]
    lx = np.sqrt(((mask * x) ** 2).sum(axis=0)) + EPS         # music's level above the crossover
    le = np.sqrt(((mask * e) ** 2).sum(axis=0)) + EPS
    overall = np.sqrt(np.mean(lx ** 2) / np.mean(le ** 2))
    g = overall * (lx / (le * overall)) ** p.gain_follow
    if p.tilt != 0:
        m2 = mask[:, 0] ** 2
        r_ex = (m2 @ ex.mean_spec ** 2) / (((1 - mask[:, 0]) ** 2) @ ex.mean_spec ** 2 + EPS)
        r_x = np.mean(lx ** 2) / (np.mean((((1 - mask) * x) ** 2).sum(axis=0)) + EPS)
        g = g * (r_ex / r_x) ** (0.5 * p.tilt)
    e = e * g[None, :]
    low = x
    if p.low_morph > 0:
        ms = ex.mean_spec * (np.sqrt(np.mean(x ** 2)) / (np.sqrt(np.mean(ex.mean_spec ** 2)) + EPS))
        low = np.exp((1 - p.low_morph) * np.log(x + 1e-7) + p.low_morph * np.log(ms[:, None] + 1e-7))
    if p.low_geo > 0:
        e_all = ex.mag[:, pos]
        sc = np.sqrt((x ** 2).sum(axis=0) / ((e_all ** 2).sum(axis=0) + EPS))
        low = np.exp((1 - p.low_geo) * np.log(low + 1e-7) + p.low_geo * np.log(e_all * sc[None, :] + 1e-7))
    if p.low_am > 0:
        eb = np.log(ex.bands @ ex.mag[:, pos] + 1e-7)
        eb -= eb.mean(axis=1, keepdims=True)                    # log of envelope / its mean
        up = ex.bands / (ex.bands.sum(axis=0, keepdims=True) + EPS)   # bands → bins (weights)
        low = low * np.exp(p.low_am * (up.T @ eb))
    if p.low_mix > 0:
        e_all = ex.mag[:, pos]
        lxl = np.sqrt((((1 - mask) * x) ** 2).sum(axis=0)) + EPS
        lel = np.sqrt((((1 - mask) * e_all) ** 2).sum(axis=0)) + EPS
        el = e_all * (lxl / lel)[None, :]
        low = np.sqrt((1 - p.low_mix) * low ** 2 + p.low_mix * el ** 2)
    return ((1 - mask) * low + mask * e).astype(np.float32)


def make_event_transform(ex_mag: np.ndarray, p: EventParams = EventParams()):
    """``musicoder.engine.LogMagTransform`` for the event mosaic of one exemplar
    (ex_mag: (N_BINS, n) linear): log-magnitude (N_BINS, T) nats → same."""
    ex = analyse_exemplar(ex_mag, p)

    def transform(log_mag: np.ndarray) -> np.ndarray:
        y = event_mosaic(np.exp(log_mag).astype(np.float32), ex, p)
        return np.log(np.maximum(y, 1e-5)).astype(np.float32)

    transform.exemplar = ex
    return transform
