"""Judge the textures on music from whole packages that tuning never saw.

    python -m models.evaluate [--texture laser|water|future|all|none] [--quality standard,hifi]
                              [--exemplars DIR] [--music-dir DIR] [--tracks-per-package 3]
                              [--allow-small] [--settings-dir DIR] [--json PATH] [--update-metadata]
                              [--strength 0,0.25,0.5,0.75,1]

Validation set: the ``val_packages`` of ``DIR/manifest.json`` (made by
``scripts/gather_training_music.py``; DIR is ``$MUSICODER_MUSIC_DIR``, else
~/musicoder-data/music), whose tracks are ``DIR/val/<package>__<track>.<ext>``. Per package,
N tracks evenly spread over its sorted names, one 10 s window each at 30 s (the middle
for a track under 40 s). Refused below 12 clips or 4 styles unless ``--allow-small``.

Every clip goes through the product path, ``musicoder.engine.render(samples, quality,
models.load(texture).transform)`` (method "musicoder"), and, as a reference on the same
clips in the same run,
through the same render with the "morph" transform ``0.7·log X + 0.3·log S`` (S: the
exemplar's magnitude at the clip's level, tiled over time). Each output is scored by the
independent judge (``shared/eval/texture_judge.py`` beside the repository; override with
``$MUSICODER_JUDGE_DIR``) with its frontier: advantage over crossfading the exemplar in;
and by a measure tuning did not use (:mod:`models.metrics`): ``own_move``, how many dB of
style distance to the exemplar the output is closer than the input, and ``own_chroma``,
the chroma correlation of output and input.

``--exemplars DIR`` adds every audio file of DIR (``scripts/gather_user_exemplars.py``
makes one) as a user's own exemplar, ``own:<file stem>``: decoded as a user's
(``audio.load_exemplar``: its first 30 s), converted with ``models.from_exemplar``, its
morph and judge against that same part; the user-exemplar bar (OWN_BAR_*) applies to those.

``--strength S[,S...]`` renders the product path at each strength (0..1, the engine's
``strength``: 0 the music unchanged, 1 the texture as tuned, the default) and prints the
strength table: mean advantage and content per texture, quality and strength.

Prints one row per clip × texture × method × quality (× strength), a summary per texture × method ×
quality (× strength), the quality bar per texture and quality, and the mean advantage per style. ``--json PATH`` writes all
of it; ``--update-metadata`` stores each texture's summary in
``models/settings/{texture}.json`` under ``validation``. Temporary WAVs only, no cache.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import SETTINGS_DIR, TEXTURES, load
from .data import DEFAULT_MUSIC_DIR, portable_path, user_path

REPO = Path(__file__).resolve().parents[1]
QUALITIES = ("standard", "hifi")
METHODS = ("musicoder", "morph")
CLIP_SECONDS = 10.0
CLIP_START_S = 30.0  # past most intros; a track shorter than CLIP_START_S + CLIP_SECONDS is cut at its middle
TRACKS_PER_PACKAGE = 3
MIN_CLIPS, MIN_STYLES = 12, 4  # below this a mean says little about "held-out music"
MORPH_WEIGHT = 0.3  # exemplar share of the reference morph exp((1-w)·log X + w·log S)
# the quality bar of a built-in texture at one quality
BAR_MEAN_ADVANTAGE = 0.10
BAR_WORST_ADVANTAGE = -0.05
BAR_MIN_CONTENT = 0.6
BAR_VS_MORPH = 0.05
# the quality bar of a user's own exemplar: mean >= 0, no clip below -0.10, content >= 0.6, above the morph
OWN = "own:"
OWN_BAR_MEAN, OWN_BAR_WORST, OWN_BAR_VS_MORPH = 0.0, -0.10, 0.0
JUDGE = "shared/eval/texture_judge.py --frontier"


class ValClip(NamedTuple):
    """One validation window: ``path`` of the track, its ``package`` and ``style``, and
    ``start`` (s) of its CLIP_SECONDS window."""

    path: Path
    package: str
    style: str
    start: float


@functools.cache
def judge_module():
    """Import texture_judge from shared/eval beside the repository (or inside it), and judge
    one short clip with it: librosa's numba functions compile here and write their on-disk
    cache once. Two processes compiling them at once (``models.tune``'s pool on a fresh
    install) corrupt that cache, and every judge after segfaults; forked workers of a
    process that called this compile nothing."""
    for d in (os.environ.get("MUSICODER_JUDGE_DIR"), REPO.parent / "shared" / "eval", REPO / "shared" / "eval"):
        if d and (Path(d) / "texture_judge.py").is_file():
            sys.path.insert(0, str(d))
            import texture_judge

            _judge_once(texture_judge)
            return texture_judge
    raise SystemExit("texture_judge.py not found: put shared/eval beside the repository "
                     "or set MUSICODER_JUDGE_DIR")


def _judge_once(tj) -> None:
    """One judgement of 2 s of synthetic music and noise, read back as every clip is."""
    from musicoder import spectral

    t = np.arange(2 * spectral.SAMPLE_RATE) / spectral.SAMPLE_RATE
    music = 0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))
    noise = 0.1 * np.random.default_rng(0).standard_normal(len(t))
    with tempfile.TemporaryDirectory(prefix="musicoder-judge-") as tmp:
        x, s = (judge_file(tj, y, Path(tmp) / f"{name}.wav") for name, y in (("x", music), ("s", noise)))
        tj.judge(x, tj.mix(x, s, 0.5), s)


def read_manifest(music_dir: Path) -> dict:
    """``music_dir/manifest.json``; SystemExit naming the file if it is missing or bad."""
    path = Path(music_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("val_packages"), list) or not isinstance(manifest.get("packages"), dict):
            raise ValueError("needs a val_packages list and a packages object")
    except (OSError, ValueError, AttributeError) as e:
        raise SystemExit(f"{path}: no usable manifest ({type(e).__name__}: {e}); make the music folder "
                         f"with scripts/gather_training_music.py") from None
    return manifest


def spread(items: list, n: int) -> list:
    """``n`` items evenly spread over ``items`` (all of them when there are no more than n):
    the middle of each of n equal parts, so neither end (often an intro) is favoured."""
    if len(items) <= n:
        return list(items)
    return [items[int((i + 0.5) * len(items) / n)] for i in range(n)]


def window_start(track_seconds: float) -> float:
    """Start (s) of the window of a track lasting ``track_seconds``: CLIP_START_S, or the
    middle CLIP_SECONDS of a track shorter than CLIP_START_S + CLIP_SECONDS."""
    if not math.isfinite(track_seconds) or track_seconds >= CLIP_START_S + CLIP_SECONDS:
        return CLIP_START_S
    return max(0.0, (track_seconds - CLIP_SECONDS) / 2)


def validation_clips(music_dir: Path, per_package: int = TRACKS_PER_PACKAGE) -> list[ValClip]:
    """The validation windows of ``music_dir``: per held-out package (manifest order),
    ``per_package`` of its val/ tracks spread over their sorted names. Deterministic.
    SystemExit if a held-out package also has tracks in train/ (it would not be held out)."""
    from musicoder import audio

    from .data import audio_files

    music_dir = Path(music_dir)
    manifest = read_manifest(music_dir)
    val = audio_files(music_dir / "val") if (music_dir / "val").is_dir() else []
    train = audio_files(music_dir / "train") if (music_dir / "train").is_dir() else []
    clips = []
    for package in manifest["val_packages"]:
        prefix = f"{package}__"
        leaked = [p.name for p in train if p.name.startswith(prefix)]
        if leaked:
            raise SystemExit(f"{music_dir}: held-out package {package} has {len(leaked)} tracks in train/ "
                             f"(e.g. {leaked[0]}): it is not held out")
        style = (manifest["packages"].get(package) or {}).get("style", "unknown")
        tracks = sorted((p for p in val if p.name.startswith(prefix)), key=lambda p: p.name)
        clips += [ValClip(p, package, style, window_start(audio.probe(p).duration))
                  for p in spread(tracks, per_package)]
    return clips


def check_size(clips: list[ValClip], allow_small: bool = False) -> None:
    """SystemExit unless the set has MIN_CLIPS clips of MIN_STYLES styles (or allow_small)."""
    styles = {c.style for c in clips}
    if not allow_small and (len(clips) < MIN_CLIPS or len(styles) < MIN_STYLES):
        raise SystemExit(f"validation set too small: {len(clips)} clips of {len(styles)} styles "
                         f"({', '.join(sorted(styles)) or 'none'}); the quality bar needs at least {MIN_CLIPS} "
                         f"clips of {MIN_STYLES} styles (--allow-small to judge it anyway)")


def describe(clips: list[ValClip], music_dir: Path) -> dict:
    """The validation set as stored with the results: folder, packages, styles, clips."""
    return {"music_dir": portable_path(music_dir), "split_by": "package",
            "packages": {c.package: c.style for c in clips},
            "styles": sorted({c.style for c in clips}), "clip_count": len(clips), "clip_seconds": CLIP_SECONDS,
            "clips": [clip_name(c) for c in clips]}


def clip_name(c: ValClip) -> str:
    """``<package>__<track>@<start>s``: a clip's name in rows and tables."""
    return f"{c.path.stem}@{c.start:g}s"


