#!/usr/bin/env python3
"""Gather MusiCoder's training and validation music from Debian packages.

MusiCoder's texture settings are tuned on real music (``python -m models.tune``) and
judged on whole packages held out from tuning (``python -m models.evaluate``). This
script builds that corpus from freely licensed Debian game packages, *without
installing them*. It takes only the music of each package (its music
folder(s); never sound effects, voices or jingles) and only these packages::

    package                      style                  where the music is
    wesnoth-1.16-music           orchestral             data/core/music/
    warzone2100-music            electronic-ambient     music/ (albums/*/)
    singularity-music            electronic-scifi       music/
    ufoai-music                  cinematic-orchestral   base/0music.pk3 (a zip): music/
    0ad-data                     world-orchestral       mods/public/public.zip: audio/music/
    naev-data                    space-ambient          dat/snd/music/
    supertux-data                chiptune               music/
    widelands-data               medieval-orchestral    data/music/
    hedgewars-data               eclectic               Data/Music/
    nexuiz-music                 industrial-electronic  data/music.pk3 (a zip): sound/cdtracks/
    colobot-common-sounds        calm-synth             music/
    marsshooter-data             epic-rock              audio/music/, audio/menu.ogg, audio/tutorial.ogg
    supertuxkart-data            upbeat-pop             data/music/ (not its "fast" copies)
    freedroidrpg-data            dark-electronic        data/sound/music/
    zaz-data                     breakbeat              mus*.ogg
    fretsonfire-songs-sectoid    metal                  songs/sectoid/*/ (stems, mixed)
    fretsonfire-songs-muldjord   metal                  songs/muldjord/*/ (stems, mixed)
    lincity-ng-data              blues                  music/

Other Debian music packages are reserved for independent checks: ``--packages``
only accepts the ones above (``PACKAGES``).

Steps:

1. ``apt-get download <package>`` into the .deb cache (``--deb-cache``,
   default ``~/.cache/musicoder/debs``). A package whose ``<package>_*.deb``
   is already in the cache is not downloaded again (newest version wins).
2. Extract only the package's music and its ``/usr/share/doc/<package>/``
   from the .deb (``dpkg-deb --fsys-tarfile | tar -x`` with the music globs of
   ``PACKAGES``) into a scratch folder under OUT_DIR (removed again at the
   end). Where the music sits in a zip inside the .deb (0ad's ``public.zip``,
   the ``.pk3`` files of ufoai and nexuiz), only the music members of that zip
   are extracted, with Python's zipfile; they are recorded as
   ``/path/of/the.zip!/member``.
3. Collect the audio files (.ogg, .opus, .oga, .flac, .wav, .mp3), leaving out
   each package's ``exclude`` globs (a thunder sound effect, test excerpts) and
   supertuxkart's ``_fast`` copies (named in its ``*.music`` files). For the
   Frets on Fire song packs, each song folder holds stems (``song.ogg``,
   ``guitar.ogg``, maybe ``rhythm.ogg``/``drums.ogg``…): they are summed into
   one FLAC track with ffmpeg's ``amix`` (plus a peak limiter against
   clipping). Durations are measured with soundfile (librosa as a fallback);
   tracks shorter than ``--min-duration`` (20 s) are skipped.
4. Split by WHOLE packages: the ``--val-packages`` (default naev-data,
   supertux-data, lincity-ng-data, fretsonfire-songs-muldjord: four styles)
   go to validation entirely, so validation holds music never seen in
   training; every other package goes to training. ``--val-fraction`` (off by
   default) additionally holds out a seeded random share of each training
   package's tracks (at least ``--min-val-per-package``), keeping tracks that
   derive from one another (``foo`` / ``foo_enhanced`` / ``foo-old``) on the
   same side.
5. Drop duplicate tunes: byte-identical files anywhere, and across packages
   tracks of (nearly) the same duration whose loudness envelopes match
   (a cheap fingerprint: 30 s decoded at 8 kHz mono). Of a duplicate set the
   validation copy is kept, so no tune is in both train and val.
6. Lay the files out as::

       OUT_DIR/train/<package>__<track>.<ext>
       OUT_DIR/val/<package>__<track>.<ext>
       OUT_DIR/manifest.json

   ``<track>`` is the file's stem (a song's folder name for mixed stems) with
   anything outside ``[A-Za-z0-9._-]`` replaced by ``_``. The manifest lists
   every track (split, package, package version, style, licence, duration in
   seconds, source path inside the package, sample rate, channels,
   title/artist), a per-package summary (version, .deb size, style, split,
   tracks, hours, licences), packages that failed and why, and the skipped
   files and why.

Licences come from ``/usr/share/doc/<package>/copyright`` inside the .deb. For
a machine-readable (DEP-5) file each track gets the licence of the last
``Files:`` stanza matching its upstream path (``PACKAGES`` maps installed
paths to upstream ones), else of ``Files: *``; otherwise the licence is
recognised from the text (CC-BY-SA-<version>, GPL-<n>[+], Expat). When a
track's folder (or a folder above it, inside what was extracted) carries its
own licence file (warzone2100's ``albums/*/license.txt``, 0ad's
``audio/LICENSE.txt``, a song's readme.txt that states a licence), its opening
paragraph is recorded as ``licence_note``. The music is only used locally for
training; it is never redistributed with MusiCoder.

Usage::

    python scripts/gather_training_music.py OUT_DIR [--deb-cache DIR]
        [--val-packages PKG ...] [--val-fraction 0] [--seed 0]
        [--packages PKG ...] [--min-duration 20]

Needs ``dpkg-deb`` and ``tar`` (and ``apt-get`` when a .deb is not cached
yet), ffmpeg (on PATH, else the imageio-ffmpeg wheel's; or ``--ffmpeg``),
Python's standard library and soundfile (librosa optional). Re-running into
the same OUT_DIR replaces the train/ and val/ folders it made before.
"""

