"""Shared bits for the issue-11 prototype: clips, exemplars, a cached in-process judge.

The judge numbers are computed with /work/shared/eval/texture_judge.py's own functions on
files written to disk (so librosa's load/resample is the same as the CLI's); only the
crossfade frontier (which depends on input and exemplar alone) and the input/exemplar
statistics are cached.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, "/work/main")
sys.path.insert(0, "/work/shared/eval")

import texture_judge as tj  # noqa: E402
from musicoder import audio, spectral  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIPS_DIR = HERE / "clips"
CACHE = HERE / "cache"
OUT = HERE / "out"
for d in (CLIPS_DIR, CACHE, OUT):
    d.mkdir(exist_ok=True)

VAL = Path("/work/musicdata2/val")
START_S = 30.0
CLIPS = {  # name: (file, style)
    "naev_ambient1": ("naev-data__ambient1.ogg", "space-ambient"),
    "naev_collective1": ("naev-data__collective1.ogg", "space-ambient"),
    "naev_peace1": ("naev-data__peace1.ogg", "space-ambient"),
    "stux_chipdisko": ("supertux-data__chipdisko.ogg", "chiptune"),
    "stux_forest": ("supertux-data__forest.ogg", "chiptune"),
    "stux_theme": ("supertux-data__theme.ogg", "chiptune"),
    "linc_pronobozo": ("lincity-ng-data__01_-_pronobozo_-_lincity.ogg", "blues"),
    "linc_cityblues": ("lincity-ng-data__02_-_Robert_van_Herk_-_City_Blues.ogg", "blues"),
    "linc_archi": ("lincity-ng-data__03_-_Robert_van_Herk_-_Architectural_Contemplations.ogg", "blues"),
    "fof_armygeddon": ("fretsonfire-songs-muldjord__armygeddon.flac", "metal"),
    "fof_chaosgod": ("fretsonfire-songs-muldjord__chaos_god.flac", "metal"),
    "fof_degeneration": ("fretsonfire-songs-muldjord__internal_degeneration.flac", "metal"),
}
EX = HERE / "ex"
SHIPPED = Path("/work/main/models/exemplars")
EXEMPLARS = {  # name: (path, texture)
    "laser": (SHIPPED / "laser.flac", "laser"),
    "water": (SHIPPED / "water.flac", "water"),
    "future": (SHIPPED / "future.flac", "future"),
    "zapper": (EX / "zapper~.wav", "laser"),
    "beam0": (EX / "beam0.wav", "laser"),
    "river": (EX / "river_loop.ogg", "water"),
    "hum": (EX / "ambi_haunted_hum.flac", "future"),
}


def clip_path(name: str) -> Path:
    """The 10 s clip as a 44.1 kHz wav (decoded once with musicoder.audio.load)."""
    p = CLIPS_DIR / f"{name}.wav"
    if not p.exists():
        f, _ = CLIPS[name]
        y = audio.load(VAL / f, START_S, 10.0).samples
        sf.write(p, y, spectral.SAMPLE_RATE, subtype="FLOAT")
    return p


def clip(name: str) -> np.ndarray:
    return sf.read(clip_path(name), dtype="float32")[0]


def exemplar(name: str) -> np.ndarray:
    """Whole exemplar, mono float32 at 44.1 kHz (decoded with musicoder.audio.load)."""
    p = CACHE / f"ex_{name}.wav"
    if not p.exists():
        y = audio.load(EXEMPLARS[name][0], 0.0, None).samples
        sf.write(p, y, spectral.SAMPLE_RATE, subtype="FLOAT")
    return sf.read(p, dtype="float32")[0]


_mem: dict = {}


def _loaded(path: Path) -> np.ndarray:
    key = ("load", str(path))
    if key not in _mem:
        _mem[key] = tj.load(str(path))
    return _mem[key]


def frontier(clip_name: str, ex_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(contents, moves) of the judge's 11 crossfades, cached on disk."""
    p = CACHE / f"frontier_{clip_name}_{ex_name}.json"
    if p.exists():
        d = json.loads(p.read_text())
        return np.array(d["contents"]), np.array(d["moves"])
    x = _loaded(clip_path(clip_name))
    s = _loaded(EXEMPLARS[ex_name][0])
    rows = [tj.judge(x, tj.mix(x, s, a), s) for a in np.linspace(0.0, 1.0, 11)]
    contents = [r["content"] for r in rows]
    moves = [(r["timbre_gain"] + r["texture_gain"]) / 2 for r in rows]
    p.write_text(json.dumps({"contents": contents, "moves": moves}))
    return np.array(contents), np.array(moves)


def judge(clip_name: str, out_path: Path, ex_name: str) -> dict[str, float]:
    """Same numbers as `texture_judge.py INPUT OUTPUT EXEMPLAR --frontier`."""
    x = _loaded(clip_path(clip_name))
    s = _loaded(EXEMPLARS[ex_name][0])
    y = tj.load(str(out_path))
    r = tj.judge(x, y, s)
    contents, moves = frontier(clip_name, ex_name)
    order = np.argsort(contents)
    mix_move = float(np.interp(r["content"], contents[order], moves[order]))
    own = (r["timbre_gain"] + r["texture_gain"]) / 2
    return r | {"mix_move": mix_move, "advantage": own - mix_move}


def save(y: np.ndarray, path: Path) -> Path:
    sf.write(path, y, spectral.SAMPLE_RATE, subtype="PCM_16")
    return path


if __name__ == "__main__":  # precompute clips and all frontiers
    import time
    for c in CLIPS:
        clip_path(c)
    for e in EXEMPLARS:
        exemplar(e)
    for c in CLIPS:
        for e in EXEMPLARS:
            t = time.time()
            frontier(c, e)
            print(c, e, f"{time.time() - t:.1f}s", flush=True)
