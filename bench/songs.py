"""Whole songs: time and peak memory of converting a whole stereo song, beside a 10 s
window of the same file, in the same run.

    python -m bench.songs [--json] [--texture water] [--quality hifi] [--minutes 3,10]

A song is made of three different pieces of real stereo music joined end to end and
looped to its length (ffmpeg's concat filter, 44.1 kHz stereo FLAC): the demo recording
and, where the gathered music is there (``scripts/gather_training_music.py``), the first
stereo tracks of two held-out packages; otherwise the demo recording reversed and slowed.
Each conversion runs in a fresh process through ``musicoder.convert.convert_file`` (the
CLI's path: decode → blocks → level → encode, streaming), warmed on 2 s first; the row
gives its seconds (the window's: the median of WINDOW_RUNS runs) and the process's peak RSS, and the 3-minute song is also converted as
a user runs it (``musicoder convert FILE -o out.flac --texture T --quality Q``).
Targets: peak RSS <= 500 MB for 10 minutes at HIFI; time <= 1.15 x (length / 10 s) x the
10 s window's time.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

from musicoder import audio
from musicoder.errors import InputError

from .footprint import _peak_rss_mb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CLIP = os.path.join(REPO, "examples", "demo.ogg")
TARGETS = {"rss_mb": 500, "time_ratio": 1.15}
WINDOW_RUNS = 5  # the 10 s window's time is their median: on a shared machine one run can be off by half

_CHILD = r"""
import json, resource, sys, tempfile, time, os
import models
from musicoder import convert, texture
path, seconds, name, quality, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
m = models.load(name)
transform = texture.make_transform(m.exemplar, m.settings)
convert.convert_file(path, out, quality, transform, duration=2.0)  # warm: kernels compiled, ffmpeg cached
runs = []
for _ in range(int(sys.argv[6])):
    t0 = time.perf_counter()
    r = convert.convert_file(path, out, quality, transform, duration=None if seconds == "all" else float(seconds))
    runs.append((time.perf_counter() - t0, r.timings))