from __future__ import annotations

import argparse
import configparser
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from fnmatch import fnmatchcase
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a package keeps its music and how to read it.

    Paths are the package's installed paths without the leading ``/``; globs
    use tar's rules (``*`` also matches ``/``).
    """

    style: str                              # short style label
    music: tuple[str, ...] = ()             # globs of the music files/folders in the .deb
    container: str | None = None            # a zip inside the .deb that holds the music
    members: tuple[str, ...] = ()           # globs of the zip members to take
    exclude: tuple[str, ...] = ()           # globs (on the source path) of non-music files
    upstream: tuple[str, str] = ("", "")    # installed prefix -> upstream prefix (DEP-5 Files:)
    stems: bool = False                     # each folder is one song in stems: mix them


PACKAGES: dict[str, Source] = {
    "wesnoth-1.16-music": Source(
        "orchestral", ("usr/share/games/wesnoth/1.16/data/core/music/*",),
        upstream=("usr/share/games/wesnoth/1.16/", "")),
    "warzone2100-music": Source(
        "electronic-ambient", ("usr/share/games/warzone2100/music/*",),
        upstream=("usr/share/games/warzone2100/", "data/")),
    "singularity-music": Source(
        "electronic-scifi", ("usr/share/games/singularity/music/*",),
        upstream=("usr/share/games/singularity/", "")),
    "ufoai-music": Source(
        "cinematic-orchestral", container="usr/share/games/ufoai/base/0music.pk3",
        members=("music/*",),
        # "dynamictest-*" are short test excerpts for the dynamic-music engine.
        exclude=("*/dynamictest-*",),
        upstream=("usr/share/games/ufoai/", "")),
    "0ad-data": Source(
        "world-orchestral", container="usr/share/games/0ad/mods/public/public.zip",
        members=("audio/music/*", "audio/LICENSE.txt"),
        upstream=("usr/share/games/0ad/mods/public/", "binaries/data/mods/public/")),
    "naev-data": Source(
        "space-ambient", ("usr/share/naev/dat/snd/music/*",), upstream=("usr/share/naev/", "")),
    "supertux-data": Source(
        "chiptune", ("usr/share/games/supertux2/music/*",),
        upstream=("usr/share/games/supertux2/", "data/")),
    "widelands-data": Source(
        "medieval-orchestral", ("usr/share/games/widelands/data/music/*",),
        upstream=("usr/share/games/widelands/", "")),
    "hedgewars-data": Source(
        "eclectic", ("usr/share/games/hedgewars/Data/Music/*",),
        upstream=("usr/share/games/hedgewars/", "share/hedgewars/")),
    "nexuiz-music": Source(
        "industrial-electronic", container="usr/share/games/nexuiz/data/music.pk3",
        members=("sound/cdtracks/*",),
        # thunder.ogg is a thunderstorm ambience (11 kHz), not music.
        exclude=("*/cdtracks/thunder.ogg",),
        upstream=("usr/share/games/nexuiz/", "")),
    "colobot-common-sounds": Source(
        "calm-synth", ("usr/share/games/colobot/music/*",),
        upstream=("usr/share/games/colobot/", "data/")),
    "marsshooter-data": Source(
        "epic-rock", ("usr/share/games/marsshooter/audio/music/*",
                      "usr/share/games/marsshooter/audio/menu.ogg",
                      "usr/share/games/marsshooter/audio/tutorial.ogg"),
        upstream=("usr/share/games/marsshooter/", "data/")),
    "supertuxkart-data": Source(
        "upbeat-pop", ("usr/share/games/supertuxkart/data/music/*",),
        exclude=("*_fast.*",), upstream=("usr/share/games/supertuxkart/", "")),
    "freedroidrpg-data": Source(
        "dark-electronic", ("usr/share/freedroidrpg/data/sound/music/*",),
        upstream=("usr/share/freedroidrpg/", "")),
    "zaz-data": Source(
        "breakbeat", ("usr/share/games/zaz/mus*.ogg",), upstream=("usr/share/games/zaz/", "data/")),
    "fretsonfire-songs-sectoid": Source(
        "metal", ("usr/share/games/fretsonfire/data/songs/sectoid/*",), stems=True,
        upstream=("usr/share/games/fretsonfire/", "")),
    "fretsonfire-songs-muldjord": Source(
        "metal", ("usr/share/games/fretsonfire/data/songs/muldjord/*",), stems=True,
        upstream=("usr/share/games/fretsonfire/", "")),
    "lincity-ng-data": Source(
        "blues", ("usr/share/games/lincity-ng/music/*",),
        upstream=("usr/share/games/lincity-ng/", "data/")),
}
DEFAULT_VAL_PACKAGES = ("naev-data", "supertux-data", "lincity-ng-data", "fretsonfire-songs-muldjord")
# What the validation set must span (the requirement); checked and reported.
VAL_MIN_PACKAGES, VAL_MIN_TRACKS, VAL_MIN_STYLES = 2, 12, 4

AUDIO_EXTENSIONS = {".ogg", ".oga", ".opus", ".flac", ".wav", ".mp3"}
LICENCE_FILE_NAMES = ("license.txt", "licence.txt", "LICENSE", "LICENSE.txt", "COPYING")
README_NAMES = ("readme.txt", "README", "README.txt")  # a licence note only if they mention one
STEM_SKIP = re.compile(r"^preview", re.IGNORECASE)     # song previews are not stems
# Suffixes marking a remaster / old version of another track in the package.
DERIVED_SUFFIX = re.compile(r"([_-](enhanced|remaster(ed)?|old|new|alt))+$", re.IGNORECASE)
# Duplicate search: cross-package pairs closer than this in duration get fingerprinted.
DUP_DURATION_TOLERANCE_S = 0.25
DUP_NAME_DURATION_TOLERANCE_S = 2.0   # ... or this, when their names match
DUP_MIN_CORRELATION = 0.9


# --------------------------------------------------------------------- debs --
def _compare_deb_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    lower = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lower else 1


def _deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True,
                          capture_output=True, text=True).stdout.strip()


def find_or_download_deb(package: str, cache: Path) -> tuple[Path, float | None]:
    """The newest cached ``<package>_*.deb``, downloading it if absent.

    Returns the .deb and the download time in seconds (None when cached).
    """
    cache.mkdir(parents=True, exist_ok=True)
    candidates = sorted(cache.glob(f"{package}_*.deb"))
    seconds = None
    if not candidates:
        print(f"[download] apt-get download {package} -> {cache}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(["apt-get", "download", package], cwd=cache,
                              capture_output=True, text=True)
        seconds = round(time.monotonic() - t0, 1)
        if proc.returncode != 0:
            raise RuntimeError(f"apt-get download {package} failed: "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        candidates = sorted(cache.glob(f"{package}_*.deb"))
        if not candidates:
            raise RuntimeError(f"apt-get download {package} produced no .deb in {cache}")
    if len(candidates) > 1:
        versions = {deb: _deb_field(deb, "Version") for deb in candidates}
        candidates.sort(key=functools.cmp_to_key(
            lambda x, y: _compare_deb_versions(versions[x], versions[y])))
    return candidates[-1], seconds


def extract_from_deb(deb: Path, dest: Path, globs: list[str]) -> None:
    """Extract the members of ``deb`` matching ``globs`` (installed paths) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    patterns = ["./" + g.lstrip("./") for g in globs]
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    tar = subprocess.run(["tar", "-x", "-C", str(dest), "--wildcards", "--no-same-owner",
                          *patterns], stdin=dpkg.stdout, capture_output=True, text=True)
    dpkg.stdout.close()
    if dpkg.wait() != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb.name} failed")
    if tar.returncode != 0:
        # tar fails when a glob matched nothing; that alone is no error here.
        errors = [line for line in tar.stderr.splitlines()
                  if "Not found in archive" not in line and "Exiting with failure" not in line]
        if errors:
            raise RuntimeError(f"tar -x from {deb.name}: {' '.join(errors)[-500:]}")


