#!/usr/bin/env python3
"""Gather the real recordings that judge "your own texture" from Debian packages.

    python scripts/gather_user_exemplars.py OUT_DIR [--set validation|tuning] [--deb-cache DIR]

``validation`` (default): eight recordings of eight kinds of texture, none of which any
built-in texture ships or tunes on, and which no tuning uses. ``tuning``: ten other
recordings, from hiss to drone, which ``models.tune --texture any`` makes the settings
table of a user's exemplar from. Neither holds rain, fire, wind, crowd chatter or crickets (kept for independent
checks). Each file is copied to ``OUT_DIR/<name>.<ext>`` and
``OUT_DIR/manifest.json`` records its package, path and the package's licence. The
recordings are for measurement only: MusiCoder does not redistribute them.

    python -m models.evaluate --exemplars OUT_DIR

then converts the held-out validation music with each one.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gather_training_music import detect_package_licence, extract_from_deb, find_or_download_deb  # noqa: E402

SONIC_PI = "usr/share/sonic-pi/samples"
STK = "usr/share/games/supertuxkart/data/sfx"
ENDLESS_SKY = "usr/share/games/endless-sky/sounds"
# name -> (package, installed path, what it is)
TUNING = {
    "zapper": ("endless-sky-data", f"{ENDLESS_SKY}/zapper~.wav", "a crackling electric beam with sparks, 4.1 s"),
    "beam": ("naev-data", "usr/share/naev/dat/snd/sounds/beam0.wav", "a falling pew into a pulsing beam, 5 s"),
    "brook": ("supertuxkart-data", f"{STK}/river_loop.ogg", "a brook, 15.6 s"),
    "haunted_hum": ("sonic-pi-samples", f"{SONIC_PI}/ambi_haunted_hum.flac", "a tonal sci-fi hum, 9.8 s"),
    "bell": ("sonic-pi-samples", f"{SONIC_PI}/perc_bell.flac", "a struck bell ringing out, 6.7 s"),
    "sauna": ("sonic-pi-samples", f"{SONIC_PI}/ambi_sauna.flac", "a sauna ambience, mostly steam hiss, 9 s"),
    "drone": ("sonic-pi-samples", f"{SONIC_PI}/ambi_drone.flac", "a low synth drone, 4.4 s"),
    "jet": ("supertuxkart-data", f"{STK}/airplane_jetEngine.ogg", "a jet engine's roar, 5.2 s"),
    "clock": ("supertuxkart-data", f"{STK}/clock.ogg", "a ticking clock, 6.8 s"),
    "tractor_beam": ("supertuxkart-data", f"{STK}/tractor_beam.ogg", "a sci-fi tractor beam, 8 s"),
}
VALIDATION = {
    "vinyl": ("sonic-pi-samples", f"{SONIC_PI}/vinyl_hiss.flac", "vinyl crackle and hiss, 8 s"),
    "glass_hum": ("sonic-pi-samples", f"{SONIC_PI}/ambi_glass_hum.flac", "a rubbed-glass hum, tonal, 10 s"),
    "printer": ("sonic-pi-samples", f"{SONIC_PI}/loop_3d_printer.flac", "a 3D printer's stepper motors, 8 s"),
    "tabla": ("sonic-pi-samples", f"{SONIC_PI}/loop_tabla.flac", "a tabla loop, 10.7 s"),
    "birds": ("supertuxkart-data", f"{STK}/exotic-birds.ogg", "exotic birdsong, 10.3 s"),
    "engine": ("supertuxkart-data", f"{STK}/engine_large.ogg", "a large engine's hum, 2.9 s"),
    "radio": ("supertuxkart-data", f"{STK}/static-radio.ogg", "radio static and tuning, 103 s (30 s used)"),
    "machine": ("supertuxkart-data", f"{STK}/machine_sound.ogg", "a clanking machine, 3.4 s"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--set", choices=("validation", "tuning"), default="validation")
    ap.add_argument("--deb-cache", type=Path, default=Path.home() / ".cache" / "musicoder" / "debs")
    a = ap.parse_args(argv)
    recordings = VALIDATION if a.set == "validation" else TUNING
    a.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in sorted({p for p, _, _ in recordings.values()}):
            deb, _ = find_or_download_deb(package, a.deb_cache)
            root = Path(tmp) / package
            wanted = [path for p, path, _ in recordings.values() if p == package]
            extract_from_deb(deb, root, [*wanted, f"usr/share/doc/{package}/copyright"])
            licence = detect_package_licence(root / "usr" / "share" / "doc" / package)
            for name, (p, path, what) in recordings.items():
                if p != package:
                    continue
                dest = a.out_dir / f"{name}{Path(path).suffix}"
                shutil.copyfile(root / path, dest)
                manifest[name] = {"file": dest.name, "package": package, "deb": deb.name, "path": "/" + path,
                                  "what": what, "package_licence": licence}
                print(f"{dest}: {what} ({package})")
    (a.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
