#!/usr/bin/env python3
"""Cut MusiCoder's demo clip out of a music track.

Takes an excerpt of SOURCE from START seconds lasting DURATION seconds and
encodes it as OGG Vorbis, 44.1 kHz stereo, about 144 kbit/s, with very short
fades at both ends so it neither clicks in nor stops dead. Uses the ffmpeg of
the ``imageio-ffmpeg`` package when installed, otherwise ``ffmpeg`` on PATH.
Encoding is bit-exact (fixed Ogg stream serial, no encoder-version tag), so
re-running it with the same input, arguments and ffmpeg gives the same file.

The committed ``examples/demo.ogg`` was made with (see NOTICE for the credit)::

    python scripts/gather_training_music.py DATA_DIR
    python scripts/make_demo_clip.py \\
        DATA_DIR/train/wesnoth-1.16-music__traveling_minstrels.ogg \\
        98.7 28 examples/demo.ogg \\
        --title "Traveling Minstrels (excerpt 1:38.7-2:06.7)" \\
        --artist "Mattias Westlund" \\
        --license "GPL-2+ (The Battle for Wesnoth OST, Debian wesnoth-1.16-music)"

Usage::

    python scripts/make_demo_clip.py SOURCE START DURATION OUTPUT
        [--bitrate 144k] [--fade-in 0.02] [--fade-out 0.6]
        [--title T] [--artist A] [--license L]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from musicoder.audio import ffmpeg_path  # noqa: E402  (the project's one way to find ffmpeg)

MAX_DURATION_S = 30.0


def make_clip(source: Path, start: float, duration: float, output: Path, *,
              bitrate: str = "144k", fade_in: float = 0.02, fade_out: float = 0.6,
              title: str | None = None, artist: str | None = None,
              license_: str | None = None) -> None:
    if not source.is_file():
        raise SystemExit(f"no such file: {source}")
    if not 0 < duration <= MAX_DURATION_S:
        raise SystemExit(f"duration must be in (0, {MAX_DURATION_S:g}] seconds")
    if start < 0:
        raise SystemExit("start must be >= 0")
    fade_out = min(fade_out, duration / 2)
    fade_in = min(fade_in, duration / 2)
    filters = [f"afade=t=in:st=0:d={fade_in:g}:curve=tri"] if fade_in > 0 else []
    if fade_out > 0:
        filters.append(f"afade=t=out:st={duration - fade_out:g}:d={fade_out:g}:curve=qsin")
    cmd = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y",
           "-ss", f"{start:g}", "-t", f"{duration:g}", "-i", str(source),
           "-map", "0:a:0", "-map_metadata", "-1", "-vn",
           "-ar", "44100", "-ac", "2"]
    if filters:
        cmd += ["-af", ",".join(filters)]
    cmd += ["-c:a", "libvorbis", "-b:a", bitrate,
            "-fflags", "+bitexact", "-flags:a", "+bitexact"]
    for key, value in (("title", title), ("artist", artist), ("license", license_)):
        if value:
            cmd += ["-metadata", f"{key}={value}"]
    cmd += ["-metadata", f"comment=Excerpt {start:g}s-{start + duration:g}s of {source.name}",
            str(output)]
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Cut a short OGG Vorbis demo clip out of a track.")
    p.add_argument("source", type=Path, help="audio file to cut from")
    p.add_argument("start", type=float, help="start of the excerpt, in seconds")
    p.add_argument("duration", type=float, help=f"length in seconds (at most {MAX_DURATION_S:g})")
    p.add_argument("output", type=Path, help="output .ogg file")
    p.add_argument("--bitrate", default="144k", help="Vorbis target bitrate (default: %(default)s)")
    p.add_argument("--fade-in", type=float, default=0.02, help="fade-in seconds (default: %(default)s)")
    p.add_argument("--fade-out", type=float, default=0.6, help="fade-out seconds (default: %(default)s)")
    p.add_argument("--title", help="TITLE tag")
    p.add_argument("--artist", help="ARTIST tag")
    p.add_argument("--license", dest="license_", metavar="L", help="LICENSE tag")
    a = p.parse_args(argv)
    make_clip(a.source, a.start, a.duration, a.output, bitrate=a.bitrate, fade_in=a.fade_in,
              fade_out=a.fade_out, title=a.title, artist=a.artist, license_=a.license_)
    size = a.output.stat().st_size
    print(f"wrote {a.output} ({size / 1024:.0f} KiB, {8 * size / a.duration / 1000:.0f} kbit/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