def extract_from_zip(archive: Path, dest: Path, globs: tuple[str, ...]) -> int:
    """Extract the members of a zip matching ``globs`` into ``dest``; returns their number."""
    count = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not any(fnmatchcase(info.filename, g) for g in globs):
                continue
            target = dest / info.filename
            if not target.resolve().is_relative_to(dest.resolve()):
                continue  # no "../" escapes
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            count += 1
    return count


# ----------------------------------------------------------------- licences --
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _is_dep5(text: str) -> bool:
    return re.match(r"\s*Format:\s*\S*copyright-format", text) is not None


def detect_package_licence(doc_dir: Path) -> str:
    """Short licence id of a package's music, read from its copyright file."""
    text = _read_text(doc_dir / "copyright")
    if not text:
        return "UNKNOWN (no copyright file)"
    # Machine-readable DEP-5 file: the licence of the "Files: *" stanza.
    if _is_dep5(text):
        for stanza in re.split(r"\n\s*\n", text):
            if re.search(r"^Files:\s*\*\s*$", stanza, re.MULTILINE):
                m = re.search(r"^License:\s*(.+)$", stanza, re.MULTILINE)
                if m:
                    return m.group(1).strip()
    flat = " ".join(text.split())
    readmes = " ".join(_read_text(p) for p in sorted(doc_dir.glob("README*")))
    if re.search(r"creative\s*commons", flat, re.IGNORECASE) and \
            re.search(r"Attribution[,-]\s*ShareAlike", flat, re.IGNORECASE):
        m = re.search(r"(?:Attribution-ShareAlike|BY-SA)\s+(\d\.\d)", flat + " " + readmes)
        return f"CC-BY-SA-{m.group(1)}" if m else "CC-BY-SA"
    m = re.search(r"GNU General Public License,? version (\d)\s*(?:\(?\s*or\s+(?:\(?at your option\)?\s*)?any later version)?",
                  flat, re.IGNORECASE)
    if m:
        later = "later version" in flat[m.start():m.end() + 80]
        return f"GPL-{m.group(1)}{'+' if later else ''}"
    # "... under the terms of the GNU General Public License as published by the
    # Free Software Foundation; either version 2 of the License, or (at your
    # option) any later version."
    m = re.search(r"GNU General Public License[^.]{0,120}?\bversion (\d)(?: of the License)?"
                  r"(,? or \(at your option\) any later version)?", flat, re.IGNORECASE)
    if m:
        return f"GPL-{m.group(1)}{'+' if m.group(2) else ''}"
    if re.search(r"Permission is hereby granted, free of charge, to any person obtaining a copy",
                 flat, re.IGNORECASE):
        return "Expat"
    return "UNKNOWN (see copyright file)"


