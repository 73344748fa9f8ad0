"""What a user waits for and what a conversion holds: cold start, memory, install size.

    python -m bench.footprint [--json] [--no-venv] [--runs 3]

Each row is printed against a reference measured in the same run:

* ``musicoder convert`` of the demo clip (laser, HIFI, 10 s) as a user runs it, a new
  process each time: wall time, and the start-up overhead (wall minus the engine's own
  HIFI time for the same window, measured warm in a fresh process of the same run);
  target overhead <= 1.5 s. Peak RSS of that process (``ru_maxrss``); target 400 MB.
  Reference: a bare ``python -c "import numpy"``, and ``import tensorflow`` where it is
  installed (what the runtime no longer loads).
* A 60 s HIFI window against the 10 s one, each in its own process: engine seconds and
  peak RSS; targets 600 MB and at most 6.5 x the 10 s time.
* ``pip install .`` into a fresh venv (needs the package index): its size, against a
  bare venv's; target 700 MB.

``--json`` prints one JSON object as the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CLIP = os.path.join(REPO, "examples", "demo.ogg")
TARGETS = {"overhead_s": 1.5, "convert_rss_mb": 400, "long_rss_mb": 600, "long_time_ratio": 6.5, "venv_mb": 700}

_CHILD = r"""
import json, resource, sys, time
from musicoder import audio, engine
from musicoder import texture as transfer
import models
path, seconds, texture = sys.argv[1], float(sys.argv[2]), sys.argv[3]
model = models.load(texture)
transform = transfer.make_transform(model.exemplar, model.settings)  # planned: a long window goes in blocks
def once():
    t0 = time.perf_counter()
    clip = audio.load(path, duration=seconds)
    audio.encode(engine.render(clip.samples, "hifi", transform).samples, "wav")
    return time.perf_counter() - t0
