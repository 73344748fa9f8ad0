"""Tune each texture's transfer settings on training music, by the judge, and store them.

    python -m models.tune [--texture laser|water|future|all] [--music-dir DIR] [--jobs 2]
    python -m models.tune --texture any --exemplars DIR     # a user's exemplar, on DIR's recordings

Tuning set: one 10 s window (at 30 s, as ``models.evaluate`` cuts) of the middle track of
every *training* package of ``DIR/manifest.json`` (its ``packages`` less its
``val_packages``, tracks in ``DIR/train/``), so the held-out packages stay unseen. Every
setting of :data:`GRID` converts every window at Standard through the product's own
``engine.render``, and ``shared/eval/texture_judge.py --frontier`` scores it. The chosen
setting maximises :func:`objective`: the mean advantage, less twice what the worst window
falls below the bar's floor, among settings that keep content >= MIN_CONTENT on every
window. Writes ``settings/{texture}.json`` (settings, tuning record, the five best rows);
a validation record there is dropped when the settings change (run ``models.evaluate
--update-metadata`` again). ``settings/any.json`` is the setting a user's own exemplar
gets (it has no tuning of its own): the one best over every window of several exemplars
together, the recordings of ``--exemplars DIR`` (``scripts/gather_user_exemplars.py --set
tuning``; never the validation recordings) or, with ``--texture all`` and no DIR, the
three built-in ones.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import FORMAT_VERSION, METHOD, SETTINGS_DIR, TEXTURES, evaluate

GRID_AXES = {"crossover_hz": (600.0, 1000.0, 2000.0, 3500.0), "keep_high": (0.3, 0.6, 0.9),
             "spread": (0.5, 0.8, 1.0), "keep_low": (1.0, 0.85)}
GRID = [dict(zip(GRID_AXES, values)) for values in itertools.product(*GRID_AXES.values())]
QUALITY = "standard"
MIN_CONTENT = 0.65  # a margin over the bar's 0.6: held-out music keeps less than tuning music
FLOOR = evaluate.BAR_WORST_ADVANTAGE
FLOOR_WEIGHT = 2.0
ANY = "any"  # the settings file of a user's own exemplar


def tuning_clips(music_dir: Path) -> list[evaluate.ValClip]:
    """One window per training package of ``music_dir`` (manifest order): the middle of its
    sorted train/ tracks. SystemExit if a held-out package has tracks in train/."""
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
        for p in evaluate.spread(tracks, 1):
            clips.append(evaluate.ValClip(p, package, (info or {}).get("style", "unknown"),
                                          evaluate.window_start(audio.probe(p).duration)))
    return clips


def objective(advantages: list[float], contents: list[float]) -> float:
    """What tuning maximises: mean advantage less FLOOR_WEIGHT × how far the worst window
    falls below FLOOR; -inf when any window keeps less than MIN_CONTENT."""
    if min(contents) < MIN_CONTENT:
        return float("-inf")
    return float(np.mean(advantages) + FLOOR_WEIGHT * min(0.0, min(advantages) - FLOOR))


def judge_grid(exemplar_path: Path, clip: evaluate.ValClip) -> list[dict]:
    """The judge's scores of every GRID setting on one window, toward the exemplar
    recording at ``exemplar_path`` (the part a conversion uses): [{advantage, content}]."""
    from musicoder import audio, engine
    from musicoder import texture as transfer

    tj = evaluate.judge_module()
    samples = audio.load_exemplar(exemplar_path).samples
    exemplar = transfer.analyse_exemplar(samples)
    music = audio.load(clip.path, start=clip.start, duration=evaluate.CLIP_SECONDS).samples
    with tempfile.TemporaryDirectory(prefix="musicoder-tune-") as tmp:
        s = evaluate.judge_file(tj, samples, Path(tmp) / "exemplar.wav")
        x = evaluate.judge_file(tj, music, Path(tmp) / "input.wav")
        mixes = evaluate.frontier(tj, x, s)
        scores = []
        for setting in GRID:
            out = engine.render(music, QUALITY, transfer.make_transform(exemplar, transfer.Settings(**setting)))
            y = evaluate.judge_file(tj, out.samples, Path(tmp) / "output.wav")
            r = evaluate.score(tj, x, y, s, mixes)
            scores.append({"advantage": r["advantage"], "content": r["content"]})
    return scores


def choose(per_clip: dict[str, list[dict]]) -> list[dict]:
    """GRID settings with their summary over the windows, best :func:`objective` first."""
    ranked = []
    for i, setting in enumerate(GRID):
        adv = [scores[i]["advantage"] for scores in per_clip.values()]
        content = [scores[i]["content"] for scores in per_clip.values()]
        ranked.append({"settings": setting, "objective": round(objective(adv, content), 4),
                       "mean_advantage": round(float(np.mean(adv)), 4), "min_advantage": round(min(adv), 4),
                       "min_content": round(min(content), 4)})
    return sorted(ranked, key=lambda r: -r["objective"])


def write_settings(texture: str, ranked: list[dict], clips: list[evaluate.ValClip], per_clip: dict,
                   command: str, folder: Path = SETTINGS_DIR) -> Path:
    """Store the best setting and its tuning record in ``folder/{texture}.json`` (texture
    "any": the setting for a user's exemplar, tuned on all the built-in ones)."""
    path = folder / f"{texture}.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    best = ranked[0]
    best_index = GRID.index(best["settings"])
    exemplars = sorted({name.split("/")[0] for name in per_clip}) if texture == ANY else \
        f"exemplars/{TEXTURES[texture].exemplar_path.name}"
    record = {"format_version": FORMAT_VERSION, "method": METHOD, "texture": texture,
              "exemplar": exemplars, "settings": best["settings"],
              "tuning": {"command": command, "date": datetime.date.today().isoformat(),
                         "judge": evaluate.JUDGE, "quality": QUALITY,
                         "rule": f"max mean advantage + {FLOOR_WEIGHT:g} x min(0, worst - ({FLOOR:+.2f})), "
                                 f"content >= {MIN_CONTENT} on every window",
                         "grid": {k: list(v) for k, v in GRID_AXES.items()},
                         "clips": {evaluate.clip_name(c): c.style for c in clips},
                         "windows": len(per_clip),
                         "best_rows": {name: scores[best_index] for name, scores in per_clip.items()},
                         "top": ranked[:5]}}
    if old.get("settings") == best["settings"] and "validation" in old:
        record["validation"] = old["validation"]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(prog="python -m models.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", default="all", choices=[*TEXTURES, "all", ANY])
    ap.add_argument("--exemplars", type=Path, metavar="DIR",
                    help="the recordings settings/any.json is tuned on (default: the built-in exemplars)")
    ap.add_argument("--music-dir", type=Path, default=evaluate.DEFAULT_MUSIC_DIR)
    ap.add_argument("--jobs", type=int, default=2, help="processes (default %(default)s)")
    ap.add_argument("--settings-dir", type=Path, default=SETTINGS_DIR)
    ap.add_argument("--raw", type=Path, metavar="PATH", help="also write every setting's scores on every window")
    a = ap.parse_args(argv)
    textures = list(TEXTURES) if a.texture == "all" else [] if a.texture == ANY else [a.texture]
    if a.texture == ANY and not a.exemplars:
        ap.error("--texture any needs --exemplars DIR")
    # what each window is converted toward: a built-in texture's exemplar, or a recording for any.json
    sources = {t: TEXTURES[t].exemplar_path for t in textures}
    if a.exemplars:
        from .data import audio_files

        sources |= {f"{ANY}:{p.stem}": p for p in audio_files(a.exemplars)}
    clips = tuning_clips(a.music_dir)
    print(f"tuning on {len(clips)} windows of training packages ({', '.join(c.package for c in clips)}), "
          f"{len(GRID)} settings per exemplar ({', '.join(sources)})", file=sys.stderr)
    t0 = time.perf_counter()
    results: dict[str, dict[str, list[dict]]] = {t: {} for t in sources}
    with concurrent.futures.ProcessPoolExecutor(a.jobs) as pool, \
            tqdm(total=len(sources) * len(clips), desc="windows", file=sys.stderr) as bar:
        futures = {pool.submit(judge_grid, path, c): (t, evaluate.clip_name(c)) for t, path in sources.items()
                   for c in clips}
        for f in concurrent.futures.as_completed(futures):
            t, name = futures[f]
            results[t][name] = f.result()
            bar.update()
    command = "python -m models.tune " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.raw:
        a.raw.write_text(json.dumps({"grid": GRID, "scores": results}) + "\n")
    per_source = {t: {evaluate.clip_name(c): results[t][evaluate.clip_name(c)] for c in clips} for t in sources}
    windows = {t: per_source[t] for t in textures}
    for_any = [t for t in sources if t.startswith(f"{ANY}:")] or (textures if set(textures) == set(TEXTURES) else [])
    if for_any:
        windows[ANY] = {f"{t.removeprefix(ANY + ':')}/{name}": scores for t in for_any
                        for name, scores in per_source[t].items()}
    for t, per_clip in windows.items():
        ranked = choose(per_clip)
        path = write_settings(t, ranked, clips, per_clip, command.strip(), a.settings_dir)
        print(f"{t}: {ranked[0]['settings']} mean {ranked[0]['mean_advantage']:+.3f} worst "
              f"{ranked[0]['min_advantage']:+.3f} min content {ranked[0]['min_content']:.3f} -> {path}")
        for r in ranked[1:5]:
            print(f"    then {r['settings']} mean {r['mean_advantage']:+.3f} worst {r['min_advantage']:+.3f}")
    print(f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