def _dep5_glob_regex(pattern: str) -> re.Pattern:
    """A DEP-5 ``Files:`` glob as a regex: ``*`` matches anything (``/`` too), ``?`` one char."""
    out = []
    for ch in pattern:
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(out) + r"\Z")


def parse_dep5(doc_dir: Path) -> list[tuple[list[re.Pattern], str]] | None:
    """The ``(Files: globs, License)`` stanzas of a DEP-5 copyright file, in order."""
    text = _read_text(doc_dir / "copyright")
    if not text or not _is_dep5(text):
        return None
    stanzas = []
    for stanza in re.split(r"\n\s*\n", text):
        m = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", stanza, re.MULTILINE)
        lic = re.search(r"^License:\s*(.+)$", stanza, re.MULTILINE)
        if m and lic:
            globs = [g[2:] if g.startswith("./") else g.lstrip("/") for g in m.group(1).split()]
            stanzas.append(([_dep5_glob_regex(g) for g in globs], lic.group(1).strip()))
    return stanzas


def dep5_licence_for(stanzas: list[tuple[list[re.Pattern], str]], upstream_path: str) -> str | None:
    """Licence of the last stanza whose ``Files:`` matches ``upstream_path`` (DEP-5 rule)."""
    found = None
    for patterns, licence in stanzas:
        if any(p.match(upstream_path) for p in patterns):
            found = licence
    return found


def licence_note_for(audio: Path, root: Path) -> tuple[str | None, str | None]:
    """Opening paragraph of a licence file next to the track or above it (inside ``root``)."""
    folder = audio.parent
    while True:
        candidates = [(folder / n, False) for n in LICENCE_FILE_NAMES] + \
                     [(folder / n, True) for n in README_NAMES]
        for path, must_mention in candidates:
            if not path.is_file():
                continue
            text = _read_text(path)
            if must_mention and not re.search(r"licen[cs]e", text, re.IGNORECASE):
                continue
            head = text.split("[EN]")[0] if "[EN]" in text else text[:800]
            note = " ".join(head.split())[:800]
            return note, path
        if folder == root or root not in folder.parents:
            return None, None
        folder = folder.parent


# -------------------------------------------------------------------- audio --
def probe_audio(path: Path) -> dict:
    """Duration, sample rate, channels and tags of an audio file."""
    info: dict = {}
    try:
        import soundfile as sf
        with sf.SoundFile(str(path)) as f:
            info["sample_rate"] = f.samplerate
            info["channels"] = f.channels
            info["duration_s"] = f.frames / f.samplerate if f.frames > 0 else None
            tags = f.copy_metadata()
        for key in ("title", "artist", "album", "license", "copyright"):
            if tags.get(key):
                info[f"tag_{key}"] = tags[key]
    except Exception as exc:  # unsupported by libsndfile: fall back to librosa
        info["probe_error"] = f"{type(exc).__name__}: {exc}"
    if not info.get("duration_s"):
        try:
            import librosa
            info["duration_s"] = float(librosa.get_duration(path=str(path)))
            info.pop("probe_error", None)
        except Exception as exc:
            info.setdefault("probe_error", f"{type(exc).__name__}: {exc}")
            info["duration_s"] = None
    if info.get("duration_s") is not None:
        info["duration_s"] = round(float(info["duration_s"]), 3)
    return info


@functools.lru_cache(maxsize=1)
def find_ffmpeg(explicit: str | None = None) -> str:
    """ffmpeg: ``--ffmpeg``, else the system's, else the imageio-ffmpeg wheel's."""
    if explicit:
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        raise RuntimeError("no ffmpeg: install ffmpeg or the imageio-ffmpeg wheel, or pass --ffmpeg") from None


def mix_stems(stems: list[Path], dest: Path, ffmpeg: str) -> None:
    """Sum the stems of one song into a FLAC file (a peak limiter keeps it from clipping)."""
    inputs = []
    for s in stems:
        inputs += ["-i", str(s)]
    labels = "".join(f"[{i}:a]" for i in range(len(stems)))
    graph = (f"{labels}amix=inputs={len(stems)}:duration=longest:normalize=0,"
             "alimiter=limit=0.98:level=disabled:latency=1")
    proc = subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs,
                           "-filter_complex", graph, "-c:a", "flac", "-sample_fmt", "s16", str(dest)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not dest.is_file():
        raise RuntimeError(f"ffmpeg amix failed: {proc.stderr.strip()[-400:]}")


def album_metadata(audio: Path) -> dict:
    """Title/author from a warzone2100-style album.json next to the track."""
    album = audio.parent / "album.json"
    if not album.is_file():
        return {}
    try:
        data = json.loads(_read_text(album))
    except ValueError:
        return {}
    for track in data.get("tracks", []):
        if track.get("filename") == audio.name:
            return {"title": track.get("title"), "artist": track.get("author") or data.get("author"),
                    "album": data.get("title")}
    return {}