def exemplar_log_mag(exemplar: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """(N_BINS, frames of the exemplar) natural-log magnitude of ``exemplar`` scaled to the
    RMS of ``clip`` (both (n,) float at 44.1 kHz), so the morph moves timbre, not level."""
    from musicoder import spectral

    rms_s = float(np.sqrt(np.mean(np.square(exemplar, dtype=np.float64))))
    rms_x = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))
    scaled = exemplar * np.float32(rms_x / rms_s) if rms_s > 1e-8 else exemplar
    return spectral.to_log(spectral.magnitude(scaled.astype(np.float32)))


def tile_frames(log_s: np.ndarray, frames: int) -> np.ndarray:
    """(bins, frames) by repeating ``log_s`` (bins, m) along time from its start (or cutting it)."""
    return log_s[:, np.arange(frames) % log_s.shape[1]]


def morph_transform(log_s: np.ndarray, weight: float = MORPH_WEIGHT):
    """The reference as an engine LogMagTransform: (N_BINS, frames) natural-log magnitude →
    (1-weight)·log X + weight·log S, with S = ``log_s`` (N_BINS, m) tiled to the frames."""

    def transform(log_x: np.ndarray) -> np.ndarray:
        if weight == 0:  # exactly the music: no float round-off from 1.0·x + 0.0·s
            return np.asarray(log_x, np.float32)
        return ((1 - weight) * log_x + weight * tile_frames(log_s, log_x.shape[1])).astype(np.float32)

    return transform


