"""Tune each texture's transfer settings on training music, by the judge, and store them.

    python -m models.tune [--texture laser|water|future|all] [--music-dir DIR] [--jobs 2]
    python -m models.tune --texture any --exemplars DIR     # a user's exemplar, on DIR's recordings
    python -m models.tune [--texture ...] --refine          # REFINE's changes on the stored settings
    python -m models.tune --refine --body-band --out-dir models/settings/retuned   # the body band too

Tuning set: 10 s windows (at 30 s, as ``models.evaluate`` cuts) of every *training*
package of ``DIR/manifest.json`` (its ``packages`` less its ``val_packages``, tracks in
``DIR/train/``), so the held-out packages stay unseen. Two stages, because the worst
window decides and one window per package hides it: every setting of :data:`GRID`
converts the middle track's window of each package; the SHORTLIST best of them then also
convert the windows of the other tracks (``--per-package`` in all, spread over the
package's sorted tracks; a silent window, where a track ends early, is skipped). Each
conversion is at Standard through the product's own ``engine.render``, and
``shared/eval/texture_judge.py --frontier`` scores it. The chosen setting maximises
:func:`objective` over every window it converted: its margin to the bar (the smaller of
mean advantage less the bar's mean, and less the bar's floor the worst advantage that a
validation set of ``evaluate.MIN_CLIPS`` of these windows would be expected to have),
among settings that keep content >= MIN_CONTENT on every window; for a user's exemplar,
the smallest such margin over the recordings. ``--body-band`` judges every conversion in
the body band too (the judge's ``--band 250 4000``, ``evaluate.BODY_BAND``) and maximises
the mean of the two bands' objectives (:func:`band_objective`; the content rule stays), so
the texture must reach the body of the music, not only its highs. ``--resume RAW`` reuses
the scores of an earlier run's ``--raw`` file. Writes ``{texture}.json`` (settings, tuning
record, the five best rows) in ``--out-dir`` (default ``--settings-dir``, models/settings);
a validation record there is dropped when the settings change (run ``models.evaluate
--update-metadata`` again).

``settings/any.json`` holds what a user's own exemplar gets (it has no tuning of its own),
from the recordings of ``--exemplars DIR`` (``scripts/gather_user_exemplars.py --set
tuning``; never the validation recordings), each converting ANY_GRID: a ``by_sound`` table
of each recording's :func:`~musicoder.texture.flatness` and its own best setting (a user's
exemplar takes its nearest recording's), the one setting best for all of them together for
comparison, and the table's leave-one-out check (each recording scored with the setting its
nearest other recording would give it, on the first-stage windows).

``--refine`` does not search the grid again: it starts from the stored settings (each row
of any.json's table, with ``--texture any``) and tries each change of :data:`REFINE`
(:func:`any_changes`: the blends only for a tonal row) merged onto them, through the same
two stages and rule; the better setting is stored with a ``refined`` record beside the grid
search's. With ``--body-band`` a built-in texture tries :data:`BODY_REFINE` instead: lower
crossovers and spread_low, alone and together.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import itertools
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import FORMAT_VERSION, METHOD, SETTINGS_DIR, TEXTURES, evaluate
from .data import DEFAULT_MUSIC_DIR, portable_command, user_path

GRID_AXES = {"crossover_hz": (600.0, 1000.0, 2000.0, 3500.0), "keep_high": (0.3, 0.6, 0.9),
             "spread": (0.5, 0.8, 1.0), "keep_low": (1.0, 0.85)}
GRID = [dict(zip(GRID_AXES, values)) for values in itertools.product(*GRID_AXES.values())]
# a user's exemplar: every crossover, with a light and a strong pull above it (10 tuning
# recordings x 14 windows x 72 settings would take hours; these 8 take ~20 min)
ANY_GRID = [{"crossover_hz": x, "keep_high": kh, "spread": sp, "keep_low": 1.0}
            for x in GRID_AXES["crossover_hz"] for kh, sp in ((0.9, 0.5), (0.6, 0.8))]
QUALITY = "standard"
MIN_CONTENT = 0.65  # a margin over the bar's 0.6: held-out music keeps less than tuning music
BAR = (evaluate.BAR_MEAN_ADVANTAGE, evaluate.BAR_WORST_ADVANTAGE)  # the quality bar, per texture
ANY_BAR = (evaluate.OWN_BAR_MEAN, evaluate.OWN_BAR_WORST)  # the user-exemplar bar, per recording
SILENT_RMS = 1e-3  # -60 dBFS: a window past a track's music (some end early and pad with silence)
PER_PACKAGE = 3  # windows per training package in the second stage
SHORTLIST = 12  # settings of the first stage that the second stage converts
ANY = "any"  # the settings file of a user's own exemplar


def tuning_clips(music_dir: Path, per_package: int = 1) -> list[evaluate.ValClip]:
    """``per_package`` windows per training package of ``music_dir`` (manifest order), of
    tracks spread over its sorted train/ tracks (1: the middle one, which 3 include too),
    less any window quieter than SILENT_RMS. SystemExit if a held-out package has tracks in
    train/."""
    from musicoder import audio

    from .data import audio_files

    manifest = evaluate.read_manifest(music_dir)
    held_out = set(manifest["val_packages"])
    train = audio_files(Path(music_dir) / "train")
    clips = []
    for package, info in manifest["packages"].items():
        tracks = [p for p in train if p.name.startswith(f"{package}__")]
        if package in held_out:
            if tracks:
                raise SystemExit(f"{music_dir}: held-out package {package} has tracks in train/")
            continue
        for p in evaluate.spread(tracks, per_package):
            clip = evaluate.ValClip(p, package, (info or {}).get("style", "unknown"),
                                    evaluate.window_start(audio.probe(p).duration))
            samples = audio.load(p, start=clip.start, duration=evaluate.CLIP_SECONDS).samples
            if np.sqrt(np.mean(np.square(samples, dtype=np.float64))) >= SILENT_RMS:
                clips.append(clip)
    return clips


def expected_worst(values: list[float], n: int = evaluate.MIN_CLIPS) -> float:
    """The expected minimum of ``n`` of ``values`` drawn at random without replacement (all
    of them when there are no more): what the worst clip of an n-clip validation set drawn
    like these windows would be. One outlier window moves it by ~1/len(values), not wholly."""
    v = np.sort(np.asarray(values, float))
    n = min(n, len(v))
    # P(the k-th smallest is the minimum) = C(len - k, n - 1) / C(len, n)
    p = np.array([math.comb(len(v) - k, n - 1) for k in range(1, len(v) + 1)], float) / math.comb(len(v), n)
    return float(p @ v)


def objective(advantages: list[float], contents: list[float], bar: tuple[float, float] = BAR) -> float:
    """What tuning maximises: the margin to ``bar`` (mean, floor), min(mean advantage - mean,
    expected_worst(advantages) - floor), so that music tuning never saw, which scores lower,
    still clears both; -inf when any window keeps less than MIN_CONTENT."""
    if min(contents) < MIN_CONTENT:
        return float("-inf")
    return float(min(np.mean(advantages) - bar[0], expected_worst(advantages) - bar[1]))


def band_objective(scores: list[dict], bar: tuple[float, float] = BAR, body: bool = False) -> float:
    """:func:`objective` of the windows' ``scores`` ({advantage, content[, body_advantage]}
    each): the full band's, or with ``body`` the mean of the full band's and the body
    band's (evaluate.BODY_BAND: the texture must reach the music's body, not only its highs)."""
    contents = [r["content"] for r in scores]
    full = objective([r["advantage"] for r in scores], contents, bar)
    if not body:
        return full
    return (full + objective([r["body_advantage"] for r in scores], contents, bar)) / 2


def judge_grid(exemplar_path: Path, clip: evaluate.ValClip, settings: list[dict], body: bool = False) -> list[dict]:
    """The judge's scores of each of ``settings`` (Settings keyword dicts) on one window,
    toward the exemplar recording at ``exemplar_path`` (the part a conversion uses):
    [{advantage, content}] (with ``body`` also body_advantage, the body band's), in the
    order of ``settings``."""
    from musicoder import audio, engine
    from musicoder import texture as transfer

    tj = evaluate.judge_module()
    judged = evaluate.bands(evaluate.BODY_BAND if body else None)
    samples = audio.load_exemplar(exemplar_path).samples
    exemplar = transfer.analyse_exemplar(samples)
    music = audio.load(clip.path, start=clip.start, duration=evaluate.CLIP_SECONDS).samples
    with tempfile.TemporaryDirectory(prefix="musicoder-tune-") as tmp:
        s = evaluate.judge_file(tj, samples, Path(tmp) / "exemplar.wav")
        x = evaluate.judge_file(tj, music, Path(tmp) / "input.wav")
        mixes = evaluate.frontier(tj, x, s, judged)
        scores = []
        for setting in settings:
            out = engine.render(music, QUALITY, transfer.make_transform(exemplar, transfer.Settings(**setting)))
            y = evaluate.judge_file(tj, out.samples, Path(tmp) / "output.wav")
            r = evaluate.score(tj, x, y, s, mixes, judged)
            scores.append({k: r[k] for k in score_keys(body)})
    return scores


def score_keys(body: bool = False) -> tuple[str, ...]:
    """The figures a tuning score holds: advantage and content, and body_advantage with ``body``."""
    return ("advantage", "content", *(("body_advantage",) if body else ()))


def windows(targets: dict[str, list[str]], target: str, results: dict, columns: dict[str, list[dict]],
            settings: list[dict]) -> dict:
    """window → the scores of ``settings`` there, for what ``target`` is tuned from (the
    sources ``targets[target]``); results hold each source's scores in the order of
    ``columns[source]``. any.json's one setting is tuned from several recordings: its windows
    are named recording/window (``choose`` judges each recording)."""
    return {(f"{t.removeprefix(ANY + ':')}/{name}" if target == ANY else name):
            [scores[columns[t].index(g)] for g in settings] for t in targets[target] for name, scores in results[t].items()}


def two_stages(sources: dict[str, Path], grids: dict[str, list[dict]], targets: dict[str, list[str]],
               target_grid: dict[str, list[dict]], bars: dict[str, tuple[float, float]],
               first: list[evaluate.ValClip], rest: list[evaluate.ValClip], shortlist: int, jobs: int,
               known: dict | None = None, label: str = "", body: bool = False,
               always: dict[str, list[dict]] | None = None) -> dict:
    """The tuning's search: every source converts its grid on the ``first`` windows; each
    target (tuned from the sources ``targets[target]``, choosing from ``target_grid[target]``
    toward ``bars[target]``) keeps its ``shortlist`` best, and the settings ``always[target]``
    whatever their rank, which then convert the ``rest``. body: judged in the body band
    too, and chosen by both (:func:`band_objective`).
    Returns stage1 (source → window → scores in grid order), shortlists (target → settings),
    wanted (source → what it converted in the second stage), both (source → every window's
    scores of ``wanted``), per_clip and ranked (target → ``choose``'s rows over all windows)."""
    stage1 = judge_all(sources, first, grids, jobs, f"{label}first stage", known, body)
    shortlists = {target: _unique([*(r["settings"] for r in choose(windows(targets, target, stage1, grids,
                                                                           target_grid[target]),
                                                                   target_grid[target], bars[target], body)[:shortlist]),
                                   *(always or {}).get(target, [])])
                  for target in targets}
    # a source converts the union of the shortlists of what it is tuned for, in its grid's order
    wanted = {t: [g for g in grids[t] if any(g in shortlists[x] for x in targets if t in targets[x])] for t in sources}
    stage2 = judge_all(sources, rest, wanted, jobs, f"{label}second stage", known, body) if rest else \
        {t: {} for t in sources}
    both = {t: {name: [scores[grids[t].index(g)] for g in wanted[t]] for name, scores in stage1[t].items()} | stage2[t]
            for t in sources}
    per_clip = {target: windows(targets, target, both, wanted, shortlists[target]) for target in targets}
    ranked = {target: choose(per_clip[target], shortlists[target], bars[target], body) for target in targets}
    return {"stage1": stage1, "shortlists": shortlists, "wanted": wanted, "both": both, "per_clip": per_clip,
            "ranked": ranked}


def choose(per_clip: dict[str, list[dict]], settings: list[dict] = GRID, bar: tuple[float, float] = BAR,
           body: bool = False) -> list[dict]:
    """``settings`` (default GRID) with their summary over the windows (with ``body`` the
    body band's mean and worst advantage too), best :func:`band_objective` toward ``bar``
    first. per_clip: window name → scores in the order of ``settings``; windows named
    ``recording/window`` (a user's exemplar, tuned on several recordings) are judged per
    recording, and the worst recording's objective counts."""
    groups: dict[str, list[str]] = {}
    for name in per_clip:
        groups.setdefault(name.split("/")[0] if "/" in name else "", []).append(name)
    ranked = []
    for i, setting in enumerate(settings):
        adv = [scores[i]["advantage"] for scores in per_clip.values()]
        content = [scores[i]["content"] for scores in per_clip.values()]
        worst_group = min(band_objective([per_clip[n][i] for n in names], bar, body) for names in groups.values())
        ranked.append({"settings": setting, "objective": round(worst_group, 4),
                       "mean_advantage": round(float(np.mean(adv)), 4), "min_advantage": round(min(adv), 4),
                       "min_content": round(min(content), 4)})
        if body:
            body_adv = [scores[i]["body_advantage"] for scores in per_clip.values()]
            ranked[-1] |= {"body_mean_advantage": round(float(np.mean(body_adv)), 4),
                           "body_min_advantage": round(min(body_adv), 4)}
    return sorted(ranked, key=lambda r: -r["objective"])


def write_settings(texture: str, ranked: list[dict], clips: list[evaluate.ValClip], per_clip: dict,
                   settings: list[dict], bar: tuple[float, float], command: str, folder: Path = SETTINGS_DIR,
                   grid: list[dict] = GRID, by_sound: list[dict] | None = None,
                   leave_one_out: list[dict] | None = None, body: bool = False) -> Path:
    """Store the best setting and its tuning record in ``folder/{texture}.json`` (texture
    "any": the setting for all of a user's exemplars together, with the ``by_sound`` table
    and its ``leave_one_out`` check). per_clip: window → scores in the order of
    ``settings``, the shortlist that converted every window; grid: the first stage's;
    body: chosen by the full and the body band's objective together."""
    path = folder / f"{texture}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    best = ranked[0]
    best_index = settings.index(best["settings"])
    exemplars = sorted({name.split("/")[0] for name in per_clip}) if texture == ANY else \
        f"exemplars/{TEXTURES[texture].exemplar_path.name}"
    record = {"format_version": FORMAT_VERSION, "method": METHOD, "texture": texture,
              "exemplar": exemplars, "settings": best["settings"],
              "tuning": {"command": command, "date": datetime.date.today().isoformat(),
                         "judge": judge_record(body), "quality": QUALITY,
                         "rule": f"max min(mean advantage - ({bar[0]:+.2f}), expected worst of "
                                 f"{evaluate.MIN_CLIPS} windows - ({bar[1]:+.2f})), "
                                 f"content >= {MIN_CONTENT} on every window{BODY_RULE if body else ''}; the whole "
                                 f"grid on the first window of each package, the best {len(settings)} on all its "
                                 f"windows",
                         "grid": {k: list(v) for k, v in GRID_AXES.items()} if grid is GRID else grid,
                         "clips": {evaluate.clip_name(c): c.style for c in clips},
                         "windows": len(per_clip),
                         "best_rows": {name: scores[best_index] for name, scores in per_clip.items()},
                         "top": ranked[:5]}}
    if by_sound is not None:
        record["by_sound"] = by_sound
        record["tuning"]["rule"] += ("; by_sound: the same rule per recording, from its own windows; a user's "
                                     "exemplar takes the row nearest to it by flatness")
        record["tuning"]["leave_one_out"] = leave_one_out
    if old.get("settings") == best["settings"] and "validation" in old:
        record["validation"] = old["validation"]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


BODY_RULE = (f", as the mean of that in the full band and in the body band (--band {evaluate.BODY_BAND[0]:g} "
             f"{evaluate.BODY_BAND[1]:g})")


def judge_record(body: bool = False) -> str:
    """The judge as a tuning record names it: with ``body``, in the body band too."""
    lo, hi = evaluate.BODY_BAND
    return f"{evaluate.JUDGE}, and with --band {lo:g} {hi:g}" if body else evaluate.JUDGE


def sound_table(paths: dict[str, Path], best: dict[str, dict]) -> list[dict]:
    """any.json's ``by_sound`` rows, flattest (noisiest) first: each recording (name → path) with its
    :func:`~musicoder.texture.flatness` and ``best``, its first row of :func:`choose`."""
    from musicoder import audio
    from musicoder import texture as transfer

    rows = [{"recording": name, "flatness": round(transfer.flatness(transfer.analyse_exemplar(
                audio.load_exemplar(path).samples)), 3), **best[name]} for name, path in paths.items()]
    return sorted(rows, key=lambda r: -r["flatness"])


def nearest_others(table: list[dict]) -> dict[str, dict]:
    """recording → the row of ``table`` (any.json's ``by_sound``) nearest to it by flatness
    among the others (``models.nearest_sound``): whose setting it gets when left out."""
    from . import nearest_sound, sound_rows

    rows = sound_rows(table)
    return {row.recording: table[rows.index(nearest_sound(rows[:k] + rows[k + 1:], row.flatness))]
            for k, row in enumerate(rows)}


def leave_one_out(table: list[dict], scores: dict[str, dict[str, list[dict]]], grids: dict[str, list[dict]],
                  one_for_all: dict) -> list[dict]:
    """How the ``by_sound`` table does on a recording it was not made from: each recording
    of ``table`` scored (recording → window → scores in the order of ``grids[recording]``)
    with the setting of its nearest other row by flatness (``models.nearest_sound``, as a
    user's exemplar gets it), beside the ``one_for_all`` setting's mean there."""
    from musicoder import texture as transfer

    checks = []
    for recording, nearest in nearest_others(table).items():
        columns = [transfer.Settings(**g) for g in grids[recording]]
        column = columns.index(transfer.Settings(**nearest["settings"]))
        everyone = columns.index(transfer.Settings(**one_for_all))
        mine = list(scores[recording].values())
        adv = [s[column]["advantage"] for s in mine]
        checks.append({"recording": recording, "nearest": nearest["recording"], "settings": grids[recording][column],
                       "mean_advantage": round(float(np.mean(adv)), 4), "min_advantage": round(min(adv), 4),
                       "min_content": round(min(s[column]["content"] for s in mine), 4),
                       "one_for_all_mean_advantage": round(float(np.mean([s[everyone]["advantage"] for s in mine])), 4)})
    return checks


def score_key(source: str, window: str, setting: dict) -> tuple[str, str, str]:
    """What a judged conversion is known by across runs (``judge_all``'s ``known``)."""
    return source, window, json.dumps(setting, sort_keys=True)


def judge_all(sources: dict[str, Path], clips: list[evaluate.ValClip], settings: dict[str, list[dict]],
              jobs: int, desc: str, known: dict | None = None, body: bool = False) -> dict[str, dict[str, list[dict]]]:
    """source → window name → the judge's scores of ``settings[source]`` there (with
    ``body`` the body band's too), ``jobs`` processes converting one (source, window) each.
    known: scores already judged (:func:`known_scores`), not converted again (unless they
    lack the body band's figures that ``body`` needs)."""
    from tqdm import tqdm

    known = {k: v for k, v in (known or {}).items() if all(f in v for f in score_keys(body))}
    evaluate.judge_module()  # the judge compiles here, not in two workers at once
    key = score_key
    results: dict[str, dict[str, list[dict]]] = {t: {} for t in sources}
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool, \
            tqdm(total=len(sources) * len(clips), desc=desc, file=sys.stderr) as bar:
        futures = {}
        for t, path in sources.items():
            for c in clips:
                name = evaluate.clip_name(c)
                todo = [g for g in settings[t] if key(t, name, g) not in known]
                if todo:
                    futures[pool.submit(judge_grid, path, c, todo, body)] = (t, name, todo)
                else:
                    bar.update()
        for f in concurrent.futures.as_completed(futures):
            t, name, todo = futures[f]
            known |= {key(t, name, g): score for g, score in zip(todo, f.result())}
            bar.update()
        for t in sources:
            for c in clips:
                name = evaluate.clip_name(c)
                results[t][name] = [known[key(t, name, g)] for g in settings[t]]
    return results


def write_raw(path: Path, grids: dict[str, list[dict]], search: dict) -> None:
    """``--raw``: every setting's scores on every window of a :func:`two_stages` search whose
    sources converted ``grids`` in the first stage (what :func:`known_scores` reads back)."""
    path.write_text(json.dumps({"grids": grids, "first_stage": search["stage1"], "shortlists": search["wanted"],
                                "all_windows": search["both"]}) + "\n")


def known_scores(raw: Path) -> dict:
    """The scores a ``--raw`` file of an earlier run holds, for :func:`judge_all` (the
    engine and the judge must be unchanged since)."""
    d = json.loads(raw.read_text())
    grids = d.get("grids") or {t: d["grid"] for t in d["first_stage"]}  # files before ANY_GRID: one grid
    known = {}
    for t, per_window in d["first_stage"].items():
        for name, scores in per_window.items():
            known |= {score_key(t, name, g): s for g, s in zip(grids[t], scores)}
    for t, per_window in d["all_windows"].items():
        for name, scores in per_window.items():
            known |= {score_key(t, name, g): s for g, s in zip(d["shortlists"][t], scores)}
    return known


# --refine: changes tried on top of the stored settings, each merged onto them. spread_low
# gives the music below the crossover some of a steady exemplar's steadiness; a blend (every
# band, light pulls) is what suits a steady tonal recording: on the first-stage windows a
# drone scored -0.126 (worst -0.518) in place of the highs, +0.152 (+0.099) as the morph
# reference, and +0.250 (+0.168, content 0.68) blended as the first of BLENDS.
REFINE = [{"spread_low": v} for v in (0.3, 0.5, 0.7)]
# --refine --body-band: what moves the body of the music (250 Hz-4 kHz) on a built-in
# texture: a lower crossover (more of the exemplar's bands there) and spread_low (the
# music's spreads below it moved toward the exemplar's), each alone and together
BODY_REFINE = [{**({"crossover_hz": x} if x else {}), **({"spread_low": v} if v else {})}
               for x in (None, 250.0, 500.0, 1000.0) for v in (None, 0.3, 0.5, 0.8)][1:]
BLENDS = [{"crossover_hz": 30.0, "keep_low": 1.0, "spread_low": 0.0, **pulls} for pulls in (
    {"level": 0.2, "spread": 0.8, "keep_high": 0.8, "fine": 0.2},
    {"level": 0.2, "spread": 1.0, "keep_high": 0.9, "fine": 0.2},
)]
# The blends are offered only to tonal rows (flatness below TONAL_FLATNESS, between the
# tractor beam's -6.4 and the bell's -8.1): on a noisy row the blend can win by a few
# hundredths on the tuning windows (the clock's, +0.219 against +0.160) and then, passed on
# by flatness to held-out engine, machine and tabla recordings, cost them the floor (machine
# -0.133) and the content (tabla 0.53), where the clock's unblended row had kept both.
TONAL_FLATNESS = -7.0


def any_changes(flatness: float) -> list[dict]:
    """The changes --refine tries on a row of any.json's table whose recording has this
    flatness (nats, see musicoder.texture.flatness): spread_low 0.3 and 0.5 on every row,
    and the BLENDS on a tonal one."""
    return REFINE[:2] + (BLENDS if flatness < TONAL_FLATNESS else [])


def _unique(settings: list[dict]) -> list[dict]:
    out = []
    for g in settings:
        if g not in out:
            out.append(g)
    return out


def refine(a, first: list[evaluate.ValClip], rest: list[evaluate.ValClip], command: str, known: dict) -> int:
    """``--refine``: each stored setting (``--settings-dir``: a built-in texture's; with
    ``--texture any`` each row of any.json's table) against itself with each change of
    REFINE (any_changes; a built-in texture's with ``--body-band``, BODY_REFINE) merged on,
    by the same two stages and rule as the tuning; the best is stored (in ``--out-dir``),
    with a ``refined`` record beside the tuning record of the grid search it started from
    (and each texture's stored and chosen settings over the first stage's windows, where
    all of them were judged). For any.json the leave-one-out check is made again for the
    new table. known: scores of earlier runs (``--resume``)."""
    from .data import audio_files

    if a.texture == ANY:
        path = a.settings_dir / f"{ANY}.json"
        record = json.loads(path.read_text())
        files = {p.stem: p for p in audio_files(a.exemplars)}
        missing = [r["recording"] for r in record["by_sound"] if r["recording"] not in files]
        if missing:
            raise SystemExit(f"{a.exemplars}: no recording of {', '.join(missing)} (any.json's table names them)")
        stored = {r["recording"]: r["settings"] for r in record["by_sound"]}
        sources = {name: files[name] for name in stored}
        changes = {r["recording"]: any_changes(r["flatness"]) for r in record["by_sound"]}
        bar = ANY_BAR
    else:
        textures = list(TEXTURES) if a.texture == "all" else [a.texture]
        records = {t: json.loads((a.settings_dir / f"{t}.json").read_text()) for t in textures}
        stored = {t: records[t]["settings"] for t in textures}
        sources = {t: TEXTURES[t].exemplar_path for t in textures}
        changes, bar = {t: BODY_REFINE if a.body_band else REFINE for t in textures}, BAR
    grids = {t: _unique([g, *({**g, **c} for c in changes[t])]) for t, g in stored.items()}
    # the stored setting converts every window whatever its first-stage rank: a change must
    # beat it there, and where every shortlisted change loses content on a later window it stays
    search = two_stages(sources, grids, {t: [t] for t in sources}, grids, {t: bar for t in sources}, first, rest,
                        a.shortlist, a.jobs, known, label="refine, ", body=a.body_band,
                        always={t: [stored[t]] for t in sources})
    stage1, ranked = search["stage1"], search["ranked"]
    if a.raw:
        write_raw(a.raw, grids, search)
    # the first stage judged every setting: there the stored one and the chosen one side by side
    on_first = {t: {json.dumps(r["settings"], sort_keys=True): r for r in
                    choose(windows({t: [t]}, t, stage1, grids, grids[t]), grids[t], bar, a.body_band)}
                for t in sources}
    first_stage = {t: {"windows": len(first), **{which: on_first[t][json.dumps(g, sort_keys=True)] for which, g in
                                                 (("from", stored[t]), ("chosen", ranked[t][0]["settings"]))}}
                   for t in sources}
    today = datetime.date.today().isoformat()
    for t in sources:
        best = ranked[t][0]
        body = f" body mean {best['body_mean_advantage']:+.3f} worst {best['body_min_advantage']:+.3f}" \
            if a.body_band else ""
        print(f"{t}: {best['settings']} mean {best['mean_advantage']:+.3f} worst {best['min_advantage']:+.3f}{body} "
              f"min content {best['min_content']:.3f}" + ("" if best["settings"] != stored[t] else " (unchanged)"))
    refined = {"command": command, "date": today, "judge": judge_record(a.body_band), "changes": changes,
               "windows": len(first) + len(rest), "first_stage_windows": len(first), "shortlist": a.shortlist,
               "rule": "the tuning's" + (BODY_RULE if a.body_band else "") +
                       ", over the stored setting and each change merged onto it",
               "from": stored, "top": {t: ranked[t][:3] for t in sources}, "first_stage": first_stage}
    a.out_dir.mkdir(parents=True, exist_ok=True)
    if a.texture != ANY:
        for t, record in records.items():
            if ranked[t][0]["settings"] != stored[t]:
                record.pop("validation", None)
            record["settings"] = ranked[t][0]["settings"]
            record["tuning"]["refined"] = refined | {"changes": changes[t], "from": stored[t], "top": ranked[t][:3],
                                                     "first_stage": first_stage[t]}
            (a.out_dir / f"{t}.json").write_text(json.dumps(record, indent=2) + "\n")
        return 0
    for row in record["by_sound"]:
        row.update(ranked[row["recording"]][0])
    if any(ranked[t][0]["settings"] != stored[t] for t in sources):
        record.pop("validation", None)
    # the check of the new table: each recording with its nearest other row's setting and
    # the one-for-all setting, on the first-stage windows (what it already converted is reused)
    loo_grids = {recording: _unique([nearest["settings"], record["settings"]])
                 for recording, nearest in nearest_others(record["by_sound"]).items()}
    known = known | {score_key(t, name, g): scores[i]
                     for t in sources for name, scores in stage1[t].items() for i, g in enumerate(grids[t])}
    loo_scores = judge_all(sources, first, loo_grids, a.jobs, "leave-one-out", known, a.body_band)
    record["tuning"]["leave_one_out"] = leave_one_out(record["by_sound"], loo_scores, loo_grids, record["settings"])
    record["tuning"]["refined"] = refined
    (a.out_dir / f"{ANY}.json").write_text(json.dumps(record, indent=2) + "\n")
    for check in record["tuning"]["leave_one_out"]:
        print(f"    {check['recording']:<14} left out, {check['nearest']}'s: mean {check['mean_advantage']:+.3f} "
              f"worst {check['min_advantage']:+.3f} (one setting for all: {check['one_for_all_mean_advantage']:+.3f})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", default="all", choices=[*TEXTURES, "all", ANY])
    ap.add_argument("--exemplars", type=user_path, metavar="DIR",
                    help="the recordings settings/any.json is tuned on (with --texture any)")
    ap.add_argument("--music-dir", type=user_path, default=DEFAULT_MUSIC_DIR,
                    help="folder with manifest.json, train/ and val/ (default $MUSICODER_MUSIC_DIR or %(default)s)")
    ap.add_argument("--per-package", type=int, default=PER_PACKAGE, help="windows per package (default %(default)s)")
    ap.add_argument("--shortlist", type=int, default=SHORTLIST,
                    help="settings of the first stage that convert every window (default %(default)s)")
    ap.add_argument("--jobs", type=int, default=2, help="processes (default %(default)s)")
    ap.add_argument("--settings-dir", type=Path, default=SETTINGS_DIR,
                    help="the stored settings --refine starts from (default models/settings)")
    ap.add_argument("--out-dir", type=Path, metavar="DIR",
                    help="where the settings files go (default: --settings-dir)")
    ap.add_argument("--body-band", action="store_true",
                    help=f"judge the body band too (--band {evaluate.BODY_BAND[0]:g} {evaluate.BODY_BAND[1]:g}) and "
                         f"maximise the mean of both bands' objectives; with --refine, try BODY_REFINE's changes")
    ap.add_argument("--raw", type=Path, metavar="PATH", help="also write every setting's scores on every window")
    ap.add_argument("--resume", type=Path, action="append", default=[], metavar="RAW",
                    help="reuse the scores of an earlier run's --raw file (the engine unchanged since)")
    ap.add_argument("--refine", action="store_true",
                    help="try REFINE's changes (any_changes' for any) on the stored settings instead of the grid")
    a = ap.parse_args(argv)
    a.out_dir = a.out_dir or a.settings_dir
    textures = list(TEXTURES) if a.texture == "all" else [] if a.texture == ANY else [a.texture]
    if a.texture == ANY and not a.exemplars:
        ap.error("--texture any needs --exemplars DIR")
    # what each window is converted toward: a built-in texture's exemplar, or a recording for any.json
    sources = {t: TEXTURES[t].exemplar_path for t in textures}
    recordings = {}
    if a.exemplars:
        from .data import audio_files

        recordings = {f"{ANY}:{p.stem}": p for p in audio_files(a.exemplars)}
    sources |= recordings
    grids = {t: ANY_GRID if t in recordings else GRID for t in sources}
    # what is tuned, from which sources' windows: each source from its own (a recording's is
    # its row of any.json's by_sound table); any.json's one setting from all recordings together
    targets = {t: [t] for t in sources}
    if recordings:
        targets[ANY] = list(recordings)
    target_grid = {t: ANY_GRID if t == ANY or t in recordings else GRID for t in targets}
    bars = {t: ANY_BAR if t == ANY or t in recordings else BAR for t in targets}
    first = tuning_clips(a.music_dir)
    names = {evaluate.clip_name(c) for c in first}
    rest = [c for c in tuning_clips(a.music_dir, a.per_package) if evaluate.clip_name(c) not in names]
    command = portable_command("python -m models.tune", argv if argv is not None else sys.argv[1:])
    known = {}
    for raw in a.resume:
        known |= known_scores(raw)
    if a.refine:
        return refine(a, first, rest, command.strip(), known)
    print(f"tuning on {len(first)} + {len(rest)} windows of training packages ({', '.join(c.package for c in first)}), "
          f"{len(GRID)} settings per built-in exemplar, {len(ANY_GRID)} per recording, then the best {a.shortlist} "
          f"({', '.join(sources)})", file=sys.stderr)
    t0 = time.perf_counter()
    search = two_stages(sources, grids, targets, target_grid, bars, first, rest, a.shortlist, a.jobs, known,
                        body=a.body_band)
    stage1, shortlists, ranked, per_clip = search["stage1"], search["shortlists"], search["ranked"], search["per_clip"]
    if a.raw:
        write_raw(a.raw, grids, search)
    for target in targets:
        if target in recordings:
            continue  # a row of any.json's table, written below
        by_sound = loo = None
        if target == ANY:
            by_sound = sound_table({t.removeprefix(ANY + ":"): p for t, p in recordings.items()},
                                   {t.removeprefix(ANY + ":"): ranked[t][0] for t in recordings})
            loo = leave_one_out(by_sound, {t.removeprefix(ANY + ":"): stage1[t] for t in recordings},
                                {t.removeprefix(ANY + ":"): ANY_GRID for t in recordings},
                                ranked[ANY][0]["settings"])
        best = ranked[target][0]
        path = write_settings(target, ranked[target], first + rest, per_clip[target], shortlists[target], bars[target],
                              command.strip(), a.out_dir, target_grid[target], by_sound, loo, a.body_band)
        body = f" body mean {best['body_mean_advantage']:+.3f} worst {best['body_min_advantage']:+.3f}" \
            if a.body_band else ""
        print(f"{target}: {best['settings']} mean {best['mean_advantage']:+.3f} worst "
              f"{best['min_advantage']:+.3f}{body} min content {best['min_content']:.3f} -> {path}")
        for r in ranked[target][1:5]:
            print(f"    then {r['settings']} mean {r['mean_advantage']:+.3f} worst {r['min_advantage']:+.3f}")
        for row, check in zip(by_sound or [], loo or []):
            print(f"    {row['recording']:<14} flatness {row['flatness']:+6.2f} best {row['settings']}; left out, "
                  f"{check['nearest']}'s: mean {check['mean_advantage']:+.3f} worst {check['min_advantage']:+.3f} "
                  f"(one setting for all: {check['one_for_all_mean_advantage']:+.3f})")
    print(f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
