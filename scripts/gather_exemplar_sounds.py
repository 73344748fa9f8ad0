#!/usr/bin/env python3
"""Gather the sound-effect and ambience recordings a texture network trains on.

    python scripts/gather_exemplar_sounds.py OUT_DIR [--deb-cache DIR] [--max-per-package N]
                                             [--min-seconds 0.5] [--max-seconds 30]

The learned texture engine is conditioned on an exemplar recording; it learns from
hundreds of them. This script takes them from freely licensed Debian game and sample
packages (``SOURCES``), *without installing them*: ``apt-get download`` into the .deb
cache (default ``~/.cache/musicoder/debs``), then only the package's sound folders and
its ``/usr/share/doc/<package>/`` are extracted into a scratch folder.

Only sound effects and ambiences are taken: never music, voices or speech, never a
file that ``gather_training_music.py`` takes as music, nothing shorter than
``--min-seconds`` or longer than ``--max-seconds``. Left out as well, so that
independent checks and held-out measurements stay clean:

- any file whose path names rain, fire, wind, storms, crowds, chatter, crickets,
  people or voices (``EXCLUDED_WORDS``);
- the recordings ``gather_user_exemplars.py`` tunes and validates with (by package
  and path, and any copy of them by content);
- every file of the packages whose music is held out for validation
  (``DEFAULT_VAL_PACKAGES``), and any copy of one of their files elsewhere.

No package gives more than ``--max-per-package`` files; within a package the picks are
spread over its folders. Each file is copied as is to
``OUT_DIR/sounds/<package>__<name>.<ext>`` and ``OUT_DIR/sounds/manifest.json``
records its package, Debian version, .deb, installed path, duration, the package's
licence and the file's sha1. The recordings are for training only: MusiCoder does not
redistribute them. Fewer than ``MIN_RECORDINGS`` gathered is an error (exit 2).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gather_training_music import (  # noqa: E402
    DEFAULT_VAL_PACKAGES, PACKAGES as MUSIC_PACKAGES, _deb_field, detect_package_licence,
    extract_from_deb, file_sha1, find_or_download_deb, probe_audio, safe_name)
from gather_user_exemplars import TUNING, VALIDATION  # noqa: E402

MIN_RECORDINGS = 200
# Formats the product decodes without ffmpeg.
SOUND_EXTENSIONS = (".ogg", ".oga", ".wav", ".flac")
# Substrings (case-insensitive, anywhere in the installed path) that rule a file out.
# Rain, fire, wind, crowd chatter and crickets are kept for independent checks; their
# usual companions (thunder, lightning, night ambiences) and people's voices go too.
EXCLUDED_WORDS = (
    "rain", "thunder", "lightning", "storm", "fire", "flame", "burn", "blaze", "ember",
    "furnace", "torch", "napalm", "lava", "wind", "breeze", "crowd", "chat", "applause",
    "cheer", "cricket", "insect", "cicada", "night", "people", "talk", "voice", "vox",
    "speech", "speak", "choir", "announcer", "comment", "scream", "laugh", "shout", "yell",
    "tavern", "restaurant",
)
# Folder names and file-name parts that mark music rather than sound effects.
MUSIC_FOLDERS = {"music", "musics", "songs", "soundtrack", "soundtracks"}
MUSIC_WORDS = re.compile(r"music|theme|zik", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class SoundSource:
    """Where a package keeps its sound effects.

    ``sounds``: globs (tar's rules, ``*`` also matches ``/``) of installed paths
    without the leading ``/``; ``skip``: a regex (case-insensitive, searched in the
    file name) of the package's own voice clips, jingles and risky ambiences.
    """

    sounds: tuple[str, ...]
    skip: str | None = None


SOURCES: dict[str, SoundSource] = {
    "sonic-pi-samples": SoundSource(("usr/share/sonic-pi/samples/*",)),
    "supertuxkart-data": SoundSource(
        ("usr/share/games/supertuxkart/data/sfx/*",),
        skip=r"airport_pa|goal_scored|^ugh\.|^wee\."),
    "endless-sky-data": SoundSource(("usr/share/games/endless-sky/sounds/*",)),
    "wesnoth-1.16-data": SoundSource(
        ("usr/share/games/wesnoth/1.16/data/core/sounds/*", "usr/share/games/wesnoth/1.16/sounds/*"),
        # "<creature>-hit-N" / "-die-N" are grunts and death cries; a ship at sea comes with wind.
        skip=r"-(hit|die)\b|groan|shriek|wail|^ugg\.|^ship\."),
    "hedgewars-data": SoundSource(
        ("usr/share/games/hedgewars/Data/Sounds/*",),
        skip=r"^hell|hogchant|yoohoo|kiss|valkyries"),
    "freedroidrpg-data": SoundSource(
        ("usr/share/freedroidrpg/data/sound/effects/*",), skip=r"ThouArt"),
    "warmux-data": SoundSource(("usr/share/games/warmux/sound/*",), skip=r"sherif|newcomer"),
    "widelands-data": SoundSource(("usr/share/games/widelands/data/sound/*",), skip=r"inn_"),
    "megaglest-data": SoundSource(
        ("usr/share/games/megaglest/*/sounds/*",),
        # Units' "select" / "ack" clips are spoken acknowledgements, "die" death cries;
        # the tilesets' "day" and "hell" ambiences may hold wind and fire.
        skip=r"select|_ack|_die|_dying|death|^day|^hell"),
    "marsshooter-data": SoundSource(("usr/share/games/marsshooter/audio/*",)),
    "colobot-common-sounds": SoundSource(("usr/share/games/colobot/sounds/*",)),
    "scorched3d-data": SoundSource(
        ("usr/share/games/scorched3d/data/globalmods/*/wav/*",), skip=r"citysounds|fight4life"),
    "frozen-bubble-data": SoundSource(("usr/share/games/frozen-bubble/snd/*",), skip=r"snore|^noh\."),
    "pingus-data": SoundSource(
        ("usr/share/games/pingus/data/sounds/*",), skip=r"goodidea|letsgo|ohno|yipee"),
    "extremetuxracer-data": SoundSource(("usr/share/games/etr/sounds/*",)),
    "chromium-bsu-data": SoundSource(("usr/share/games/chromium-bsu/wav/*",)),
    "7kaa-data": SoundSource(("usr/share/games/7kaa/SOUND/*",)),
}


# ----------------------------------------------------------------- selection --
def excluded_word(path: str) -> str | None:
    """The first ``EXCLUDED_WORDS`` entry found in ``path`` (case-insensitive), else None."""
    lower = path.lower()
    return next((w for w in EXCLUDED_WORDS if w in lower), None)


def is_music_path(path: str, package: str) -> bool:
    """Whether an installed ``path`` is music: a music folder, a music-like file name,
    or a file ``gather_training_music.py`` takes as music from ``package``."""
    parts = PurePosixPath(path).parts
    if any(p.lower() in MUSIC_FOLDERS for p in parts[:-1]) or MUSIC_WORDS.search(parts[-1]):
        return True
    source = MUSIC_PACKAGES.get(package)
    return bool(source and any(fnmatchcase(path, g) for g in source.music))


def held_out_paths() -> set[tuple[str, str]]:
    """``(package, installed path)`` of the recordings ``gather_user_exemplars`` uses."""
    return {(package, path.lstrip("/")) for package, path, _ in (*TUNING.values(), *VALIDATION.values())}


def rejection(package: str, path: str, held_out: set[tuple[str, str]]) -> str | None:
    """Why the installed ``path`` of ``package`` may not be taken, or None when it may.

    ``held_out``: ``(package, path)`` pairs reserved for tuning and validation.
    """
    path = path.removeprefix("./").lstrip("/")
    if package in DEFAULT_VAL_PACKAGES:
        return "held-out package"
    if (package, path) in held_out:
        return "user exemplar"
    if not path.lower().endswith(SOUND_EXTENSIONS):
        return "not a sound file"
    word = excluded_word(path)
    if word:
        return f"names '{word}'"
    if is_music_path(path, package):
        return "music"
    source = SOURCES.get(package)
    if source is None or not any(fnmatchcase(path, g) for g in source.sounds):
        return "not in a sound folder"
    if source.skip and re.search(source.skip, PurePosixPath(path).name, re.IGNORECASE):
        return "package skip list"
    return None


def duration_ok(duration_s: float | None, min_s: float, max_s: float) -> bool:
    """Whether a duration in seconds (None: unreadable) lies within [min_s, max_s]."""
    return duration_s is not None and min_s <= duration_s <= max_s


def spread_pick(paths: list[str], limit: int) -> list[str]:
    """Up to ``limit`` of ``paths``, taken in turn from each folder so none dominates.

    Within a folder the order is a fixed pseudo-random one (sha1 of the path), so that
    numbered series ("hit1", "hit2", ...) are not taken first. Returns sorted paths.
    """
    folders: dict[str, list[str]] = defaultdict(list)
    for p in sorted(set(paths)):
        folders[str(PurePosixPath(p).parent)].append(p)
    queues = [sorted(v, key=lambda p: hashlib.sha1(p.encode()).hexdigest())
              for _, v in sorted(folders.items())]
    picked: list[str] = []
    depth = 0
    while len(picked) < limit and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < limit:
                picked.append(q[depth])
        depth += 1
    return sorted(picked)


def output_name(package: str, path: str) -> str:
    """``<package>__<name>.<ext>``: the path below the game's data folder, sanitised."""
    rel = re.sub(r"^usr/share/(games/)?[^/]+/", "", path.lstrip("/"))
    stem, ext = rel.rsplit(".", 1)
    return f"{package}__{safe_name(stem)}.{ext.lower()}"


# -------------------------------------------------------------------- gather --
def _audio_files(root: Path) -> list[str]:
    """Installed paths (no leading ``/``) of the sound files extracted under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in SOUND_EXTENSIONS)


def held_out_sha1s(deb_cache: Path, scratch: Path) -> set[str]:
    """sha1 of every sound file of the held-out packages and of the user exemplars,
    so that a copy of one in another package is left out too."""
    sha1s: set[str] = set()
    named: dict[str, list[str]] = defaultdict(list)
    for package, path in held_out_paths():
        named[package].append(path)
    for package in sorted(set(DEFAULT_VAL_PACKAGES) | set(named)):
        deb, _ = find_or_download_deb(package, deb_cache)
        root = scratch / f"held-out-{package}"
        globs = [f"*{ext}" for ext in SOUND_EXTENSIONS] if package in DEFAULT_VAL_PACKAGES \
            else named[package]
        extract_from_deb(deb, root, globs)
        sha1s.update(file_sha1(root / p) for p in _audio_files(root))
        shutil.rmtree(root)
    return sha1s


def gather_package(package: str, deb_cache: Path, scratch: Path, out_sounds: Path, held_out: set,
                   banned_sha1: set[str], seen_sha1: set[str], args) -> tuple[dict, dict]:
    """Copy one package's chosen sounds into ``out_sounds``.

    Returns (manifest entries by file name, counts of rejection reasons).
    """
    deb, _ = find_or_download_deb(package, deb_cache)
    version = _deb_field(deb, "Version")
    root = scratch / package
    extract_from_deb(deb, root, [*SOURCES[package].sounds, f"usr/share/doc/{package}/*"])
    licence = detect_package_licence(root / "usr" / "share" / "doc" / package)
    reasons: dict[str, int] = defaultdict(int)
    ok: dict[str, dict] = {}
    for path in _audio_files(root):
        why = rejection(package, path, held_out)
        if why is None:
            info = probe_audio(root / path)
            if not duration_ok(info.get("duration_s"), args.min_seconds, args.max_seconds):
                why = "unreadable" if info.get("duration_s") is None else "too short or long"
        if why is None:
            sha1 = file_sha1(root / path)
            why = "copy of a held-out file" if sha1 in banned_sha1 else \
                "duplicate" if sha1 in seen_sha1 else None
        if why:
            reasons[why] += 1
            continue
        seen_sha1.add(sha1)
        ok[path] = {"sha1": sha1, **info}
    entries = {}
    for path in spread_pick(list(ok), args.max_per_package):
        name = output_name(package, path)
        shutil.copyfile(root / path, out_sounds / name)
        info = ok[path]
        entries[name] = {"package": package, "version": version, "deb": deb.name, "path": "/" + path,
                         "duration_s": info["duration_s"], "sample_rate": info.get("sample_rate"),
                         "channels": info.get("channels"), "package_licence": licence,
                         "sha1": info["sha1"]}
    if len(ok) > len(entries):
        reasons["over the package's cap"] += len(ok) - len(entries)
    # Sounds that lost the cap may reappear as copies in later packages: keep them usable.
    for path in set(ok) - {e["path"].lstrip("/") for e in entries.values()}:
        seen_sha1.discard(ok[path]["sha1"])
    shutil.rmtree(root)
    return entries, dict(reasons)


def print_summary(manifest: dict, rejected: dict[str, dict]) -> None:
    """Per package: files taken, their seconds, licence and what was left out."""
    by_package: dict[str, list[dict]] = defaultdict(list)
    for entry in manifest.values():
        by_package[entry["package"]].append(entry)
    print(f"\n{'package':24s} {'files':>5s} {'seconds':>8s}  licence / left out")
    for package in sorted(set(by_package) | set(rejected)):
        entries = by_package.get(package, [])
        seconds = sum(e["duration_s"] for e in entries)
        licence = entries[0]["package_licence"] if entries else "-"
        left = ", ".join(f"{k}: {v}" for k, v in sorted(rejected.get(package, {}).items()))
        print(f"{package:24s} {len(entries):5d} {seconds:8.1f}  {licence[:60]}\n{'':40s}{left}")
    total = sum(e["duration_s"] for e in manifest.values())
    print(f"{'total':24s} {len(manifest):5d} {total:8.1f}  ({total / 60:.1f} min)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--deb-cache", type=Path, default=Path.home() / ".cache" / "musicoder" / "debs")
    ap.add_argument("--max-per-package", type=int, default=60)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--packages", nargs="+", choices=sorted(SOURCES), default=sorted(SOURCES),
                    help="only these packages (default: all of SOURCES)")
    a = ap.parse_args(argv)
    out_sounds = a.out_dir / "sounds"
    out_sounds.mkdir(parents=True, exist_ok=True)
    manifest_path = out_sounds / "manifest.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    held_out = held_out_paths()
    manifest: dict[str, dict] = {}
    rejected: dict[str, dict] = {}
    seen_sha1: set[str] = set()
    with tempfile.TemporaryDirectory(dir=a.out_dir, prefix=".scratch-") as tmp:
        banned = held_out_sha1s(a.deb_cache, Path(tmp))
        for package in a.packages:
            print(f"[{package}]", flush=True)
            entries, rejected[package] = gather_package(package, a.deb_cache, Path(tmp), out_sounds,
                                                        held_out, banned, seen_sha1, a)
            manifest.update(entries)
    for stale in set(previous) - set(manifest):
        (out_sounds / stale).unlink(missing_ok=True)
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")
    print_summary(manifest, rejected)
    print(f"\n{len(manifest)} recordings in {out_sounds}")
    if len(manifest) < MIN_RECORDINGS:
        print(f"error: only {len(manifest)} recordings gathered, at least {MIN_RECORDINGS} are needed "
              f"(raise --max-per-package or --max-seconds?)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