def judge_file(tj, samples: np.ndarray, path: Path) -> np.ndarray:
    """Write (n,) float samples at 44.1 kHz to ``path`` (float WAV) and read them back as the
    judge reads any file (``tj.load``: librosa at 22.05 kHz, RMS-normalised)."""
    import soundfile

    from musicoder import spectral

    soundfile.write(path, np.asarray(samples, np.float32), spectral.SAMPLE_RATE, subtype="FLOAT")
    return tj.load(str(path))


def frontier(tj, x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The judge's crossfade frontier for input ``x`` and exemplar ``s`` (judge-loaded
    arrays): (contents, moves) of its 11 mixes, sorted by content. It depends on the clip
    and the exemplar alone, so it is made once for all the methods and qualities of a clip
    (the judge's own ``frontier_advantage`` makes it again for every output)."""
    rows = [tj.judge(x, tj.mix(x, s, a), s) for a in np.linspace(0.0, 1.0, 11)]
    contents = np.array([r["content"] for r in rows])
    moves = np.array([(r["timbre_gain"] + r["texture_gain"]) / 2 for r in rows])
    order = np.argsort(contents)  # np.interp needs increasing x
    return contents[order], moves[order]


def score(tj, x: np.ndarray, y: np.ndarray, s: np.ndarray, mixes: tuple[np.ndarray, np.ndarray]) -> dict:
    """The judge's figures for output ``y`` of input ``x`` against exemplar ``s`` (judge-loaded
    arrays), with its advantage over the crossfades ``mixes`` (:func:`frontier` of x and s),
    as ``texture_judge.py --frontier`` computes it; rounded to 4 decimals."""
    r = tj.judge(x, y, s)
    mix_move = float(np.interp(r["content"], *mixes))
    r |= {"mix_move": mix_move, "advantage": (r["timbre_gain"] + r["texture_gain"]) / 2 - mix_move}
    return {k: round(float(r[k]), 4) for k in ("advantage", "timbre_gain", "texture_gain", "content",
                                                 "chroma", "onset", "mix_move")}


def own_measure(metrics, x: np.ndarray, y: np.ndarray, s: np.ndarray) -> dict:
    """:mod:`models.metrics` on judge-loaded arrays (22.05 kHz, as that module expects):
    own_move, dB closer to the exemplar ``s`` in style distance than the input ``x``;
    own_chroma, chroma correlation of ``y`` with ``x``."""
    return {"own_move": round(metrics.style_distance(x, s) - metrics.style_distance(y, s), 3),
            "own_chroma": round(metrics.chroma_similarity(x, y), 4)}


def user_exemplars(folder: Path) -> dict[str, Path]:
    """``own:<stem>`` → path for every audio file of ``folder`` (sorted)."""
    from .data import audio_files

    return {f"{OWN}{p.stem}": p for p in audio_files(folder)}


def evaluate(clips: list[ValClip], textures: list[str], qualities: list[str], settings_dir: Path | None = None,
             progress: bool = True, own: dict[str, Path] | None = None,
             strengths: tuple[float, ...] = (1.0,)) -> list[dict]:
    """One judge row per clip × texture × method × quality, and for the product path per
    strength too (dict: clip, package, style, texture, method, quality, strength, the
    judge's figures, engine_s = seconds in engine.render). own: user exemplars
    (``own:<name>`` → file), judged beside the built-in textures. strengths: the engine's
    strength (0..1) for the product path; the morph reference is judged once."""
    from tqdm import tqdm

    from musicoder import audio, engine

    from . import from_exemplar, metrics

    tj = judge_module()
    own = own or {}
    models = {t: load(t, settings_dir) for t in textures}
    exemplars = {t: (audio.load(TEXTURES[t].exemplar_path, duration=None).samples,
                     tj.load(str(TEXTURES[t].exemplar_path))) for t in textures}
    rows = []
    with tempfile.TemporaryDirectory(prefix="musicoder-eval-") as tmp, \
            tqdm(total=len(clips) * (len(textures) + len(own)) * len(qualities) * (len(strengths) + len(METHODS) - 1),
                 desc="judging",
                 file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
        tmp = Path(tmp)
        for name, path in own.items():  # as a user's: the part used is what the judge compares with
            samples = audio.load_exemplar(path).samples
            models[name] = from_exemplar(samples, settings_dir)
            exemplars[name] = (samples, judge_file(tj, samples, tmp / "exemplar.wav"))
        textures = [*textures, *own]
        for c in clips:
            music = audio.load(c.path, start=c.start, duration=CLIP_SECONDS).samples
            x = judge_file(tj, music, tmp / "input.wav")
            for t in textures:
                mixes = frontier(tj, x, exemplars[t][1])
                transforms = {"musicoder": models[t].transform,
                              "morph": morph_transform(exemplar_log_mag(exemplars[t][0], music))}
                runs = [(m, s) for m in METHODS for s in (strengths if m == "musicoder" else (1.0,))]
                for q in qualities:
                    for method, strength in runs:
                        bar.set_postfix_str(f"{c.package} {t} {method} {q} {strength:g}", refresh=False)
                        out = engine.render(music, q, transforms[method], strength=strength)
                        y = judge_file(tj, out.samples, tmp / "output.wav")
                        rows.append({"clip": clip_name(c), "package": c.package, "style": c.style, "texture": t,
                                     "method": method, "quality": q, "strength": strength,
                                     **score(tj, x, y, exemplars[t][1], mixes),
                                     **own_measure(metrics, x, y, exemplars[t][1]),
                                     "engine_s": round(sum(out.timings.values()), 3)})
                        bar.update()
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per texture × method × quality × strength: clips, mean and worst advantage, mean and
    min content, mean timbre and texture gain, and vs_morph (mean advantage minus the morph's)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["texture"], r["method"], r["quality"], r.get("strength", 1.0)), []).append(r)
    out = []
    for (t, m, q, st), rs in groups.items():
        adv = [r["advantage"] for r in rs]
        content = [r["content"] for r in rs]
        out.append({"texture": t, "method": m, "quality": q, "strength": st, "clips": len(rs),
                    "mean_advantage": round(float(np.mean(adv)), 4), "min_advantage": round(float(np.min(adv)), 4),
                    "worst_clip": rs[int(np.argmin(adv))]["clip"],
                    "mean_content": round(float(np.mean(content)), 4), "min_content": round(float(np.min(content)), 4),
                    "mean_timbre_gain": round(float(np.mean([r["timbre_gain"] for r in rs])), 4),
                    "mean_texture_gain": round(float(np.mean([r["texture_gain"] for r in rs])), 4),
                    "mean_own_move": round(float(np.mean([r["own_move"] for r in rs])), 3),
                    "min_own_chroma": round(float(np.min([r["own_chroma"] for r in rs])), 4)})
    morph = {(s["texture"], s["quality"]): s["mean_advantage"] for s in out if s["method"] == "morph"}
    for s in out:
        ref = morph.get((s["texture"], s["quality"]))
        s["vs_morph"] = None if ref is None else round(s["mean_advantage"] - ref, 4)
    return out


def bar_check(s: dict) -> dict:
    """The quality bar for one summary, a built-in texture's or a user's own exemplar's: each condition's pass/fail and ``passed`` (all of them; the morph
    condition fails when there is no morph to compare with)."""
    own = s["texture"].startswith(OWN)
    mean, worst, vs = (OWN_BAR_MEAN, OWN_BAR_WORST, OWN_BAR_VS_MORPH) if own else \
        (BAR_MEAN_ADVANTAGE, BAR_WORST_ADVANTAGE, BAR_VS_MORPH)
    checks = {"mean_advantage": s["mean_advantage"] >= mean,
              "worst_advantage": s["min_advantage"] >= worst,
              "min_content": s["min_content"] >= BAR_MIN_CONTENT,
              "vs_morph": s["vs_morph"] is not None and (s["vs_morph"] > vs if own else s["vs_morph"] >= vs)}
    return {**checks, "passed": all(checks.values())}


def by_style(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean advantage per ``texture/method/quality`` and style."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        table.setdefault(f"{r['texture']}/{r['method']}/{r['quality']}", {}).setdefault(r["style"], []).append(
            r["advantage"])
    return {k: {st: round(float(np.mean(v)), 4) for st, v in d.items()} for k, d in table.items()}


def strength_table(summaries: list[dict]) -> str:
    """The product path's mean advantage and mean content per texture × quality (rows) and
    strength (columns), and whether each moves monotonically with strength (advantage up,
    content down, each step within 0.005 of it)."""
    rows: dict[tuple, dict[float, dict]] = {}
    for s in summaries:
        if s["method"] == "musicoder":
            rows.setdefault((s["texture"], s["quality"]), {})[s["strength"]] = s
    strengths = sorted({st for r in rows.values() for st in r})
    head = " ".join(f"{st:>13g}" for st in strengths)
    lines = [f"{'texture':14s} {'quality':8s} {head}   monotone (advantage up, content down)",
             f"{'':23s} " + " ".join(f"{'adv / content':>13s}" for _ in strengths)]
    for (t, q), by in rows.items():
        cells = " ".join(f"{by[st]['mean_advantage']:+6.3f}/{by[st]['mean_content']:.3f}" if st in by else f"{'':13s}"
                         for st in strengths)
        adv = [by[st]["mean_advantage"] for st in strengths if st in by]
        content = [by[st]["mean_content"] for st in strengths if st in by]
        up = all(b >= a - 0.005 for a, b in zip(adv, adv[1:]))
        down = all(b <= a + 0.005 for a, b in zip(content, content[1:]))
        lines.append(f"{t:14s} {q:8s} {cells}   {'yes' if up and down else 'NO'}")
    return "\n".join(lines)


def report(rows: list[dict], summaries: list[dict], styles: dict, valset: dict) -> str:
    """The text tables: rows, summaries, the bar, per style."""
    w = max([len("clip"), *(len(r["clip"]) for r in rows)])
    lines = [f"validation set: {valset['clip_count']} clips × {CLIP_SECONDS:g} s from {len(valset['packages'])} "
             f"held-out packages ({', '.join(f'{p} {s}' for p, s in valset['packages'].items())})", "",
             f"{'clip':{w}s} {'texture':14s} {'method':9s} {'quality':8s} {'advant':>7s} {'timbre':>7s} "
             f"{'texture':>7s} {'content':>7s} {'chroma':>7s} {'onset':>7s} {'own dB':>7s} {'own chr':>7s} "
             f"{'engine':>7s}"]
    for r in rows:
        method = r["method"] + (f"@{r['strength']:g}" if r.get("strength", 1.0) != 1.0 else "")
        lines.append(f"{r['clip']:{w}s} {r['texture']:14s} {method:9s} {r['quality']:8s} "
                     f"{r['advantage']:+7.3f} {r['timbre_gain']:+7.3f} {r['texture_gain']:+7.3f} "
                     f"{r['content']:7.3f} {r['chroma']:7.3f} {r['onset']:7.3f} {r['own_move']:+7.2f} "
                     f"{r['own_chroma']:7.3f} {r['engine_s']:6.2f}s")
    lines += ["", "summary (advantage: mean, worst clip; content: mean, min; vs morph: mean advantage minus the "
                  "morph's; own measure, tuned on by nothing: dB closer to the exemplar, min chroma kept)",
              f"{'texture':14s} {'method':9s} {'quality':8s} {'clips':>5s} {'mean':>7s} {'worst':>7s} "
              f"{'content':>7s} {'min':>6s} {'vs morph':>8s} {'own dB':>7s} {'own chr':>7s}"]
    for s in summaries:
        vs = "" if s["vs_morph"] is None else f"{s['vs_morph']:+8.3f}"
        method = s["method"] + (f"@{s['strength']:g}" if s.get("strength", 1.0) != 1.0 else "")
        lines.append(f"{s['texture']:14s} {method:9s} {s['quality']:8s} {s['clips']:5d} "
                     f"{s['mean_advantage']:+7.3f} {s['min_advantage']:+7.3f} {s['mean_content']:7.3f} "
                     f"{s['min_content']:6.3f} {vs:>8s} {s['mean_own_move']:+7.2f} {s['min_own_chroma']:7.3f}")
    lines += ["", f"quality bar, built-in textures: mean advantage >= {BAR_MEAN_ADVANTAGE:+.2f}, no clip below "
                  f"{BAR_WORST_ADVANTAGE:+.2f}, content >= {BAR_MIN_CONTENT} on every clip, mean advantage >= "
                  f"morph's {BAR_VS_MORPH:+.2f}",
              f"quality bar, {OWN}* user exemplars: mean >= {OWN_BAR_MEAN:+.2f}, no clip below "
              f"{OWN_BAR_WORST:+.2f}, content >= {BAR_MIN_CONTENT}, mean above the morph's"]
    for s in summaries:
        if s["method"] != "musicoder":
            continue
        b = bar_check(s)
        mark = {k: "ok" if v else "FAIL" for k, v in b.items()}
        vs = "n/a" if s["vs_morph"] is None else f"{s['vs_morph']:+.3f}"
        lines.append(f"  {s['texture']:14s} {s['quality']:8s} {'PASS' if b['passed'] else 'FAIL'}: "
                     f"mean {s['mean_advantage']:+.3f} {mark['mean_advantage']}, worst {s['min_advantage']:+.3f} "
                     f"{mark['worst_advantage']}, min content {s['min_content']:.3f} {mark['min_content']}, "
                     f"vs morph {vs} {mark['vs_morph']}")
    names = valset["styles"]
    lines += ["", "mean advantage per style", f"{'texture/method/quality':24s} " + " ".join(f"{n[:14]:>14s}" for n in names)]
    for k, d in styles.items():
        lines.append(f"{k:24s} " + " ".join(f"{d[n]:+14.3f}" if n in d else f"{'':14s}" for n in names))
    return "\n".join(lines)


def update_metadata(texture: str, rows: list[dict], summaries: list[dict], valset: dict,
                    settings_dir: Path | None = None) -> Path:
    """Store the texture's results in ``{texture}.json`` under ``validation``: the keys the
    earlier evaluation wrote (judge, quality, clip_seconds, its summary and rows, for HIFI when
    judged) plus ``by_quality`` (summary, bar and rows per quality, morph reference) and the
    validation set. Returns the file."""
    meta_path = Path(settings_dir or SETTINGS_DIR) / f"{texture}.json"
    meta = json.loads(meta_path.read_text())
    keys = ("clips", "mean_advantage", "min_advantage", "mean_content", "min_content", "mean_timbre_gain",
            "mean_texture_gain", "mean_own_move", "min_own_chroma", "vs_morph")
    by_quality = {}
    for s in summaries:
        if s["texture"] == texture and s["method"] == "musicoder":
            morph = next((m for m in summaries if m["texture"] == texture and m["method"] == "morph"
                          and m["quality"] == s["quality"]), None)
            by_quality[s["quality"]] = {
                **{k: s[k] for k in keys}, "bar": bar_check(s),
                "morph": {k: morph[k] for k in keys[:-1]} if morph else None,
                "rows": [{k: v for k, v in r.items() if k not in ("texture", "method", "quality")} for r in rows
                         if r["texture"] == texture and r["method"] == "musicoder" and r["quality"] == s["quality"]]}
    if not by_quality:
        raise SystemExit(f"no musicoder rows for {texture}: nothing to store")
    main_q = "hifi" if "hifi" in by_quality else next(iter(by_quality))
    meta["validation"] = {"judge": JUDGE, "quality": main_q, "clip_seconds": CLIP_SECONDS,
                          **{k: v for k, v in by_quality[main_q].items() if k not in ("bar", "morph")},
                          "validation_set": {k: v for k, v in valset.items() if k != "clips"},
                          "by_quality": by_quality}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", default="all", choices=[*TEXTURES, "all", "none"])
    ap.add_argument("--exemplars", type=user_path, metavar="DIR",
                    help="also judge every audio file of DIR as a user's own exemplar (the user-exemplar bar)")
    ap.add_argument("--quality", default=",".join(QUALITIES), help="comma-separated: %(default)s")
    ap.add_argument("--music-dir", type=user_path, default=DEFAULT_MUSIC_DIR,
                    help="folder with manifest.json, train/ and val/ (default $MUSICODER_MUSIC_DIR or %(default)s)")
    ap.add_argument("--tracks-per-package", type=int, default=TRACKS_PER_PACKAGE)
    ap.add_argument("--allow-small", action="store_true",
                    help=f"judge a set of fewer than {MIN_CLIPS} clips or {MIN_STYLES} styles")
    ap.add_argument("--settings-dir", type=Path)
    ap.add_argument("--json", type=Path, metavar="PATH", help="write all rows and summaries to PATH")
    ap.add_argument("--update-metadata", action="store_true",
                    help="store each texture's summary and rows in its settings file")
    ap.add_argument("--strength", default="1", metavar="S[,S...]",
                    help="the engine's strength (0..1) for the product path, comma-separated: a strength table "
                         "(default %(default)s)")
    ap.add_argument("--band", nargs=2, type=float, metavar=("LO_HZ", "HI_HZ"),
                    help="the judge's timbre and texture statistics of this range only (--band 250 4000: the body "
                         "of the music, where its notes live); content and the frontier stay whole")
    a = ap.parse_args(argv)
    if a.band and a.update_metadata:
        ap.error("--update-metadata stores the full band's judgement: leave --band out")
    judge = JUDGE
    if a.band:
        judge_module().BAND = tuple(a.band)  # read by the judge's statistics at each call
        judge = f"{JUDGE} --band {a.band[0]:g} {a.band[1]:g}"
    try:
        strengths = tuple(float(v) for v in a.strength.split(",") if v.strip())
    except ValueError:
        strengths = ()
    if not strengths or not all(0.0 <= v <= 1.0 for v in strengths):
        ap.error(f"--strength: numbers within 0..1, comma-separated (got {a.strength!r})")
    if a.update_metadata and strengths != (1.0,):
        ap.error("--update-metadata stores the textures as tuned: leave --strength at 1")
    textures = list(TEXTURES) if a.texture == "all" else [] if a.texture == "none" else [a.texture]
    own = user_exemplars(a.exemplars) if a.exemplars else {}
    if not textures and not own:
        ap.error("nothing to judge: --texture none and no --exemplars")
    qualities = [q.strip() for q in a.quality.split(",") if q.strip()]
    bad = [q for q in qualities if q not in QUALITIES]
    if bad or not qualities:
        ap.error(f"--quality: choose from {', '.join(QUALITIES)} (got {a.quality!r})")
    t0 = time.perf_counter()
    clips = validation_clips(a.music_dir, a.tracks_per_package)
    check_size(clips, a.allow_small)
    valset = describe(clips, a.music_dir)
    rows = evaluate(clips, textures, qualities, a.settings_dir, own=own, strengths=strengths)
    summaries = summarise(rows)
    styles = by_style(rows)
    wall = time.perf_counter() - t0
    if a.band:
        print(f"judge: {judge} (the bar lines below are the full band's)")
    print(report(rows, summaries, styles, valset))
    if strengths != (1.0,):
        print("\nstrength table\n" + strength_table(summaries))
    print(f"\n{len(rows)} judged outputs in {wall:.0f} s")
    if a.json:
        a.json.write_text(json.dumps({"judge": judge, "validation_set": valset, "morph_weight": MORPH_WEIGHT,
                                      "rows": rows, "summaries": [{**s, **({"bar": bar_check(s)} if s["method"] == "musicoder" else {})}
                                                    for s in summaries],
                                      "by_style": styles, "wall_s": round(wall, 1)}, indent=2) + "\n")
    if a.update_metadata:
        for t in textures:
            print(f"stored in {update_metadata(t, rows, summaries, valset, a.settings_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
