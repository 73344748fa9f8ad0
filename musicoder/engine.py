"""The conversion pipeline as one plain function: samples in, samples out.

analyse (STFT) → transfer (a texture's band-statistics transfer on the log-magnitude,
:mod:`musicoder.texture`, or none, blended with the music by ``strength``) → reconstruct
(phase retrieval at a quality level, started from the music's own phase) → level
(loudness or peak guard). :func:`musicoder.convert.convert` (what the server's workers
call) adds the encoding and the spectrogram, :func:`musicoder.convert.convert_file` (what
the CLI calls) streams a whole song from file to file; the benchmark calls :func:`render`.

Any length, in blocks. :func:`render_blocks` works through a song in blocks of
BLOCK_FRAMES frames, each rendered with a margin of frames of the song on either side that
are then dropped, and gives the same samples as one pass over the whole clip (within
1e-5 of full scale), because every step is either whole-song or local:

* the transfer's statistics are whole-song: a first pass streams the mid's band
  envelopes and mean power (48 × frames: 10 MB for 10 minutes) into the transfer's plan
  (:class:`musicoder.texture.Transfer`), and each block applies its slice of it;
* an STFT frame spans N_FFT / HOP = 4 hops, so one Griffin-Lim projection (ISTFT then
  STFT) mixes a frame with its 3 neighbours on either side: after K iterations a frame
  depends only on the frames within 3·K, and the starting phase and the block's own
  edges (zero-padded frames, a shorter window sum) are wrong only in the 2 frames at
  either end. A margin of 3·K + 8 frames keeps every kept frame exact to float
  rounding; but the influence of a frame falls off fast with distance, so
  :func:`margin_frames` takes 1.5·K + 8 (HIFI: 56 frames, 0.65 s), for a largest
  difference from the whole-clip result of 1.9e-6 at HIFI, 2.2e-7 at Standard and 9e-8
  at LOFI (60 s of stereo music, 11.6 s blocks; 3·K + 8 gives 0): the blocks cost
  2·margin / BLOCK_FRAMES more work (HIFI: 5 %) instead of twice that.

Stereo. The texture is computed on the mid M = (L + R) / 2 and phase-retrieved there;
the side S = (L − R) / 2 keeps its own STFT, in each bin turned and scaled with the mid
(:func:`_side_gain`: the gain capped at 1) and faded where the texture's fine structure
replaced the music's (``Transfer.music_share``), and L, R = M' ± S'. Where the transfer
keeps the music the music's stereo image is kept; where the texture replaces it, the
texture is one coherent layer in both channels (no phasey, hollow centre); the mono sum
of the result is the conversion of the mid.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from collections.abc import Iterator

from . import audio, reconstruct, spectral, texture

_TINY = 1e-12  # of a magnitude: a bin this quiet has no phase to speak of
BLOCK_FRAMES = 2048  # frames kept per block (23.8 s): 17 MB per complex spectrogram-sized array
# Share of the total time each stage takes, for one progress fraction over the whole job.
STAGE_WEIGHTS = {"analysing": 0.04, "transferring": 0.08, "reconstructing": 0.83, "encoding": 0.05}
STAGES = tuple(STAGE_WEIGHTS)

ProgressCallback = Callable[[str, float], None]
"""on_progress(stage, fraction of the whole job done, 0..1)."""

LogMagTransform = Callable[[np.ndarray], np.ndarray]
"""(N_BINS, n_frames) log-magnitude → (N_BINS, n_frames) log-magnitude."""


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The result of :func:`render`: float32 samples at ``SAMPLE_RATE``, (n,) or (channels,
    n) as given, and the seconds each stage took."""

    samples: np.ndarray
    timings: dict[str, float]


def stage_start(stage: str) -> float:
    """Fraction of the whole job done when ``stage`` begins."""
    done = 0.0
    for name in STAGES:
        if name == stage:
            return done
        done += STAGE_WEIGHTS[name]
    raise ValueError(f"unknown stage {stage!r}")


def margin_frames(iterations: int) -> int:
    """Frames rendered on either side of a block and dropped, for phase retrieval of
    ``iterations`` iterations: 1.5 per iteration and 8 for the edges and the final ISTFT
    (the exact bound is 3 per iteration: see the module's docstring for why and by how
    much less is enough)."""
    return (3 * iterations) // 2 + 8


def check_strength(strength: float) -> float:
    """``strength`` as a float within 0..1; ValueError otherwise (NaN included)."""
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {strength:g}")
    return strength