def folder_metadata(folder: Path) -> tuple[dict[str, dict], set[str]]:
    """Per-file title/artist from a folder's descriptions, and the files that are copies.

    Reads supertuxkart's ``*.music`` XML (title, composer, ``fast-filename``:
    a sped-up copy, returned in the second set) and hedgewars' ``credits.txt``
    (``File.ogg=Artist`` lines). Keys are lower-cased file names.
    """
    meta: dict[str, dict] = {}
    copies: set[str] = set()
    for desc in sorted(folder.glob("*.music")):
        try:
            node = ET.fromstring(_read_text(desc))
        except ET.ParseError:
            continue  # supertux's .music files are s-expressions: nothing to learn
        if node.tag != "music" or not node.get("file"):
            continue
        meta[node.get("file").lower()] = {"title": node.get("title"), "artist": node.get("composer")}
        if node.get("fast-filename"):
            copies.add(node.get("fast-filename").lower())
    credits = folder / "credits.txt"
    if credits.is_file():
        for line in _read_text(credits).splitlines():
            name, sep, artist = line.partition("=")
            if sep and Path(name.strip()).suffix.lower() in AUDIO_EXTENSIONS and artist.strip():
                meta.setdefault(name.strip().lower(), {})["artist"] = artist.strip()
    return meta, copies


def song_ini(folder: Path) -> dict:
    """Title/artist of a Frets on Fire song from its song.ini."""
    path = folder / "song.ini"
    if not path.is_file():
        return {}
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(_read_text(path))
    except configparser.Error:
        return {}
    section = parser["song"] if parser.has_section("song") else {}
    return {"title": section.get("name"), "artist": section.get("artist")}