once()  # warm: compiled kernels loaded, FFT plans and buffers made
best = min(once() for _ in range(int(sys.argv[4])))
print(json.dumps({"engine_s": best, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _peak_rss_mb(argv: list[str]) -> tuple[float, float]:
    """Run argv in a wrapper process; (wall seconds, peak RSS MB of its largest process)."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], check=True, capture_output=True, text=True,
                         cwd=REPO).stdout.split()
    return float(out[0]), float(out[1])


def engine_seconds(path: str, seconds: float, texture: str = "laser", runs: int = 2) -> dict:
    """The engine's own HIFI time (decode → transfer → reconstruct → encode), warm, best of
    ``runs``, in a fresh process; and that process's peak RSS (MB)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, path, str(seconds), texture, str(runs)], check=True,
                         capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def cold_convert(runs: int, texture: str = "laser") -> dict:
    """``musicoder convert`` of the demo's first 10 s at HIFI, a new process per run."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "cli", "convert", DEMO_CLIP, "-o", os.path.join(tmp, "out.wav"),
                "--texture", texture, "--quality", "hifi", "-y"]  # the same output each run
        _peak_rss_mb(argv)  # the first run after an install compiles the numba kernels into their cache
        walls, rss = zip(*(_peak_rss_mb(argv) for _ in range(runs)))
    engine = engine_seconds(DEMO_CLIP, 10.0, texture)
    wall = sorted(walls)[len(walls) // 2]
    return {"wall_s": round(wall, 3), "engine_hifi_s": round(engine["engine_s"], 3),
            "overhead_s": round(wall - engine["engine_s"], 3), "rss_mb": round(max(rss), 1)}


def references() -> dict:
    """Cold wall and peak RSS of ``import numpy`` (and ``import tensorflow`` if installed)."""
    rows = {}
    for name in ("numpy", "tensorflow"):
        if name == "tensorflow" and subprocess.run([sys.executable, "-c", "import importlib.util, sys; "
                                                    "sys.exit(importlib.util.find_spec('tensorflow') is None)"]).returncode:
            continue
        wall, rss = _peak_rss_mb([sys.executable, "-c", f"import {name}"])
        rows[f"import_{name}"] = {"wall_s": round(wall, 3), "rss_mb": round(rss, 1)}
    return rows


def long_window() -> dict:
    """A 60 s HIFI window against a 10 s one (the demo looped to 84 s), each in a fresh process."""
    import numpy as np

    from musicoder import audio

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "long.wav")
        audio.save(np.tile(audio.load(DEMO_CLIP, duration=None).samples, 3), path)
        short, long = engine_seconds(path, 10.0, runs=1), engine_seconds(path, 60.0, runs=1)
    return {"s10": round(short["engine_s"], 3), "s60": round(long["engine_s"], 3),
            "time_ratio": round(long["engine_s"] / short["engine_s"], 2),
            "rss10_mb": round(short["rss_mb"], 1), "rss60_mb": round(long["rss_mb"], 1)}


def _du_mb(folder: str) -> float:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return round(total / 2**20, 1)


def venv_size() -> dict:
    """MB of a fresh venv with ``pip install .`` (the runtime), against a bare venv."""
    with tempfile.TemporaryDirectory() as tmp:
        bare, full = os.path.join(tmp, "bare"), os.path.join(tmp, "runtime")
        for folder in (bare, full):
            subprocess.run([sys.executable, "-m", "venv", folder], check=True)
        src = os.path.join(tmp, "src")  # a copy without build/ or .venv, as a fresh clone is
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".venv", "build", "*.egg-info", ".git", "out"))
        t0 = time.perf_counter()
        subprocess.run([os.path.join(full, "bin", "pip"), "install", "--quiet", src], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        probe = subprocess.run([os.path.join(full, "bin", "python"), "-c", "import importlib.util as u; "
                                "print(u.find_spec('tensorflow') is not None)"], capture_output=True, text=True)
        return {"venv_mb": _du_mb(full), "bare_venv_mb": _du_mb(bare), "install_s": round(seconds, 1),
                "has_tensorflow": probe.stdout.strip() == "True"}


def table(r: dict) -> str:
    c, lw, t = r["convert"], r["long_window"], TARGETS
    lines = [f"musicoder convert demo laser HIFI, cold: wall {c['wall_s']:.2f} s, engine {c['engine_hifi_s']:.2f} s, "
             f"overhead {c['overhead_s']:.2f} s (target <= {t['overhead_s']}), peak RSS {c['rss_mb']:.0f} MB "
             f"(target <= {t['convert_rss_mb']})"]
    for name, ref in r["references"].items():
        lines.append(f"  reference {name.replace('_', ' ')}: wall {ref['wall_s']:.2f} s, peak RSS {ref['rss_mb']:.0f} MB")
    lines.append(f"60 s HIFI window: {lw['s60']:.2f} s, {lw['rss60_mb']:.0f} MB | 10 s: {lw['s10']:.2f} s, "
                 f"{lw['rss10_mb']:.0f} MB | time ratio {lw['time_ratio']:.2f} (target <= {t['long_time_ratio']}), "
                 f"RSS target <= {t['long_rss_mb']} MB")
    if "venv" in r:
        v = r["venv"]
        lines.append(f"pip install . into a fresh venv: {v['venv_mb']:.0f} MB (target <= {t['venv_mb']}; a bare venv "
                     f"{v['bare_venv_mb']:.0f} MB), {v['install_s']:.0f} s, TensorFlow installed: {v['has_tensorflow']}")
    return "\n".join(lines)


def run(runs: int = 3, with_venv: bool = True) -> dict:
    result = {"convert": cold_convert(runs), "references": references(), "long_window": long_window()}
    if with_venv:
        result["venv"] = venv_size()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--no-venv", action="store_true", help="skip the fresh-venv install (needs the package index)")
    ap.add_argument("--runs", type=int, default=3, help="cold conversions to take the median of (default 3)")
    a = ap.parse_args(argv)
    result = run(a.runs, not a.no_venv)
    print(table(result))
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
