#!/usr/bin/env python3
"""Redraw the README's sound examples in docs/examples/ with the current engine.

    python scripts/make_sound_examples.py [--clip examples/demo.ogg] [--seconds 10]
                                          [--quality hifi] [--out docs/examples]

Writes, for the clip's first SECONDS:

* ``input.ogg``: the clip itself, cut by ffmpeg (Vorbis, 96 kbit/s), and ``input.png``,
  its spectrogram, drawn from the decoded samples as a conversion's would be;
* ``{texture}.ogg`` and ``{texture}.png`` for every built-in texture: ``musicoder
  convert CLIP -o OUT/{texture}.ogg --texture T --quality Q --duration SECONDS
  --spectrogram OUT/{texture}.png``, as a user would run it.

Every file is written afresh (the old one removed first), so PNG and OGG always come
from the same window. Run it again whenever the engine or a texture's settings change.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: the project's packages

INPUT_BITRATE = "96k"  # small enough for a repository, clear enough to hear the texture


def convert_command(clip: Path, out_dir: Path, texture: str, quality: str, seconds: float) -> list[str]:
    """The ``musicoder convert`` command line (argv list) that makes one texture's .ogg
    and .png in ``out_dir`` from the first ``seconds`` s of ``clip``."""
    return [sys.executable, "-m", "cli", "convert", str(clip), "-o", str(out_dir / f"{texture}.ogg"),
            "--texture", texture, "--quality", quality, "--duration", f"{seconds:g}",
            "--spectrogram", str(out_dir / f"{texture}.png")]


def input_command(ffmpeg: str, clip: Path, out: Path, seconds: float) -> list[str]:
    """The ffmpeg command line (argv list) that cuts the clip's first ``seconds`` s to a
    Vorbis .ogg at INPUT_BITRATE, its channels and rate unchanged."""
    return [ffmpeg, "-v", "error", "-nostdin", "-i", str(clip), "-t", f"{seconds:g}", "-map", "0:a:0",
            "-c:a", "libvorbis", "-b:a", INPUT_BITRATE, "-fflags", "+bitexact", str(out)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=REPO / "examples" / "demo.ogg", help="the music (default: the demo clip)")
    ap.add_argument("--seconds", type=float, default=10.0, help="the window, from the clip's start (default 10)")
    ap.add_argument("--quality", default="hifi", help="lofi, standard or hifi (default hifi)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "examples", help="folder (default docs/examples)")
    a = ap.parse_args(argv)

    import models
    from musicoder import audio, render

    a.out.mkdir(parents=True, exist_ok=True)
    names = ["input", *models.TEXTURES]
    for name in names:
        for ext in (".ogg", ".png"):
            (a.out / f"{name}{ext}").unlink(missing_ok=True)

    subprocess.run(input_command(audio.ffmpeg_path(), a.clip, a.out / "input.ogg", a.seconds), check=True)
    clip = audio.load(a.clip, 0.0, a.seconds)
    title = f"{a.clip.name} · input ({a.seconds:g} s)"
    (a.out / "input.png").write_bytes(render.spectrogram_png(clip.samples, title))

    for texture in models.TEXTURES:
        subprocess.run(convert_command(a.clip, a.out, texture, a.quality, a.seconds), check=True, cwd=REPO)
    for name in names:
        for ext in (".ogg", ".png"):
            path = a.out / f"{name}{ext}"
            print(f"{path}  {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