def as_channels(samples: np.ndarray) -> np.ndarray:
    """(n,) or (channels, n) samples, channels 1 or 2 → (channels, n) float32 (a view
    where it can be). ValueError for another shape."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"expected (n,) or (channels, n) samples with 1 or 2 channels, got shape {x.shape}")
    return x


def render(
    samples: np.ndarray,
    quality: str | reconstruct.Quality,
    transform: LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    normalize: bool = True,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    block_frames: int = BLOCK_FRAMES,
) -> Rendered:
    """Re-render ``samples`` through the spectrogram, optionally transformed.

    samples: (n,) or (channels, n) float at ``spectral.SAMPLE_RATE``, channels 1 or 2;
    the result has the same shape. quality: "lofi", "standard", "hifi".
    transform: maps the log-magnitude to a new one (a texture's band-statistics
    transfer); None keeps it. strength 0..1: how much of it (0 the music unchanged,
    reconstruction only; 1 the texture as tuned); ValueError outside.
    normalize: loudness-normalise the result (the original's "std" build) or only guard
    against clipping ("lite"). Raises ``reconstruct.Cancelled`` if cancelled.
    block_frames: frames per block (see the module's docstring); the result does not
    depend on it.
    """
    timings: dict[str, float] = {}
    out = render_unleveled(samples, quality, transform, strength=strength, seed=seed, on_progress=on_progress,
                           should_cancel=should_cancel, timings=timings, block_frames=block_frames)
    out = level(out, normalize, timings=timings, on_progress=on_progress, should_cancel=should_cancel)
    return Rendered(samples=out[0] if np.ndim(samples) == 1 else out, timings=timings)


def block_count(n: int, block_frames: int = BLOCK_FRAMES) -> int:
    """How many blocks :func:`render_blocks` cuts a song of ``n`` samples into (at least 1)."""
    return max(1, -(-spectral.n_frames(n) // block_frames))


def part_blocks(n: int, part: int, parts: int, block_frames: int = BLOCK_FRAMES) -> range:
    """The blocks of part ``part`` (0-based) when a song of ``n`` samples is cut into ``parts``
    contiguous runs of whole blocks, as even as whole blocks allow (a part may be empty
    when there are fewer blocks than parts)."""
    count = block_count(n, block_frames)
    return range(count * part // parts, count * (part + 1) // parts)


def blocks_span(n: int, blocks: range, block_frames: int = BLOCK_FRAMES) -> tuple[int, int]:
    """Samples (first, end) that the contiguous ``blocks`` of a song of ``n`` samples cover."""
    if not blocks:
        return 0, 0
    hop_block = block_frames * spectral.HOP
    end = n if blocks.stop >= block_count(n, block_frames) else blocks.stop * hop_block
    return min(n, blocks.start * hop_block), end


def render_unleveled(
    samples: np.ndarray,
    quality: str | reconstruct.Quality,
    transform: LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timings: dict[str, float] | None = None,
    block_frames: int = BLOCK_FRAMES,
    blocks: range | None = None,
) -> np.ndarray:
    """The (channels, m) float32 samples of ``blocks`` (None: all; m their span,
    :func:`blocks_span`) of ``samples`` ((n,) or (channels, n)) rendered before any level
    is set, :func:`render_blocks` joined. Blocks rendered apart (on other machines) and
    joined in order equal the whole song's (every block's result is the same whichever
    others are rendered: see the module's docstring)."""
    x = as_channels(samples)
    n = x.shape[1]
    first, end = blocks_span(n, range(block_count(n, block_frames)) if blocks is None else blocks, block_frames)
    if end <= first:  # no blocks, or a song of no samples: nothing to render
        return np.zeros((x.shape[0], 0), np.float32)
    out = np.empty((x.shape[0], end - first), np.float32)
    for a, block in render_blocks(lambda a, b: x[:, a:b], n, x.shape[0], quality, transform,
                                  strength=strength, seed=seed, on_progress=on_progress,
                                  should_cancel=should_cancel, timings=timings, block_frames=block_frames,
                                  blocks=blocks):
        out[:, a - first:a - first + block.shape[1]] = block
    return out


def level(samples: np.ndarray, normalize: bool, *, timings: dict[str, float] | None = None,
          on_progress: ProgressCallback | None = None,
          should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """A whole rendered song's (channels, n) float32 samples at their level: loudness-normalised
    (``normalize``) or only guarded against clipping; the seconds added to
    ``timings["encoding"]``. Raises ``reconstruct.Cancelled`` if cancelled."""
    t0 = time.perf_counter()
    if should_cancel is not None and should_cancel():
        raise reconstruct.Cancelled()
    if on_progress is not None:
        on_progress("encoding", stage_start("encoding"))
    out = audio.normalize_loudness(samples) if normalize else audio.peak_limit(samples)
    if timings is not None:
        timings["encoding"] = timings.get("encoding", 0.0) + time.perf_counter() - t0
    return out


Reader = Callable[[int, int], np.ndarray]
"""read(a, b) → (channels, b − a) float32 samples a to b of the song."""


def render_blocks(
    read: Reader,
    n: int,
    channel_count: int,
    quality: str | reconstruct.Quality,
    transform: LogMagTransform | None = None,
    *,
    strength: float = 1.0,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    timings: dict[str, float] | None = None,
    block_frames: int = BLOCK_FRAMES,
    blocks: range | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """The song of ``n`` samples and ``channel_count`` channels (1 or 2) that ``read``
    gives, rendered block by block before any level is set: yields (first sample,
    (channels, m) float32 samples), in order, covering 0..n. Only one block's arrays are
    held at a time (and the plan: see the module's docstring). The arguments as
    :func:`render`'s; ``timings`` (stage → s) is added to.

    blocks: which blocks (of :func:`block_count`) to render and yield, None all. The plan
    is made from the whole song whatever ``blocks`` is, so that the song's parts rendered
    apart (on several machines) are each the very blocks of one pass; progress runs
    over the blocks rendered."""
    q = quality if isinstance(quality, reconstruct.Quality) else reconstruct.quality(quality)
    strength = check_strength(strength)
    if channel_count not in (1, 2):
        raise ValueError(f"1 or 2 channels, not {channel_count}")
    timings = {} if timings is None else timings
    for stage in ("analysing", "transferring", "reconstructing"):
        timings.setdefault(stage, 0.0)
    if transform is not None and strength == 0.0:
        transform = None  # the music unchanged: no transfer at all, not one weighted by 0

    def report(stage: str, within: float) -> None:
        if on_progress is not None:
            on_progress(stage, stage_start(stage) + STAGE_WEIGHTS[stage] * within)

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise reconstruct.Cancelled()

    total = spectral.n_frames(n)
    cores = [(a, min(a + block_frames, total)) for a in range(0, total, block_frames)] or [(0, total)]
    margin = margin_frames(q.iterations_from_phase)
    report("analysing", 0.0)
    plan = whole = None
    if transform is not None and len(cores) > 1:
        t0 = time.perf_counter()
        if isinstance(transform, texture.Transfer):
            plan = _plan(read, n, channel_count, cores, transform, report, check_cancel)
        else:  # any other transform sees the whole clip at once: exact, but held whole
            whole = transform(_whole_log_mag(read, n, channel_count, cores, report, check_cancel))
        timings["analysing"] += time.perf_counter() - t0

    chosen = range(len(cores)) if blocks is None else blocks
    if chosen.step != 1 or chosen.start < 0 or chosen.stop > len(cores):
        raise ValueError(f"blocks {chosen} are not a contiguous run of the song's {len(cores)}")
    for i, (a, b) in enumerate(cores[chosen.start:chosen.stop]):
        lo = max(a - margin, 0) if len(cores) > 1 else 0
        s0, s1 = lo * spectral.HOP, n if b == total else min(n, (b + margin) * spectral.HOP)
        t0 = time.perf_counter()
        check_cancel()
        chans = read(s0, s1)
        mid = chans[0] if channel_count == 1 else 0.5 * (chans[0] + chans[1])
        # (N_BINS, frames) view of the frame-major STFT: no transposed copy, and the music's
        # phase stays complex (phase retrieval takes it as x/|x|: no angles, no complex exp)
        spec = spectral.stft_frames(mid).T
        mag = np.abs(spec)
        timings["analysing"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        check_cancel()
        if len(cores) == 1:
            report("transferring", 0.0)
        mag_x = mag
        if transform is not None:
            log_x = spectral.to_log(mag)
            if plan is not None:
                log_y = transform.apply(log_x, plan, lo)
            elif whole is not None:
                log_y = whole[:, lo:lo + log_x.shape[1]]
            else:
                log_y = transform(log_x)
            if strength < 1.0:
                log_y = log_x + np.float32(strength) * (log_y - log_x)
            mag = spectral.from_log(log_y)
            del log_x, log_y  # a block's arrays are most of the peak memory: none held longer than needed
        timings["transferring"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        check_cancel()
        length = s1 - s0

        def block_progress(f: float, i=i) -> None:
            report("reconstructing", (i + f) / len(chosen))

        side = side_spec = None
        share = np.float32(1.0)  # the music's own fine structure in every bin
        if channel_count == 2:  # before the mid's phase retrieval, which overwrites the mid's STFT
            side_spec = spectral.stft_frames(0.5 * (chans[0] - chans[1]))
            if transform is not None:
                side_spec *= (np.conj(spec) / np.maximum(mag_x, _TINY)).T  # relative to the mid's phase
                if isinstance(transform, texture.Transfer):  # where the texture replaced the music, no side
                    share = transform.music_share(strength, plan, lo, mag.shape[1])
                    side_spec *= share
            else:
                side = spectral.istft_frames(side_spec, length)
        del chans
        report("reconstructing", i / len(chosen))
        # Start phase retrieval from the music's own phase: where the transfer kept the music,
        # its partials stay in place (a PGHI start from the new magnitude smears them).
        out = reconstruct.reconstruct(mag, q, length=length, phase=spec, overwrite_phase=True, seed=seed,
                                      on_progress=block_progress, should_cancel=should_cancel)
        if side is None and side_spec is not None:
            side = spectral.istft_frames(_side_gain(side_spec, spectral.stft_frames(out), mag_x.T, mag.T, share),
                                          length)
        block = out[None, :] if side is None else np.stack([out + side, out - side])
        keep_from, keep_to = a * spectral.HOP - s0, (n if b == total else b * spectral.HOP) - s0
        timings["reconstructing"] += time.perf_counter() - t0
        yield a * spectral.HOP, block[:, keep_from:keep_to]


def _side_gain(side_rel: np.ndarray, mid_out: np.ndarray, mag_x: np.ndarray, mag_y: np.ndarray,
               share: np.ndarray | np.float32) -> np.ndarray:
    """The side's STFT for the rendered mid, in place of ``side_rel``, all (frames, N_BINS):
    side_rel the music's side over its mid's phase (S·conj(M)/|M|), mid_out the STFT of the
    rendered mid M', mag_x = |M|, mag_y the target magnitude of M', and ``share`` ((N_BINS,)
    or a scalar, 0..1) the music's own fine structure in each bin of the result
    (``Transfer.music_share``).

    S' = S · r with r = M' / (M · max(g, 1)^(1 − share)), g = mag_y / mag_x the transfer's
    gain, |r| capped at max(g, 1)^share. Where the bin is the music's (share 1) r = M'/M
    whatever the gain: each bin's channels keep their ratio to the mid, L' = M'·L/M and
    R' = M'·R/M, so the image is kept exactly where the transfer only reshapes the music's
    own levels and dynamics (phase retrieval's changes to the mid included). Where the
    exemplar's fine structure took the bin's place (share 0, above the crossover) and the
    transfer adds to it (g > 1), the side stays at the music's level, so the added texture
    is one layer in both channels; the cap keeps that side from growing past the music's."""
    follow = np.maximum(mag_y / np.maximum(mag_x, _TINY), 1.0) ** np.asarray(share, np.float32)
    r = mid_out / np.maximum(np.maximum(mag_y, mag_x) / follow, _TINY)
    r /= np.maximum(np.abs(r) / follow, 1.0)
    side_rel *= r
    return side_rel


def _mid_blocks(read: Reader, n: int, channel_count: int, cores: list[tuple[int, int]],
                report: Callable[[str, float], None], check_cancel: Callable[[], None]) -> Iterator[np.ndarray]:
    """The (N_BINS, b − a) natural-log magnitude of the mid for each core (a, b) of frames
    in turn, exactly the whole song's frames: each is the STFT of its samples with two
    frames more on either side (a frame spans two hops either side of its centre)."""
    total = spectral.n_frames(n)
    for i, (a, b) in enumerate(cores):
        check_cancel()
        lo = max(a - 2, 0)
        s0, s1 = lo * spectral.HOP, n if b == total else min(n, (b + 2) * spectral.HOP)
        chans = read(s0, s1)
        mid = chans[0] if channel_count == 1 else 0.5 * (chans[0] + chans[1])
        frames = spectral.stft_frames(mid)[a - lo:b - lo]
        yield spectral.to_log(np.abs(frames.T))
        report("analysing", (i + 1) / len(cores))


def _plan(read: Reader, n: int, channel_count: int, cores: list[tuple[int, int]], transfer: texture.Transfer,
          report: Callable[[str, float], None], check_cancel: Callable[[], None]) -> texture.Plan:
    """The transfer's whole-song plan from one streaming pass over the mid: its band
    envelopes (N_BANDS, frames) and its mean squared magnitude."""
    envelopes, power = [], 0.0
    for log_x in _mid_blocks(read, n, channel_count, cores, report, check_cancel):
        envelopes.append(texture.band_envelopes(log_x))
        power += float(np.sum(np.exp(2.0 * log_x, dtype=np.float64)))
    plan = transfer.plan(np.concatenate(envelopes, axis=1), power / (spectral.N_BINS * spectral.n_frames(n)))
    # held through every block: in float32 (a 10-minute song's target envelopes come as float64)
    return dataclasses.replace(plan, env_y=plan.env_y.astype(np.float32), index=plan.index.astype(np.int32))


def _whole_log_mag(read: Reader, n: int, channel_count: int, cores: list[tuple[int, int]],
                   report: Callable[[str, float], None], check_cancel: Callable[[], None]) -> np.ndarray:
    """The mid's whole (N_BINS, frames) natural-log magnitude, gathered block by block."""
    return np.concatenate(list(_mid_blocks(read, n, channel_count, cores, report, check_cancel)), axis=1)
