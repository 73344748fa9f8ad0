"""Judge the textures on music from whole packages that tuning never saw.

    python -m models.evaluate [--texture laser|water|future|all|none] [--quality standard,hifi]
                              [--method learned,tuned,retuned,morph] [--exemplars DIR]
                              [--music-dir DIR] [--tracks-per-package 3] [--allow-small]
                              [--settings-dir DIR] [--retuned-dir DIR] [--band 250 4000]
                              [--json PATH] [--update-metadata] [--strength 0,0.25,0.5,0.75,1]
    python -m models.evaluate --held-out-training [--method learned,tuned] ...

Validation set: the ``val_packages`` of ``DIR/manifest.json`` (made by
``scripts/gather_training_music.py``; DIR is ``$MUSICODER_MUSIC_DIR``, else
~/musicoder-data/music), whose tracks are ``DIR/val/<package>__<track>.<ext>``. Per package,
N tracks evenly spread over its sorted names, one 10 s window each at 30 s (the middle
for a track under 40 s). Refused below 12 clips or 4 styles unless ``--allow-small``.
``--held-out-training`` takes the windows (the same rule) of the training packages that
the learned engine's network never trains on (``models.data.NETWORK_HELD_OUT``, from
``DIR/train/``; tuning saw them) instead, and checks learned against tuned there.

The methods, on the same clips in the same run (``--method`` picks some): "learned", the
learned engine (``models.load(texture, engine="learned")``); "tuned", today's engine with
the settings of ``models/settings/``; "retuned", today's engine with the settings of
``models/settings/retuned/`` (tuned with the body band in the objective: ``python -m
models.tune --body-band``; a texture with no file there is skipped, with a note); each
through the product path, ``musicoder.engine.render(samples, quality, model.transfer)``.
And the "morph" reference, the same render of the transform ``0.7·log X + 0.3·log S`` (S:
the exemplar's magnitude at the clip's level, tiled over time). Each output is scored by the
independent judge (``shared/eval/texture_judge.py`` beside the repository; override with
``$MUSICODER_JUDGE_DIR``) with its frontier: advantage over crossfading the exemplar in;
twice, in the full band and in the body band (``--band LO HI``, default 250 4000 Hz: the
judge's timbre and texture statistics of that range only; content is the same); and by a
measure tuning did not use (:mod:`models.metrics`): ``own_move``, how many dB of style
distance to the exemplar the output is closer than the input, and ``own_chroma``, the
chroma correlation of output and input.

``--exemplars DIR`` adds every audio file of DIR (``scripts/gather_user_exemplars.py``
makes one) as a user's own exemplar, ``own:<file stem>``: decoded as a user's
(``audio.load_exemplar``: its first 30 s), converted with ``models.from_exemplar`` (learned
and tuned), its morph and judge against that same part; the user-exemplar bar (OWN_BAR_*)
applies to those.

``--strength S[,S...]`` renders the engine methods at each strength (0..1, the engine's
``strength``: 0 the music unchanged, 1 the texture as made, the default) and prints the
strength table: mean advantage and content per texture, method, quality and strength.

Prints one row per clip × texture × method × quality (× strength), a summary per texture ×
method × quality (× strength), the methods side by side (full band mean and worst clip,
lowest content, body band mean and worst), the quality bar per texture, method and quality,
the learned bar (LEARNED_*: what the learned engine must do against the tuned and retuned
ones, per texture and quality, and per user exemplar), and the mean advantage per style.
``--json PATH`` writes all of it; ``--update-metadata`` stores each texture's tuned summary
in ``models/settings/{texture}.json`` under ``validation``. Temporary WAVs only, no cache.
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
# "learned": the learned engine; "tuned": today's engine with the settings of settings/;
# "retuned": today's engine with the settings of settings/retuned/ (tuned with the body band
# in the objective), the fairest rival a learned engine must beat; "morph": the reference
ENGINE_OF = {"learned": "learned", "tuned": "tuned", "retuned": "tuned"}  # method → the engine rendering it
METHODS = (*ENGINE_OF, "morph")
RETUNED_DIR = SETTINGS_DIR / "retuned"
BODY_BAND = (250.0, 4000.0)  # Hz: the body of the music, where its notes live (the judge's --band 250 4000)
FULL = {"": None}  # the judge's bands by the prefix of their figures: all mel bands, unprefixed
BAND_FIGURES = ("advantage", "timbre_gain", "texture_gain", "mix_move")  # a band's own figures
CONTENT_FIGURES = ("content", "chroma", "onset")  # the judge's content is of the whole band, whatever --band
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
# the bar a learned engine must pass to replace the tuned one, per texture and quality: full
# band mean >= the tuned's + LEARNED_VS_TUNED, no clip below BAR_WORST_ADVANTAGE, content >=
# BAR_MIN_CONTENT; body band mean >= LEARNED_BODY_MEAN, no clip below LEARNED_BODY_WORST; a
# mean at least the retuned's in both bands
LEARNED_VS_TUNED = 0.03
LEARNED_BODY_MEAN, LEARNED_BODY_WORST = 0.05, -0.10
# and of a user's own exemplar, per recording: mean >= OWN_LEARNED_MEAN (full band) and
# OWN_LEARNED_BODY_MEAN (body band), no clip below OWN_BAR_WORST; the mean of the
# recordings' means >= the tuned's + LEARNED_VS_TUNED
OWN_LEARNED_MEAN, OWN_LEARNED_BODY_MEAN = 0.05, 0.0
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
    from .data import audio_files

    music_dir = Path(music_dir)
    manifest = read_manifest(music_dir)
    train = audio_files(music_dir / "train") if (music_dir / "train").is_dir() else []
    for package in manifest["val_packages"]:
        leaked = [p.name for p in train if p.name.startswith(f"{package}__")]
        if leaked:
            raise SystemExit(f"{music_dir}: held-out package {package} has {len(leaked)} tracks in train/ "
                             f"(e.g. {leaked[0]}): it is not held out")
    return package_clips(music_dir, manifest, manifest["val_packages"], "val", per_package)


def package_clips(music_dir: Path, manifest: dict, packages, folder: str, per_package: int) -> list[ValClip]:
    """The windows of ``packages`` (in that order): per package, ``per_package`` of its
    tracks in ``music_dir/folder`` spread over their sorted names, one CLIP_SECONDS window
    each (:func:`window_start`), its style from ``manifest``. Deterministic."""
    from musicoder import audio

    from .data import audio_files

    tracks_dir = Path(music_dir) / folder
    files = audio_files(tracks_dir) if tracks_dir.is_dir() else []
    clips = []
    for package in packages:
        style = (manifest["packages"].get(package) or {}).get("style", "unknown")
        tracks = [p for p in files if p.name.startswith(f"{package}__")]
        clips += [ValClip(p, package, style, window_start(audio.probe(p).duration))
                  for p in spread(tracks, per_package)]
    return clips


def network_held_out_clips(music_dir: Path, packages: tuple[str, ...] | None = None,
                           per_package: int = TRACKS_PER_PACKAGE) -> list[ValClip]:
    """The windows (the validation set's rule) of the training packages that the learned
    engine's network never trains on (``packages``, default ``data.NETWORK_HELD_OUT``), from
    ``music_dir/train``. SystemExit for a package that is held out from tuning too, or has
    no tracks there."""
    from .data import NETWORK_HELD_OUT

    packages = NETWORK_HELD_OUT if packages is None else packages
    manifest = read_manifest(music_dir)
    clips = package_clips(music_dir, manifest, packages, "train", per_package)
    for package in packages:
        if package in manifest["val_packages"] or not any(c.package == package for c in clips):
            raise SystemExit(f"{music_dir}: {package} is not a training package with tracks in train/ "
                             f"(the network's held-out training packages must be)")
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


def bands(body: tuple[float, float] | None = BODY_BAND) -> dict[str, tuple[float, float] | None]:
    """The bands judged, by the prefix of their figures: the full band ("") and, unless
    ``body`` is None, the body band ("body_", (lo, hi) Hz as the judge's --band)."""
    return FULL | ({"body_": tuple(body)} if body is not None else {})


def judge_bands(tj, x: np.ndarray, y: np.ndarray, s: np.ndarray, judged: dict) -> dict[str, dict]:
    """prefix → ``tj.judge(x, y, s)`` (judge-loaded arrays) with the judge's timbre and
    texture statistics of that band of ``judged`` (:func:`bands`; the band as its --band
    sets it). The judge's content is of the whole band whatever the band, and costs most of
    a judgement, so it is computed once: for the other bands the judge's content function
    answers the first band's figures for this same x and y."""
    saved = tj.BAND, tj.content_kept
    out = {}
    try:
        for prefix, band in judged.items():
            tj.BAND = band
            out[prefix] = r = tj.judge(x, y, s)
            tj.content_kept = lambda _x, _y, kept={k: r[k] for k in CONTENT_FIGURES}: dict(kept)
    finally:
        tj.BAND, tj.content_kept = saved
    return out


def frontier(tj, x: np.ndarray, s: np.ndarray, judged: dict = FULL) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The judge's crossfade frontier for input ``x`` and exemplar ``s`` (judge-loaded
    arrays) in each band of ``judged`` (prefix → band, :func:`bands`): (contents, moves)
    of its 11 mixes, sorted by content. It depends on the clip and the exemplar alone, so it
    is made once for all the methods and qualities of a clip (the judge's own
    ``frontier_advantage`` makes it again for every output)."""
    rows = [judge_bands(tj, x, tj.mix(x, s, a), s, judged) for a in np.linspace(0.0, 1.0, 11)]
    lines = {}
    for prefix in judged:
        contents = np.array([r[prefix]["content"] for r in rows])
        moves = np.array([(r[prefix]["timbre_gain"] + r[prefix]["texture_gain"]) / 2 for r in rows])
        order = np.argsort(contents)  # np.interp needs increasing x
        lines[prefix] = contents[order], moves[order]
    return lines


def score(tj, x: np.ndarray, y: np.ndarray, s: np.ndarray, mixes: dict, judged: dict = FULL) -> dict:
    """The judge's figures for output ``y`` of input ``x`` against exemplar ``s`` (judge-loaded
    arrays), with its advantage over the crossfades ``mixes`` (:func:`frontier` of x and s
    in the same bands), as ``texture_judge.py --frontier [--band LO HI]`` computes it, in
    each band of ``judged``: content, chroma and onset once, and each band's BAND_FIGURES
    with its prefix ("advantage", "body_advantage", ...); rounded to 4 decimals."""
    per_band = judge_bands(tj, x, y, s, judged)
    out = {k: round(float(next(iter(per_band.values()))[k]), 4) for k in CONTENT_FIGURES}
    for prefix, r in per_band.items():
        mix_move = float(np.interp(r["content"], *mixes[prefix]))
        figures = {"advantage": (r["timbre_gain"] + r["texture_gain"]) / 2 - mix_move,
                   "timbre_gain": r["timbre_gain"], "texture_gain": r["texture_gain"], "mix_move": mix_move}
        out |= {prefix + k: round(float(figures[k]), 4) for k in BAND_FIGURES}
    return out


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


def engine_keyword(engine: str) -> dict:
    """The keyword of ``models.load`` and ``models.from_exemplar`` choosing ``engine`` (one
    of ``models.ENGINES``: "learned", "tuned"); SystemExit naming it when this version of
    models has no such engine, before anything is judged."""
    from . import ENGINES

    if engine not in ENGINES:
        methods = [m for m, e in ENGINE_OF.items() if e == engine]
        raise SystemExit(f"the {engine} engine is not in this version of models (models.ENGINES: "
                         f"{', '.join(ENGINES) or 'none'}): leave {', '.join(methods)} out of --method")
    return {"engine": engine}


def method_models(textures: list[str], methods: tuple[str, ...], settings_dir: Path | None = None,
                  retuned_dir: Path = RETUNED_DIR) -> dict[tuple[str, str], object]:
    """(texture, method) → the ``models.TextureModel`` that each engine method of ``methods``
    converts with: "learned" and "tuned" with the settings of ``settings_dir``, "retuned"
    today's engine with those of ``retuned_dir``; a texture with no settings file there is
    left out, with a printed note. SystemExit for an engine that models lacks."""
    out = {}
    for m in methods:
        if m not in ENGINE_OF:
            continue
        keyword = engine_keyword(ENGINE_OF[m])
        for t in textures:
            if m == "retuned" and not (Path(retuned_dir) / f"{t}.json").is_file():
                print(f"retuned: no {t}.json in {portable_path(retuned_dir)}: {t} is judged without it")
                continue
            out[t, m] = load(t, retuned_dir if m == "retuned" else settings_dir, **keyword)
    return out


def evaluate(clips: list[ValClip], textures: list[str], qualities: list[str], settings_dir: Path | None = None,
             progress: bool = True, own: dict[str, Path] | None = None,
             strengths: tuple[float, ...] = (1.0,), methods: tuple[str, ...] = METHODS,
             body: tuple[float, float] | None = BODY_BAND, retuned_dir: Path = RETUNED_DIR) -> list[dict]:
    """One judge row per clip × texture × method × quality, and for the engine methods per
    strength too (dict: clip, package, style, texture, method, quality, strength, the
    judge's figures in the full band and, prefixed body_, in the ``body`` band (Hz; None:
    the full band alone), the project's own measure, engine_s = seconds in engine.render).
    methods: of METHODS; an engine method renders its model's ``transfer``, as the product
    does. own: user exemplars (``own:<name>`` → file), judged beside the built-in textures
    by the learned and tuned engines and the morph (retuned settings are built-in textures'
    alone). strengths: the engine's strength (0..1); the morph reference is judged once."""
    from tqdm import tqdm

    from musicoder import audio, engine

    from . import from_exemplar, metrics

    tj = judge_module()
    own = own or {}
    judged = bands(body)
    models = method_models(textures, methods, settings_dir, retuned_dir)
    exemplars = {t: (audio.load(TEXTURES[t].exemplar_path, duration=None).samples,
                     tj.load(str(TEXTURES[t].exemplar_path))) for t in textures}
    rows = []
    with tempfile.TemporaryDirectory(prefix="musicoder-eval-") as tmp:
        tmp = Path(tmp)
        for name, path in own.items():  # as a user's: the part used is what the judge compares with
            samples = audio.load_exemplar(path).samples
            for m in methods:
                if m in ENGINE_OF and m != "retuned":
                    models[name, m] = from_exemplar(samples, settings_dir, **engine_keyword(ENGINE_OF[m]))
            exemplars[name] = (samples, judge_file(tj, samples, tmp / "exemplar.wav"))
        textures = [*textures, *own]
        runs = {t: [(m, st) for m in methods if (t, m) in models or m == "morph"
                    for st in (strengths if m != "morph" else (1.0,))] for t in textures}
        with tqdm(total=len(clips) * len(qualities) * sum(map(len, runs.values())), desc="judging",
                  file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
            for c in clips:
                music = audio.load(c.path, start=c.start, duration=CLIP_SECONDS).samples
                x = judge_file(tj, music, tmp / "input.wav")
                for t in textures:
                    mixes = frontier(tj, x, exemplars[t][1], judged)
                    transforms = {m: models[t, m].transfer for m in methods if (t, m) in models}
                    if "morph" in methods:
                        transforms["morph"] = morph_transform(exemplar_log_mag(exemplars[t][0], music))
                    for q in qualities:
                        for method, strength in runs[t]:
                            bar.set_postfix_str(f"{c.package} {t} {method} {q} {strength:g}", refresh=False)
                            out = engine.render(music, q, transforms[method], strength=strength)
                            y = judge_file(tj, out.samples, tmp / "output.wav")
                            rows.append({"clip": clip_name(c), "package": c.package, "style": c.style,
                                         "texture": t, "method": method, "quality": q, "strength": strength,
                                         **score(tj, x, y, exemplars[t][1], mixes, judged),
                                         **own_measure(metrics, x, y, exemplars[t][1]),
                                         "engine_s": round(sum(out.timings.values()), 3)})
                            bar.update()
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per texture × method × quality × strength: clips, mean and worst advantage, mean and
    min content, mean timbre and texture gain, vs_morph (mean advantage minus the morph's),
    and where the rows have the body band's figures its mean and worst advantage
    (body_mean_advantage, body_min_advantage, body_worst_clip)."""
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
        if all("body_advantage" in r for r in rs):
            body = [r["body_advantage"] for r in rs]
            out[-1] |= {"body_mean_advantage": round(float(np.mean(body)), 4),
                        "body_min_advantage": round(float(np.min(body)), 4),
                        "body_worst_clip": rs[int(np.argmin(body))]["clip"]}
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


def _at_full_strength(summaries: list[dict]) -> dict[tuple[str, str, str], dict]:
    """(texture, method, quality) → the summary at strength 1 (the textures as made)."""
    return {(s["texture"], s["method"], s["quality"]): s for s in summaries if s.get("strength", 1.0) == 1.0}


def _passed(checks: dict) -> dict:
    """``checks`` (name → True, False, or None where what it compares with was not judged)
    with ``passed`` (every one True) and ``verdict``: PASS, FAIL (one is False), or
    INCOMPLETE (none False, one None)."""
    values = list(checks.values())
    verdict = "FAIL" if False in values else "INCOMPLETE" if None in values else "PASS"
    return {**checks, "passed": verdict == "PASS", "verdict": verdict}


def learned_bar(summaries: list[dict]) -> list[dict]:
    """The bar the learned engine must pass to replace the tuned one, per built-in texture
    and quality where "learned" was judged (summaries with the body band's figures): full
    band mean >= the tuned's + LEARNED_VS_TUNED, no clip below BAR_WORST_ADVANTAGE, content
    >= BAR_MIN_CONTENT on every clip; body band mean >= LEARNED_BODY_MEAN, no clip below
    LEARNED_BODY_WORST; mean >= the retuned's in both bands. Each check True/False, None
    when the method it compares with was not judged; ``passed``, ``verdict``."""
    at = _at_full_strength(summaries)
    out = []
    for (t, m, q), s in at.items():
        if m != "learned" or t.startswith(OWN):
            continue
        tuned, retuned = at.get((t, "tuned", q)), at.get((t, "retuned", q))
        checks = {
            "vs_tuned": None if tuned is None else s["mean_advantage"] >= tuned["mean_advantage"] + LEARNED_VS_TUNED,
            "worst": s["min_advantage"] >= BAR_WORST_ADVANTAGE,
            "content": s["min_content"] >= BAR_MIN_CONTENT,
            "body_mean": s["body_mean_advantage"] >= LEARNED_BODY_MEAN,
            "body_worst": s["body_min_advantage"] >= LEARNED_BODY_WORST,
            "vs_retuned": None if retuned is None else s["mean_advantage"] >= retuned["mean_advantage"],
            "body_vs_retuned": None if retuned is None else s["body_mean_advantage"] >= retuned["body_mean_advantage"]}
        out.append({"texture": t, "quality": q, **_passed(checks)})
    return out


def own_learned_bar(summaries: list[dict]) -> list[dict]:
    """The learned engine's bar for users' own exemplars, per quality where "learned" was
    judged on them: each recording's mean >= OWN_LEARNED_MEAN (full band) and >=
    OWN_LEARNED_BODY_MEAN (body band), no clip below OWN_BAR_WORST; the mean of the
    recordings' means >= the tuned engine's + LEARNED_VS_TUNED (None without a tuned
    summary for every recording). ``recordings``: name → its three checks."""
    at = _at_full_strength(summaries)
    out = []
    for q in dict.fromkeys(q for (t, m, q) in at if m == "learned" and t.startswith(OWN)):
        names = [t for (t, m, qq) in at if m == "learned" and qq == q and t.startswith(OWN)]
        learned = [at[t, "learned", q] for t in names]
        tuned = [at.get((t, "tuned", q)) for t in names]
        recordings = {t: {"mean": s["mean_advantage"] >= OWN_LEARNED_MEAN,
                          "body_mean": s["body_mean_advantage"] >= OWN_LEARNED_BODY_MEAN,
                          "worst": s["min_advantage"] >= OWN_BAR_WORST} for t, s in zip(names, learned)}
        learned_mean = float(np.mean([s["mean_advantage"] for s in learned]))
        tuned_mean = None if None in tuned else float(np.mean([s["mean_advantage"] for s in tuned]))
        checks = {"every_recording": all(all(r.values()) for r in recordings.values()),
                  "vs_tuned": None if tuned_mean is None else learned_mean >= tuned_mean + LEARNED_VS_TUNED}
        out.append({"quality": q, "recordings": recordings, "learned_mean_of_means": round(learned_mean, 4),
                    "tuned_mean_of_means": None if tuned_mean is None else round(tuned_mean, 4), **_passed(checks)})
    return out


def held_out_training_bar(summaries: list[dict]) -> list[dict]:
    """On the network's held-out training packages, per texture and quality where both were
    judged: the learned engine's mean advantage >= the tuned one's (full band)."""
    at = _at_full_strength(summaries)
    return [{"texture": t, "quality": q, "learned": s["mean_advantage"],
             "tuned": at[t, "tuned", q]["mean_advantage"],
             **_passed({"vs_tuned": s["mean_advantage"] >= at[t, "tuned", q]["mean_advantage"]})}
            for (t, m, q), s in at.items() if m == "learned" and (t, "tuned", q) in at]


def by_style(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean advantage per ``texture/method/quality`` and style."""
    table: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        table.setdefault(f"{r['texture']}/{r['method']}/{r['quality']}", {}).setdefault(r["style"], []).append(
            r["advantage"])
    return {k: {st: round(float(np.mean(v)), 4) for st, v in d.items()} for k, d in table.items()}


def strength_table(summaries: list[dict]) -> str:
    """The engine methods' mean advantage and mean content per texture × method × quality
    (rows) and strength (columns), and whether each moves monotonically with strength
    (advantage up, content down, each step within 0.005 of it)."""
    rows: dict[tuple, dict[float, dict]] = {}
    for s in summaries:
        if s["method"] != "morph":
            rows.setdefault((s["texture"], s["method"], s["quality"]), {})[s["strength"]] = s
    strengths = sorted({st for r in rows.values() for st in r})
    head = " ".join(f"{st:>13g}" for st in strengths)
    lines = [f"{'texture':14s} {'method':9s} {'quality':8s} {head}   monotone (advantage up, content down)",
             f"{'':33s} " + " ".join(f"{'adv / content':>13s}" for _ in strengths)]
    for (t, m, q), by in rows.items():
        cells = " ".join(f"{by[st]['mean_advantage']:+6.3f}/{by[st]['mean_content']:.3f}" if st in by else f"{'':13s}"
                         for st in strengths)
        adv = [by[st]["mean_advantage"] for st in strengths if st in by]
        content = [by[st]["mean_content"] for st in strengths if st in by]
        up = all(b >= a - 0.005 for a, b in zip(adv, adv[1:]))
        down = all(b <= a + 0.005 for a, b in zip(content, content[1:]))
        lines.append(f"{t:14s} {m:9s} {q:8s} {cells}   {'yes' if up and down else 'NO'}")
    return "\n".join(lines)


def _body(value: float | None) -> str:
    """A body-band advantage for a table (7 wide), blank where the body band was not judged."""
    return f"{'':7s}" if value is None else f"{value:+7.3f}"


def comparison_table(summaries: list[dict]) -> str:
    """Per texture × quality × method (METHODS' order; strength 1): clips, the full band's
    mean advantage (worst clip), the lowest content kept, the body band's mean (worst)."""
    at = _at_full_strength(summaries)
    textures = list(dict.fromkeys(t for t, _, _ in at))
    rank = {m: i for i, m in enumerate(METHODS)}
    keys = sorted(at, key=lambda k: (textures.index(k[0]), QUALITIES.index(k[2]) if k[2] in QUALITIES else 9,
                                     rank.get(k[1], 9)))
    lines = [f"{'texture':14s} {'quality':8s} {'method':9s} {'clips':>5s}  {'full: mean (worst)':>18s}  "
             f"{'content min':>11s}  {'body: mean (worst)':>18s}"]
    for t, m, q in keys:
        s = at[t, m, q]
        full = f"{s['mean_advantage']:+.3f} ({s['min_advantage']:+.3f})"
        body = f"{s['body_mean_advantage']:+.3f} ({s['body_min_advantage']:+.3f})" if "body_mean_advantage" in s else ""
        lines.append(f"{t:14s} {q:8s} {m:9s} {s['clips']:5d}  {full:>18s}  {s['min_content']:11.3f}  {body:>18s}")
    return "\n".join(lines)


def _marks(checks: dict) -> dict[str, str]:
    """Each check of a bar as printed: ok, FAIL, or n/a (not judged)."""
    return {k: "n/a" if v is None else "ok" if v else "FAIL" for k, v in checks.items()}


def learned_bar_lines(summaries: list[dict]) -> list[str]:
    """The learned bar (:func:`learned_bar` and :func:`own_learned_bar`) as printed, with
    the figures each check compares; nothing where "learned" was not judged."""
    at = _at_full_strength(summaries)
    bars, own = learned_bar(summaries), own_learned_bar(summaries)
    if not bars and not own:
        return []
    lines = ["", f"learned bar, built-in textures: full band mean >= tuned's {LEARNED_VS_TUNED:+.2f}, no clip below "
                 f"{BAR_WORST_ADVANTAGE:+.2f}, content >= {BAR_MIN_CONTENT} on every clip; body band mean >= "
                 f"{LEARNED_BODY_MEAN:+.2f}, no clip below {LEARNED_BODY_WORST:+.2f}; mean >= retuned's in both bands"]
    for b in bars:
        t, q = b["texture"], b["quality"]
        s, tuned, retuned = at[t, "learned", q], at.get((t, "tuned", q)), at.get((t, "retuned", q))
        mark = _marks(b)
        lines.append(
            f"  {t:14s} {q:8s} {b['verdict']}: mean {s['mean_advantage']:+.3f} vs tuned "
            f"{'n/a' if tuned is None else format(tuned['mean_advantage'], '+.3f')} {mark['vs_tuned']}, "
            f"worst {s['min_advantage']:+.3f} {mark['worst']}, min content {s['min_content']:.3f} {mark['content']}; "
            f"body mean {s['body_mean_advantage']:+.3f} {mark['body_mean']}, worst {s['body_min_advantage']:+.3f} "
            f"{mark['body_worst']}; vs retuned "
            + ("n/a" if retuned is None else f"{retuned['mean_advantage']:+.3f} {mark['vs_retuned']}, body "
                                              f"{retuned['body_mean_advantage']:+.3f} {mark['body_vs_retuned']}"))
    if own:
        lines.append(f"learned bar, {OWN}* user exemplars: per recording mean >= {OWN_LEARNED_MEAN:+.2f} (full), "
                     f">= {OWN_LEARNED_BODY_MEAN:+.2f} (body), no clip below {OWN_BAR_WORST:+.2f}; mean of means >= "
                     f"tuned's {LEARNED_VS_TUNED:+.2f}")
    for b in own:
        q = b["quality"]
        for t, checks in b["recordings"].items():
            s, tuned, mark = at[t, "learned", q], at.get((t, "tuned", q)), _marks(checks)
            lines.append(f"  {t:22s} {q:8s} learned {s['mean_advantage']:+.3f} {mark['mean']} (worst "
                         f"{s['min_advantage']:+.3f} {mark['worst']}, body {s['body_mean_advantage']:+.3f} "
                         f"{mark['body_mean']}); tuned "
                         + ("n/a" if tuned is None else f"{tuned['mean_advantage']:+.3f} (worst "
                                                        f"{tuned['min_advantage']:+.3f}, body "
                                                        f"{_body(tuned.get('body_mean_advantage')).strip()})"))
        tuned_mm = "n/a" if b["tuned_mean_of_means"] is None else f"{b['tuned_mean_of_means']:+.3f}"
        lines.append(f"  {'mean of means':22s} {q:8s} {b['verdict']}: learned {b['learned_mean_of_means']:+.3f} vs "
                     f"tuned {tuned_mm} {_marks(b)['vs_tuned']}; every recording {_marks(b)['every_recording']}")
    return lines


def report(rows: list[dict], summaries: list[dict], styles: dict, valset: dict,
           held_out_training: bool = False) -> str:
    """The text tables: rows, summaries, the comparison of the methods, the bars (the
    quality bar and the learned bar; on the network's held-out training packages
    (``held_out_training``) learned against tuned alone), per style."""
    w = max([len("clip"), *(len(r["clip"]) for r in rows)])
    where = "training packages the network never trained on" if held_out_training else "held-out packages"
    lines = [f"{'network held-out set' if held_out_training else 'validation set'}: {valset['clip_count']} clips × "
             f"{CLIP_SECONDS:g} s from {len(valset['packages'])} {where} "
             f"({', '.join(f'{p} {s}' for p, s in valset['packages'].items())})", "",
             f"{'clip':{w}s} {'texture':14s} {'method':9s} {'quality':8s} {'advant':>7s} {'timbre':>7s} "
             f"{'texture':>7s} {'content':>7s} {'chroma':>7s} {'onset':>7s} {'body':>7s} {'own dB':>7s} "
             f"{'own chr':>7s} {'engine':>7s}"]
    for r in rows:
        method = r["method"] + (f"@{r['strength']:g}" if r.get("strength", 1.0) != 1.0 else "")
        lines.append(f"{r['clip']:{w}s} {r['texture']:14s} {method:9s} {r['quality']:8s} "
                     f"{r['advantage']:+7.3f} {r['timbre_gain']:+7.3f} {r['texture_gain']:+7.3f} "
                     f"{r['content']:7.3f} {r['chroma']:7.3f} {r['onset']:7.3f} {_body(r.get('body_advantage'))} "
                     f"{r['own_move']:+7.2f} {r['own_chroma']:7.3f} {r['engine_s']:6.2f}s")
    lines += ["", "summary (advantage: mean, worst clip; content: mean, min; vs morph: mean advantage minus the "
                  "morph's; body: the body band's mean, worst clip; own measure, tuned on by nothing: dB closer to "
                  "the exemplar, min chroma kept)",
              f"{'texture':14s} {'method':9s} {'quality':8s} {'clips':>5s} {'mean':>7s} {'worst':>7s} "
              f"{'content':>7s} {'min':>6s} {'vs morph':>8s} {'body':>7s} {'worst':>7s} {'own dB':>7s} {'own chr':>7s}"]
    for s in summaries:
        vs = "" if s["vs_morph"] is None else f"{s['vs_morph']:+8.3f}"
        method = s["method"] + (f"@{s['strength']:g}" if s.get("strength", 1.0) != 1.0 else "")
        lines.append(f"{s['texture']:14s} {method:9s} {s['quality']:8s} {s['clips']:5d} "
                     f"{s['mean_advantage']:+7.3f} {s['min_advantage']:+7.3f} {s['mean_content']:7.3f} "
                     f"{s['min_content']:6.3f} {vs:>8s} {_body(s.get('body_mean_advantage'))} "
                     f"{_body(s.get('body_min_advantage'))} {s['mean_own_move']:+7.2f} {s['min_own_chroma']:7.3f}")
    lines += ["", "the methods side by side (strength 1)", comparison_table(summaries)]
    if held_out_training:
        lines += ["", "held-out training bar: the learned engine's mean advantage >= the tuned one's, per texture"]
        for b in held_out_training_bar(summaries):
            lines.append(f"  {b['texture']:14s} {b['quality']:8s} {b['verdict']}: learned {b['learned']:+.3f} vs "
                         f"tuned {b['tuned']:+.3f}")
    else:
        lines += ["", f"quality bar, built-in textures: mean advantage >= {BAR_MEAN_ADVANTAGE:+.2f}, no clip below "
                      f"{BAR_WORST_ADVANTAGE:+.2f}, content >= {BAR_MIN_CONTENT} on every clip, mean advantage >= "
                      f"morph's {BAR_VS_MORPH:+.2f}",
                  f"quality bar, {OWN}* user exemplars: mean >= {OWN_BAR_MEAN:+.2f}, no clip below "
                  f"{OWN_BAR_WORST:+.2f}, content >= {BAR_MIN_CONTENT}, mean above the morph's"]
        for s in summaries:
            if s["method"] == "morph" or s.get("strength", 1.0) != 1.0:
                continue
            b = bar_check(s)
            mark = {k: "ok" if v else "FAIL" for k, v in b.items()}
            vs = "n/a" if s["vs_morph"] is None else f"{s['vs_morph']:+.3f}"
            lines.append(f"  {s['texture']:14s} {s['method']:9s} {s['quality']:8s} {'PASS' if b['passed'] else 'FAIL'}: "
                         f"mean {s['mean_advantage']:+.3f} {mark['mean_advantage']}, worst {s['min_advantage']:+.3f} "
                         f"{mark['worst_advantage']}, min content {s['min_content']:.3f} {mark['min_content']}, "
                         f"vs morph {vs} {mark['vs_morph']}")
        lines += learned_bar_lines(summaries)
    names = valset["styles"]
    lines += ["", "mean advantage per style", f"{'texture/method/quality':24s} " + " ".join(f"{n[:14]:>14s}" for n in names)]
    for k, d in styles.items():
        lines.append(f"{k:24s} " + " ".join(f"{d[n]:+14.3f}" if n in d else f"{'':14s}" for n in names))
    return "\n".join(lines)


def update_metadata(texture: str, rows: list[dict], summaries: list[dict], valset: dict,
                    settings_dir: Path | None = None, judge: str = JUDGE) -> Path:
    """Store the tuned engine's results for the texture in ``{texture}.json`` (the tuned
    settings' file) under ``validation``: the keys the earlier evaluation wrote (judge,
    quality, clip_seconds, its summary and rows, for HIFI when judged) plus ``by_quality``
    (summary with the body band's mean and worst where judged, bar and rows per quality,
    morph reference) and the validation set. Returns the file."""
    meta_path = Path(settings_dir or SETTINGS_DIR) / f"{texture}.json"
    meta = json.loads(meta_path.read_text())
    keys = ("clips", "mean_advantage", "min_advantage", "mean_content", "min_content", "mean_timbre_gain",
            "mean_texture_gain", "mean_own_move", "min_own_chroma", "body_mean_advantage", "body_min_advantage",
            "vs_morph")
    by_quality = {}
    for s in summaries:
        if s["texture"] == texture and s["method"] == "tuned":
            morph = next((m for m in summaries if m["texture"] == texture and m["method"] == "morph"
                          and m["quality"] == s["quality"]), None)
            by_quality[s["quality"]] = {
                **{k: s[k] for k in keys if k in s}, "bar": bar_check(s),
                "morph": {k: morph[k] for k in keys[:-1] if k in morph} if morph else None,
                "rows": [{k: v for k, v in r.items() if k not in ("texture", "method", "quality")} for r in rows
                         if r["texture"] == texture and r["method"] == "tuned" and r["quality"] == s["quality"]]}
    if not by_quality:
        raise SystemExit(f"no tuned rows for {texture}: nothing to store")
    main_q = "hifi" if "hifi" in by_quality else next(iter(by_quality))
    meta["validation"] = {"judge": judge, "quality": main_q, "clip_seconds": CLIP_SECONDS,
                          **{k: v for k, v in by_quality[main_q].items() if k not in ("bar", "morph")},
                          "validation_set": {k: v for k, v in valset.items() if k != "clips"},
                          "by_quality": by_quality}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path


def parse_methods(text: str) -> tuple[str, ...]:
    """``--method``'s comma-separated list as METHODS, in METHODS' order; ValueError naming
    anything else."""
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in chosen if m not in METHODS]
    if bad or not chosen:
        raise ValueError(f"choose from {', '.join(METHODS)} (got {text!r})")
    return tuple(m for m in METHODS if m in chosen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", default="all", choices=[*TEXTURES, "all", "none"])
    ap.add_argument("--method", metavar="M[,M...]",
                    help=f"which of {', '.join(METHODS)} to judge (default: all of them; with --held-out-training "
                         f"learned,tuned)")
    ap.add_argument("--exemplars", type=user_path, metavar="DIR",
                    help="also judge every audio file of DIR as a user's own exemplar (the user-exemplar bar)")
    ap.add_argument("--quality", default=",".join(QUALITIES), help="comma-separated: %(default)s")
    ap.add_argument("--music-dir", type=user_path, default=DEFAULT_MUSIC_DIR,
                    help="folder with manifest.json, train/ and val/ (default $MUSICODER_MUSIC_DIR or %(default)s)")
    ap.add_argument("--tracks-per-package", type=int, default=TRACKS_PER_PACKAGE)
    ap.add_argument("--allow-small", action="store_true",
                    help=f"judge a set of fewer than {MIN_CLIPS} clips or {MIN_STYLES} styles")
    ap.add_argument("--held-out-training", action="store_true",
                    help="judge the training packages the network never trains on (models.data.NETWORK_HELD_OUT, "
                         "from train/) instead of the held-out packages: learned against tuned")
    ap.add_argument("--settings-dir", type=Path, help="the tuned settings (default models/settings)")
    ap.add_argument("--retuned-dir", type=Path, default=RETUNED_DIR,
                    help="the retuned settings (default models/settings/retuned)")
    ap.add_argument("--json", type=Path, metavar="PATH", help="write all rows and summaries to PATH")
    ap.add_argument("--update-metadata", action="store_true",
                    help="store each texture's tuned summary and rows in its settings file")
    ap.add_argument("--strength", default="1", metavar="S[,S...]",
                    help="the engine's strength (0..1) for the engine methods, comma-separated: a strength table "
                         "(default %(default)s)")
    ap.add_argument("--band", nargs=2, type=float, metavar=("LO_HZ", "HI_HZ"), default=BODY_BAND,
                    help="the body band, judged beside the full band: the judge's timbre and texture statistics of "
                         "this range only (default 250 4000: the body of the music, where its notes live); content "
                         "and the frontier's contents stay whole")
    a = ap.parse_args(argv)
    try:
        methods = parse_methods(a.method or ("learned,tuned" if a.held_out_training else ",".join(METHODS)))
    except ValueError as e:
        ap.error(f"--method: {e}")
    judge = f"{JUDGE}, and {JUDGE} --band {a.band[0]:g} {a.band[1]:g} (body_*)"
    try:
        strengths = tuple(float(v) for v in a.strength.split(",") if v.strip())
    except ValueError:
        strengths = ()
    if not strengths or not all(0.0 <= v <= 1.0 for v in strengths):
        ap.error(f"--strength: numbers within 0..1, comma-separated (got {a.strength!r})")
    if a.update_metadata and strengths != (1.0,):
        ap.error("--update-metadata stores the textures as tuned: leave --strength at 1")
    if a.update_metadata and (a.held_out_training or "tuned" not in methods):
        ap.error("--update-metadata stores the tuned engine on the held-out packages: judge tuned, "
                 "without --held-out-training")
    textures = list(TEXTURES) if a.texture == "all" else [] if a.texture == "none" else [a.texture]
    own = user_exemplars(a.exemplars) if a.exemplars else {}
    if not textures and not own:
        ap.error("nothing to judge: --texture none and no --exemplars")
    qualities = [q.strip() for q in a.quality.split(",") if q.strip()]
    bad = [q for q in qualities if q not in QUALITIES]
    if bad or not qualities:
        ap.error(f"--quality: choose from {', '.join(QUALITIES)} (got {a.quality!r})")
    for m in methods:  # an engine models lacks stops the run here, not after the others are judged
        if m in ENGINE_OF:
            engine_keyword(ENGINE_OF[m])
    t0 = time.perf_counter()
    if a.held_out_training:
        clips = network_held_out_clips(a.music_dir, per_package=a.tracks_per_package)
    else:
        clips = validation_clips(a.music_dir, a.tracks_per_package)
        check_size(clips, a.allow_small)
    valset = describe(clips, a.music_dir)
    rows = evaluate(clips, textures, qualities, a.settings_dir, own=own, strengths=strengths, methods=methods,
                    body=tuple(a.band), retuned_dir=a.retuned_dir)
    summaries = summarise(rows)
    styles = by_style(rows)
    wall = time.perf_counter() - t0
    print(f"judge: {judge}")
    print(report(rows, summaries, styles, valset, a.held_out_training))
    if strengths != (1.0,):
        print("\nstrength table\n" + strength_table(summaries))
    print(f"\n{len(rows)} judged outputs in {wall:.0f} s")
    if a.json:
        bars = {"held_out_training_bar": held_out_training_bar(summaries)} if a.held_out_training else \
            {"learned_bar": learned_bar(summaries), "own_learned_bar": own_learned_bar(summaries)}
        a.json.write_text(json.dumps({"judge": judge, "body_band": list(a.band), "methods": list(methods),
                                      "validation_set": valset, "held_out_training": a.held_out_training,
                                      "morph_weight": MORPH_WEIGHT, "rows": rows,
                                      "summaries": [{**s, **({"bar": bar_check(s)} if s["method"] != "morph" else {})}
                                                    for s in summaries],
                                      **bars, "by_style": styles, "wall_s": round(wall, 1)}, indent=2) + "\n")
    if a.update_metadata:
        for t in textures:
            print(f"stored in {update_metadata(t, rows, summaries, valset, a.settings_dir, judge)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