def file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def envelope(path: Path, ffmpeg: str, start: float = 5.0, length: float = 30.0) -> list[float]:
    """Cheap fingerprint: log-energy of 100 ms frames of ``length`` s (8 kHz mono) from ``start``."""
    import numpy as np  # soundfile's own dependency
    proc = subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
                           "-ss", str(start), "-t", str(length), "-i", str(path),
                           "-ac", "1", "-ar", "8000", "-f", "s16le", "-"],
                          capture_output=True)
    frame = 800
    samples = np.frombuffer(proc.stdout[: len(proc.stdout) // (2 * frame) * 2 * frame], dtype="<i2")
    energy = (samples.astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1)
    return np.log10(1e-3 + energy).tolist()


def envelope_match(a: list[float], b: list[float], max_lag: int = 20) -> float:
    """Best Pearson correlation of two envelopes over lags of up to ``max_lag`` frames."""
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x = a[max(0, lag):]
        y = b[max(0, -lag):]
        n = min(len(x), len(y))
        if n < 50:
            continue
        x, y = x[:n], y[:n]
        mx, my = sum(x) / n, sum(y) / n
        sxy = sum((p - mx) * (q - my) for p, q in zip(x, y))
        sxx = sum((p - mx) ** 2 for p in x)
        syy = sum((q - my) ** 2 for q in y)
        if sxx > 0 and syy > 0:
            best = max(best, sxy / math.sqrt(sxx * syy))
    return best


def safe_name(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_") or "track"


def group_key(stem: str) -> str:
    return DERIVED_SUFFIX.sub("", safe_name(stem)).lower()


# -------------------------------------------------------------------- split --
def choose_validation(tracks: list[dict], fraction: float, minimum: int, seed: int,
                      package: str) -> set[str]:
    """Names of the tracks of one package held out for validation (whole groups)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for t in tracks:
        groups[group_key(t["track"])].append(t)
    keys = sorted(groups)
    if len(keys) < 2:
        return set()
    target = max(minimum, int(math.floor(fraction * len(tracks) + 0.5)))
    rng = random.Random(f"musicoder-split:{seed}:{package}")
    order = keys[:]
    rng.shuffle(order)
    chosen: set[str] = set()
    for key in order:
        if len(chosen) >= target:
            break
        if len(keys) - len({group_key(n) for n in chosen}) <= 1:
            break  # always leave at least one group for training
        chosen.update(t["track"] for t in groups[key])
    return chosen


# --------------------------------------------------------------- collecting --
def _source_of(path: Path, root: Path) -> str:
    """The path a file has in the package (``/x.zip!/member`` inside a zip)."""
    return "/" + str(path.relative_to(root))


def _upstream_path(source: str, spec: Source) -> str:
    """The upstream path (DEP-5 ``Files:``) of a source path."""
    path = source.lstrip("/")
    if spec.container and path.startswith(spec.container + "!/"):
        path = str(Path(spec.container).parent / path[len(spec.container) + 2:])
    installed, upstream = spec.upstream
    if installed and path.startswith(installed):
        path = upstream + path[len(installed):]
    return path


def collect_package(package: str, spec: Source, root: Path, ffmpeg: str | None,
                    min_duration: float, skipped: list[dict]) -> list[dict]:
    """The tracks of one extracted package, probed; skipped files go to ``skipped``."""
    def skip(source: str, reason: str, duration=None):
        skipped.append({"package": package, "source": source, "duration_s": duration, "reason": reason})

    doc = root / "usr" / "share" / "doc"
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and not p.is_symlink() and p.suffix.lower() in AUDIO_EXTENSIONS
                   and doc not in p.parents)
    # (file to probe, name stem, song folder and its stems when mixed)
    items: list[tuple[Path, str, tuple[Path, list[Path]] | None]] = []
    meta_cache: dict[Path, tuple[dict, set]] = {}  # folder -> folder_metadata()
    if spec.stems:
        by_folder: dict[Path, list[Path]] = defaultdict(list)
        for p in files:
            if STEM_SKIP.match(p.name):
                skip(_source_of(p, root), "song preview, not a stem")
            else:
                by_folder[p.parent].append(p)
        mixes = root / ".mixed"
        mixes.mkdir(exist_ok=True)
        for folder, stems in sorted(by_folder.items()):
            if len(stems) == 1:
                items.append((stems[0], folder.name, (folder, stems)))
                continue
            if ffmpeg is None:
                raise RuntimeError("mixing stems needs ffmpeg")
            out = mixes / f"{safe_name(folder.name)}.flac"
            print(f"[mix] {package}: {folder.name}: {' + '.join(s.name for s in stems)}", flush=True)
            mix_stems(stems, out, ffmpeg)
            items.append((out, folder.name, (folder, stems)))
    else:
        for p in files:
            source = _source_of(p, root)
            if p.parent not in meta_cache:
                meta_cache[p.parent] = folder_metadata(p.parent)
            rule = next((g for g in spec.exclude if fnmatchcase(source, g)), None)
            if p.name.lower() in meta_cache[p.parent][1]:
                skip(source, "excluded: sped-up copy of another track (fast-filename in *.music)")
            elif rule:
                skip(source, f"excluded by the package's rule {rule!r} (see PACKAGES)")
            else:
                items.append((p, p.stem, None))

    tracks: list[dict] = []
    used_names: set[str] = set()
    for audio, stem, song in items:
        if song:
            folder, stems = song
            source = _source_of(folder, root) + "/"
            meta = song_ini(folder)
            original = stems[0]
        else:
            source = _source_of(audio, root)
            meta = album_metadata(audio) or meta_cache[audio.parent][0].get(audio.name.lower(), {})
            original = audio
        info = probe_audio(audio)
        dur = info.get("duration_s")
        if dur is None or dur < min_duration:
            skip(source, info.get("probe_error") or f"shorter than {min_duration:g} s", dur)
            continue
        name = safe_name(stem)
        if name.lower() in used_names:  # same stem in two folders: prefix the folder
            name = safe_name(f"{original.parent.name}_{stem}")
        used_names.add(name.lower())
        note, note_file = licence_note_for(original, root)
        entry = {
            "package": package, "track": name,
            "title": meta.get("title") or info.get("tag_title") or stem,
            "artist": meta.get("artist") or info.get("tag_artist"),
            "album": meta.get("album") or info.get("tag_album"),
            "source": source, "duration_s": dur,
            "sample_rate": info.get("sample_rate"), "channels": info.get("channels"),
            "licence": None,  # set by gather() from the copyright file
        }
        if song:
            entry["mixed_from"] = [s.name for s in song[1]]
        if info.get("tag_license"):
            entry["licence_tag"] = info["tag_license"]
        if note:
            entry["licence_note"] = note
            entry["licence_note_file"] = _source_of(note_file, root)
        entry["_path"] = audio
        tracks.append(entry)
    return tracks


# -------------------------------------------------------------- duplicates --
def find_duplicates(tracks: list[dict], out_dir: Path, ffmpeg: str | None) -> dict[int, tuple[int, str]]:
    """Duplicate tunes: {index of the copy to drop: (index of the copy kept, how found)}."""
    def rank(i: int):  # the copy to keep: the validation one, then the first in order
        return (tracks[i]["split"] != "val", i)

    links: list[tuple[int, int, str]] = []
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(tracks):
        by_hash[t["sha1"]].append(i)
    for same in by_hash.values():
        for j in same[1:]:
            links.append((same[0], j, "identical file"))

    order = sorted(range(len(tracks)), key=lambda i: tracks[i]["duration_s"])
    candidates = []
    for a_pos, i in enumerate(order):
        for j in order[a_pos + 1:]:
            gap = tracks[j]["duration_s"] - tracks[i]["duration_s"]
            if gap > DUP_NAME_DURATION_TOLERANCE_S:
                break
            ti, tj = tracks[i], tracks[j]
            if ti["package"] == tj["package"] or ti["sha1"] == tj["sha1"]:
                continue
            if gap <= DUP_DURATION_TOLERANCE_S or group_key(ti["track"]) == group_key(tj["track"]):
                candidates.append((i, j))
    if candidates and ffmpeg:
        print(f"[dedupe] fingerprinting {len({k for c in candidates for k in c})} track(s) "
              f"of {len(candidates)} cross-package pair(s) with close durations", flush=True)
        cache: dict[int, list[float]] = {}
        for i, j in candidates:
            for k in (i, j):
                if k not in cache:
                    cache[k] = envelope(out_dir / tracks[k]["file"], ffmpeg)
            corr = envelope_match(cache[i], cache[j])
            if corr >= DUP_MIN_CORRELATION:
                links.append((i, j, f"same loudness envelope (r={corr:.3f})"))

    # Union the links into sets; keep the best-ranked member of each.
    parent = list(range(len(tracks)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    how: dict[frozenset, str] = {}
    for i, j, why in links:
        parent[find(i)] = find(j)
        how[frozenset((i, j))] = why
    sets: dict[int, list[int]] = defaultdict(list)
    for i in range(len(tracks)):
        sets[find(i)].append(i)
    drop: dict[int, tuple[int, str]] = {}
    for members in sets.values():
        if len(members) < 2:
            continue
        keep = min(members, key=rank)
        for m in members:
            if m != keep:
                why = how.get(frozenset((m, keep))) or next(
                    (w for pair, w in how.items() if m in pair), "duplicate")
                drop[m] = (keep, why)
    return drop


# --------------------------------------------------------------------- main --
def gather(out_dir: Path, deb_cache: Path, val_packages: tuple[str, ...], val_fraction: float,
           seed: int, min_duration: float, min_val: int, packages: tuple[str, ...],
           ffmpeg: str | None) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    for split in ("train", "val"):
        d = out_dir / split
        if d.exists() and any(d.iterdir()):
            if not manifest_path.exists():
                raise SystemExit(f"{d} is not empty and has no manifest.json: refusing to overwrite")
            shutil.rmtree(d)
        d.mkdir(parents=True, exist_ok=True)

    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=out_dir))
    manifest: dict = {
        "description": "MusiCoder training music gathered by scripts/gather_training_music.py",
        "split_by": "package", "val_packages": list(val_packages),
        "seed": seed, "val_fraction": val_fraction, "min_duration_s": min_duration,
        "packages": {}, "failed": {}, "tracks": [], "skipped": [],
    }
    t_start = time.monotonic()
    try:
        for package in packages:
            spec = PACKAGES[package]
            root = scratch / package
            try:
                deb, download_s = find_or_download_deb(package, deb_cache)
                version = _deb_field(deb, "Version")
                print(f"[extract] {deb.name}", flush=True)
                globs = [f"usr/share/doc/{package}/*", *spec.music]
                if spec.container:
                    globs.append(spec.container)
                extract_from_deb(deb, root, globs)
                if spec.container:
                    archive = root / spec.container
                    if not archive.is_file():
                        raise RuntimeError(f"/{spec.container} is not in {deb.name}")
                    n = extract_from_zip(archive, root / (spec.container + "!"), spec.members)
                    print(f"[extract] {n} member(s) of /{spec.container}", flush=True)
                    archive.unlink()
                doc_dir = root / "usr" / "share" / "doc" / package
                licence = detect_package_licence(doc_dir)
                stanzas = parse_dep5(doc_dir)
                tracks = collect_package(package, spec, root, ffmpeg if spec.stems else None,
                                         min_duration, manifest["skipped"])
                if not tracks:
                    raise RuntimeError("no music track found (see PACKAGES and skipped)")
            except Exception as exc:
                print(f"[failed] {package}: {exc}", flush=True)
                manifest["failed"][package] = f"{type(exc).__name__}: {exc}"
                shutil.rmtree(root, ignore_errors=True)
                continue

            manifest["packages"][package] = {
                "version": version, "deb": deb.name, "deb_bytes": deb.stat().st_size,
                "downloaded_s": download_s, "style": spec.style, "licence": licence,
                "copyright_file": f"/usr/share/doc/{package}/copyright",
            }
            if package in val_packages:
                val_names = {t["track"] for t in tracks}
            elif val_fraction > 0:
                val_names = choose_validation(tracks, val_fraction, min_val, seed, package)
            else:
                val_names = set()
            for entry in tracks:
                entry["licence"] = (dep5_licence_for(stanzas, _upstream_path(entry["source"], spec))
                                    if stanzas else None) or licence
                split = "val" if entry["track"] in val_names else "train"
                src: Path = entry.pop("_path")
                dest = out_dir / split / f"{package}__{entry['track']}{src.suffix.lower()}"
                shutil.move(str(src), dest)
                entry = {"split": split, "file": str(dest.relative_to(out_dir)),
                         "package": package, "version": version, "style": spec.style,
                         **{k: v for k, v in entry.items() if k != "package"},
                         "sha1": file_sha1(dest)}
                manifest["tracks"].append(entry)
            shutil.rmtree(root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    drop = find_duplicates(manifest["tracks"], out_dir, ffmpeg)
    for i, (keep, why) in sorted(drop.items()):
        t, k = manifest["tracks"][i], manifest["tracks"][keep]
        (out_dir / t["file"]).unlink()
        print(f"[dedupe] dropped {t['file']}: {why} as {k['file']}", flush=True)
        manifest["skipped"].append({"package": t["package"], "source": t["source"],
                                    "duration_s": t["duration_s"],
                                    "reason": f"duplicate ({why}) of {k['package']}:{k['source']}"})
    manifest["tracks"] = [t for i, t in enumerate(manifest["tracks"]) if i not in drop]

    summarise(manifest)
    manifest["elapsed_s"] = round(time.monotonic() - t_start, 1)
    manifest["tracks"].sort(key=lambda t: (t["split"] != "train", t["package"], t["track"]))
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)
    return manifest


def summarise(manifest: dict) -> None:
    """Per-package and per-split totals, and whether validation meets the requirement."""
    for pkg, info in manifest["packages"].items():
        mine = [t for t in manifest["tracks"] if t["package"] == pkg]
        splits = sorted({t["split"] for t in mine}, key=["train", "val"].index)
        info.update({
            "split": "+".join(splits) or "none",
            "tracks": len(mine),
            "hours": round(sum(t["duration_s"] for t in mine) / 3600.0, 3),
            "tracks_by_split": {s: sum(t["split"] == s for t in mine) for s in splits},
            "track_licences": dict(Counter(t["licence"] for t in mine).most_common()),
            "skipped": sum(s["package"] == pkg for s in manifest["skipped"]),
        })
    totals = {}
    for split in ("train", "val"):
        mine = [t for t in manifest["tracks"] if t["split"] == split]
        totals[split] = {
            "tracks": len(mine),
            "hours": round(sum(t["duration_s"] for t in mine) / 3600.0, 3),
            "packages": sorted({t["package"] for t in mine}),
            "styles": sorted({t["style"] for t in mine}),
        }
    unseen = sorted(set(totals["val"]["packages"]) - set(totals["train"]["packages"]))
    totals["val"]["packages_never_in_train"] = unseen
    totals["val_requirements"] = {
        "min_packages_never_in_train": VAL_MIN_PACKAGES, "min_tracks": VAL_MIN_TRACKS,
        "min_styles": VAL_MIN_STYLES,
        "met": (len(unseen) >= VAL_MIN_PACKAGES and totals["val"]["tracks"] >= VAL_MIN_TRACKS
                and len(totals["val"]["styles"]) >= VAL_MIN_STYLES),
    }
    manifest["totals"] = totals


def print_summary(manifest: dict, out_dir: Path) -> None:
    print(f"\n{'package':<27} {'style':<22} {'split':<6} {'tracks':>6} {'hours':>6}  licence(s)")
    for pkg, info in manifest["packages"].items():
        lic = ", ".join(f"{k} ({v})" if len(info["track_licences"]) > 1 else k
                        for k, v in info["track_licences"].items())
        print(f"{pkg:<27} {info['style']:<22} {info['split']:<6} {info['tracks']:>6} "
              f"{info['hours']:>6.2f}  {lic}")
    tot = manifest["totals"]
    for split in ("train", "val"):
        print(f"{'total ' + split:<27} {len(tot[split]['styles']):>2} style(s){'':<18} "
              f"{tot[split]['tracks']:>6} {tot[split]['hours']:>6.2f}")
    for pkg, why in manifest["failed"].items():
        print(f"FAILED {pkg}: {why}")
    print(f"skipped {len(manifest['skipped'])} file(s) (too short / not music / duplicate / unreadable)")
    req = tot["val_requirements"]
    print(f"validation: {tot['val']['tracks']} tracks, styles {', '.join(tot['val']['styles'])}; "
          f"packages never in train: {', '.join(tot['val']['packages_never_in_train']) or 'none'}"
          f" -> requirement {'met' if req['met'] else 'NOT MET'}")
    print(f"manifest: {out_dir / 'manifest.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Gather training music from Debian game packages (no installation).")
    parser.add_argument("out_dir", type=Path, help="output folder (train/, val/, manifest.json)")
    parser.add_argument("--deb-cache", type=Path,
                        default=Path("~/.cache/musicoder/debs").expanduser(),
                        help="folder for the downloaded .deb files (default: %(default)s)")
    parser.add_argument("--val-packages", nargs="*", default=list(DEFAULT_VAL_PACKAGES),
                        help="packages held out WHOLE for validation (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="also hold out this fraction of each training package's tracks "
                             "(default: %(default)s = off)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-track split (default: %(default)s)")
    parser.add_argument("--min-duration", type=float, default=20.0,
                        help="skip tracks shorter than this many seconds (default: %(default)s)")
    parser.add_argument("--min-val-per-package", type=int, default=2,
                        help="least held-out tracks per training package with --val-fraction "
                             "(default: %(default)s)")
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES), metavar="PKG",
                        help=f"packages to gather, among: {' '.join(PACKAGES)} (default: all)")
    parser.add_argument("--ffmpeg", default=None,
                        help="ffmpeg binary (default: on PATH, else imageio-ffmpeg's)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in [0, 1)")
    unknown = [p for p in args.packages + args.val_packages if p not in PACKAGES]
    if unknown:
        parser.error(f"not in PACKAGES (other music packages are reserved): {' '.join(unknown)}")
    for tool in ("dpkg-deb", "dpkg", "tar"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found: this script needs a Debian-based system")
    if importlib.util.find_spec("soundfile") is None and importlib.util.find_spec("librosa") is None:
        # without either no track has a duration, and every package would be 'no music track found'
        parser.error("soundfile not found: run with the project's venv (.venv/bin/python, after "
                     "`make test` or `pip install '.[tune]'`)")
    try:
        ffmpeg = find_ffmpeg(args.ffmpeg)
    except RuntimeError as exc:
        print(f"warning: {exc}; stems cannot be mixed and duplicates are found by content hash only",
              file=sys.stderr)
        ffmpeg = None
    manifest = gather(args.out_dir.expanduser().resolve(), args.deb_cache.expanduser().resolve(),
                      tuple(dict.fromkeys(args.val_packages)), args.val_fraction, args.seed,
                      args.min_duration, args.min_val_per_package,
                      tuple(dict.fromkeys(args.packages)), ffmpeg)
    print_summary(manifest, args.out_dir)
    return 1 if manifest["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