runs.sort(key=lambda run: run[0])
seconds, timings = runs[len(runs) // 2]
print(json.dumps({"seconds": seconds, "audio_s": r.duration, "channels": r.channels,
                  "timings": {k: round(v, 3) for k, v in timings.items()},
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def pieces() -> list[tuple[str, list[str]]]:
    """Three different stereo pieces: (file, ffmpeg filters for it)."""
    from models.data import DEFAULT_MUSIC_DIR

    found, packages = [], set()
    for path in sorted(glob.glob(os.path.join(os.path.expanduser(DEFAULT_MUSIC_DIR), "val", "*"))):
        package = os.path.basename(path).split("__")[0]
        if package in packages:
            continue
        try:
            info = audio.probe(path)
        except InputError:
            continue
        if "stereo" in info.channel_layout and info.duration >= 60:
            found.append((path, []))
            packages.add(package)
        if len(found) == 2:
            break
    if len(found) < 2:  # no gathered music: the demo played backwards, and slowed by a fifth
        found = [(DEMO_CLIP, ["areverse"]), (DEMO_CLIP, ["asetrate=29400", "aresample=44100"])]
    return [(DEMO_CLIP, []), *found]


def make_song(path: str, seconds: float) -> None:
    """Write a ``seconds`` s stereo FLAC at 44.1 kHz to ``path``: :func:`pieces` joined, looped."""
    parts = pieces()
    inputs, chains = [], []
    for i, (piece, filters) in enumerate(parts):
        inputs += ["-i", piece]
        chains.append(f"[{i}:a]" + ",".join([*filters, "aformat=sample_rates=44100:channel_layouts=stereo"])
                      + f"[p{i}]")
    graph = ";".join(chains) + ";" + "".join(f"[p{i}]" for i in range(len(parts))) + \
        f"concat=n={len(parts)}:v=0:a=1,aloop=loop=-1:size=2e9,atrim=0:{seconds}[out]"
    subprocess.run([audio.ffmpeg_path(), "-hide_banner", "-v", "error", "-y", *inputs, "-filter_complex", graph,
                    "-map", "[out]", "-c:a", "flac", path], check=True)


def convert_in_child(path: str, seconds: str, texture: str, quality: str, out: str, runs: int = 1) -> dict:
    """The _CHILD conversion of ``seconds`` s (or "all") of ``path`` in a fresh process: the
    median of ``runs`` runs' seconds and stage timings, and the process's peak RSS."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, path, seconds, texture, quality, out, str(runs)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(texture: str = "water", quality: str = "hifi", minutes: tuple[float, ...] = (3.0, 10.0)) -> dict:
    """The rows: per song length, the 10 s window and the whole song, and the CLI's run of
    the shortest song as a user runs it."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="musicoder-bench-") as tmp:
        for length in minutes:
            song = os.path.join(tmp, f"song{length:g}.flac")
            make_song(song, 60.0 * length)
            window = convert_in_child(song, "10", texture, quality, os.path.join(tmp, "w.flac"), WINDOW_RUNS)
            whole = convert_in_child(song, "all", texture, quality, os.path.join(tmp, "s.flac"))
            allowed = TARGETS["time_ratio"] * whole["audio_s"] / window["audio_s"] * window["seconds"]
            row = {"minutes": length, "window": window, "song": whole, "allowed_s": round(allowed, 2),
                   "time_ok": whole["seconds"] <= allowed}
            if length == min(minutes):
                out = os.path.join(tmp, "out.flac")
                wall, rss = _peak_rss_mb([sys.executable, "-m", "cli", "convert", song, "-o", out, "--texture",
                                          texture, "--quality", quality])
                row["cli"] = {"seconds": round(wall, 2), "rss_mb": round(rss, 1),
                              "channels": audio.probe(out).channel_layout, "audio_s": audio.probe(out).duration}
            rows.append(row)
    return {"texture": texture, "quality": quality, "pieces": [os.path.basename(p) + (f" ({','.join(f)})" if f else "")
                                                               for p, f in pieces()], "rows": rows}


def table(result: dict) -> str:
    lines = [f"whole stereo songs ({result['texture']}, {result['quality']}), from {', '.join(result['pieces'])}; "
             f"each in a fresh process, warm",
             f"{'song':>7s} | {'10 s window s':>13s} {'RSS MB':>7s} | {'song s':>7s} {'RSS MB':>7s} "
             f"{'allowed s':>9s} {'ok':>3s}"]
    for r in result["rows"]:
        w, s = r["window"], r["song"]
        ok = r["time_ok"] and (r["minutes"] < 10 or s["rss_mb"] <= TARGETS["rss_mb"])
        lines.append(f"{r['minutes']:5g} m | {w['seconds']:13.2f} {w['rss_mb']:7.0f} | {s['seconds']:7.2f} "
                     f"{s['rss_mb']:7.0f} {r['allowed_s']:9.2f} {'yes' if ok else 'NO':>3s}")
        lines.append(f"        stages, window: {_stages(w)}; song: {_stages(s)}")
        if "cli" in r:
            c = r["cli"]
            lines.append(f"  as a user runs it (musicoder convert FILE -o out.flac, no window): {c['seconds']:.2f} s, "
                         f"peak RSS {c['rss_mb']:.0f} MB, {c['channels']}, {c['audio_s']:.2f} s of audio")
    lines.append(f"targets: song time <= {TARGETS['time_ratio']:g} x (length / 10 s) x the window's; "
                 f"peak RSS <= {TARGETS['rss_mb']} MB for 10 minutes")
    return "\n".join(lines)


def _stages(row: dict) -> str:
    """A conversion's seconds per stage, in one line."""
    return ", ".join(f"{k} {v:.2f}" for k, v in row["timings"].items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.songs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--texture", default="water")
    ap.add_argument("--quality", default="hifi")
    ap.add_argument("--minutes", default="3,10", help="song lengths in minutes, comma-separated (default %(default)s)")
    a = ap.parse_args(argv)
    result = run(a.texture, a.quality, tuple(float(m) for m in a.minutes.split(",")))
    print(table(result))
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
