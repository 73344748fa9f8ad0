"""Judge a texture network on held-out music, the way the product applies it.

    python -m models.evaluate --texture water [--clips 6] [--json] [--update-metadata]

Cuts 10 s windows from different held-out validation tracks, converts each through
``musicoder.engine.render(samples, "hifi", model.transform)``, and scores it with the
independent judge (``shared/eval/texture_judge.py``, beside the repository; override
with ``$MUSICODER_JUDGE_DIR``) against the texture's exemplar, with ``--frontier``
(advantage over crossfading the exemplar in). Prints one row per clip (advantage,
timbre and texture gain, content) and the mean; ``--update-metadata`` stores the
summary in ``models/weights/{texture}.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import TEXTURES, WEIGHTS_DIR, load

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VAL = Path(os.environ.get("MUSICODER_VAL_DIR", "/work/musicdata/val"))
CLIP_SECONDS = 10.0
# (track file, start s): one window per track, orchestral (Wesnoth), electronic game
# music (Warzone 2100) and ambient/electronic (Singularity); first N are used.
DEFAULT_CLIPS = (
    ("wesnoth-1.16-music__battle.ogg", 40.0),
    ("warzone2100-music__track11.opus", 30.0),
    ("wesnoth-1.16-music__the_deep_path.ogg", 50.0),
    ("singularity-music__Inevitable.ogg", 70.0),
    ("wesnoth-1.16-music__wanderer.ogg", 30.0),
    ("warzone2100-music__track2.opus", 60.0),
    ("wesnoth-1.16-music__into_the_shadows.ogg", 30.0),
    ("warzone2100-music__track12.opus", 30.0),
)


def judge_module():
    """Import texture_judge from shared/eval beside the repository (or inside it)."""
    for d in (os.environ.get("MUSICODER_JUDGE_DIR"), REPO.parent / "shared" / "eval", REPO / "shared" / "eval"):
        if d and (Path(d) / "texture_judge.py").is_file():
            sys.path.insert(0, str(d))
            import texture_judge

            return texture_judge
    raise SystemExit("texture_judge.py not found: put shared/eval beside the repository "
                     "or set MUSICODER_JUDGE_DIR")


def clips(val_dir: Path, n: int) -> list[tuple[Path, float]]:
    """n (file, start s) windows from different tracks of ``val_dir``: the default list
    where its files exist, then other tracks at 30 s."""
    chosen = [(val_dir / f, s) for f, s in DEFAULT_CLIPS if (val_dir / f).is_file()]
    from .data import audio_files

    used = {p.name for p, _ in chosen}
    chosen += [(p, 30.0) for p in audio_files(val_dir) if p.name not in used]
    return chosen[:n]


def to_judge_rate(y: np.ndarray, tj) -> np.ndarray:
    """44.1 kHz samples → the judge's rate and level (22.05 kHz, RMS 0.1), as tj.load does."""
    import librosa

    y = librosa.resample(np.asarray(y, np.float32), orig_sr=44100, target_sr=tj.SR)
    rms = float(np.sqrt(np.mean(y**2)))
    return y * (tj.TARGET_RMS / rms) if rms > 1e-8 else y


def evaluate(texture: str, n_clips: int = 6, val_dir: Path = DEFAULT_VAL, weights_dir: Path | None = None,
             quality: str = "hifi", progress: bool = True) -> list[dict]:
    """Judge rows (dict per clip: clip, advantage, timbre_gain, texture_gain, content, ...)."""
    from musicoder import audio, engine

    tj = judge_module()
    model = load(texture, weights_dir) if weights_dir else load(texture)
    s = tj.load(str(TEXTURES[texture].exemplar_path))
    rows = []
    for path, start in clips(val_dir, n_clips):
        y = audio.load(path, start=start, duration=CLIP_SECONDS).samples
        out = engine.render(y, quality, model.transform).samples
        x = to_judge_rate(y, tj)
        r = tj.judge(x, to_judge_rate(out, tj), s)
        r |= tj.frontier_advantage(x, s, r)
        r = {"clip": f"{path.stem}@{start:g}s", **{k: round(float(v), 4) for k, v in r.items()}}
        rows.append(r)
        if progress:
            print(f"  judged {r['clip']}: advantage {r['advantage']:+.3f}", file=sys.stderr, flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean and worst values over the clips."""
    return {
        "clips": len(rows),
        "mean_advantage": round(float(np.mean([r["advantage"] for r in rows])), 4),
        "min_advantage": round(float(np.min([r["advantage"] for r in rows])), 4),
        "mean_content": round(float(np.mean([r["content"] for r in rows])), 4),
        "min_content": round(float(np.min([r["content"] for r in rows])), 4),
        "mean_timbre_gain": round(float(np.mean([r["timbre_gain"] for r in rows])), 4),
        "mean_texture_gain": round(float(np.mean([r["texture_gain"] for r in rows])), 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texture", required=True, choices=list(TEXTURES))
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--val-dir", type=Path, default=DEFAULT_VAL)
    ap.add_argument("--weights-dir", type=Path)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--update-metadata", action="store_true",
                    help="store the summary and the table in the weights' metadata")
    a = ap.parse_args(argv)
    rows = evaluate(a.texture, a.clips, a.val_dir, a.weights_dir)
    summ = summary(rows)
    if a.update_metadata:
        meta_path = (a.weights_dir or WEIGHTS_DIR) / f"{a.texture}.json"
        meta = json.loads(meta_path.read_text())
        meta["validation"] = {"judge": "shared/eval/texture_judge.py --frontier", "quality": "hifi",
                              "clip_seconds": CLIP_SECONDS, **summ, "rows": rows}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    if a.json:
        print(json.dumps({"texture": a.texture, "summary": summ, "rows": rows}))
        return 0
    print(f"{a.texture}: {summ['clips']} held-out clips, 10 s, hifi")
    print(f"{'clip':48s} {'advantage':>9s} {'timbre':>7s} {'texture':>7s} {'content':>7s}")
    for r in rows:
        print(f"{r['clip']:48s} {r['advantage']:+9.3f} {r['timbre_gain']:+7.3f} {r['texture_gain']:+7.3f} {r['content']:7.3f}")
    print(f"{'mean':48s} {summ['mean_advantage']:+9.3f} {summ['mean_timbre_gain']:+7.3f} "
          f"{summ['mean_texture_gain']:+7.3f} {summ['mean_content']:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
