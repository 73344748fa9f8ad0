#!/usr/bin/env python3
"""Gather MusiCoder's training music from Debian music packages.

MusiCoder's texture networks are trained on spectrograms of real music. This
script builds that corpus from three freely licensed Debian game-soundtrack
packages, *without installing them*:

    wesnoth-1.16-music   orchestral / "romantic classical" (GPL-2+)
    warzone2100-music    electronic / ambient / cinematic (GPL-2+; the
                         LupusMechanicus albums also CC-BY-SA-3.0+)
    singularity-music    electronic / sci-fi (CC-BY-SA-3.0)

Steps:

1. ``apt-get download <package>`` into the .deb cache (``--deb-cache``,
   default ``~/.cache/musicoder/debs``). A package whose ``<package>_*.deb``
   is already in the cache is not downloaded again (newest version wins).
2. ``dpkg-deb -x`` each .deb into a scratch folder under OUT_DIR (removed
   again at the end).
3. Collect the audio files (.ogg, .opus, .oga, .flac, .wav, .mp3) and measure
   their durations with soundfile (librosa as a fallback); tracks shorter than
   ``--min-duration`` (20 s) — jingles, "silence" — are skipped.
4. Hold WHOLE tracks out for validation: per package, a seeded (``--seed``)
   random choice of about ``--val-fraction`` (15 %) of its tracks, and at least
   ``--min-val-per-package`` (2), so validation spans every style. Tracks that
   derive from one another (``foo`` / ``foo_enhanced`` / ``foo-old``) are kept
   on the same side of the split, so no tune leaks from train into val.
5. Lay the files out as::

       OUT_DIR/train/<package>__<track>.<ext>
       OUT_DIR/val/<package>__<track>.<ext>
       OUT_DIR/manifest.json

   ``<track>`` is the file's stem with anything outside ``[A-Za-z0-9._-]``
   replaced by ``_``. The manifest lists every track (split, package, package
   version, source path inside the package, duration in seconds, sample rate,
   channels, title/artist tags, licence) plus the skipped files and why.

Licences come from ``/usr/share/doc/<package>/copyright`` inside the .deb: the
``Files: *`` licence of a machine-readable (DEP-5) file, otherwise recognised
from the text (GPL-2+, CC-BY-SA-<version>). When a track's folder carries its
own licence file (warzone2100's ``albums/*/license.txt``), its opening
paragraph is recorded as ``licence_note``. The music is only used locally for
training; it is never redistributed with MusiCoder.

Usage::

    python scripts/gather_training_music.py OUT_DIR [--deb-cache DIR]
        [--val-fraction 0.15] [--seed 0]

Needs ``dpkg-deb`` (and ``apt-get`` when a .deb is not cached yet), Python's
standard library and soundfile (librosa optional). Re-running into the same
OUT_DIR replaces the train/ and val/ folders it made before.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PACKAGES = ("wesnoth-1.16-music", "warzone2100-music", "singularity-music")
AUDIO_EXTENSIONS = {".ogg", ".oga", ".opus", ".flac", ".wav", ".mp3"}
LICENCE_FILE_NAMES = ("license.txt", "licence.txt", "LICENSE", "LICENSE.txt", "COPYING")
# Suffixes marking a remaster / old version of another track in the package.
DERIVED_SUFFIX = re.compile(r"([_-](enhanced|remaster(ed)?|old|new|alt))+$", re.IGNORECASE)


# --------------------------------------------------------------------- debs --
def _compare_deb_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    lower = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lower else 1


def _deb_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True,
                          capture_output=True, text=True).stdout.strip()


def find_or_download_deb(package: str, cache: Path) -> Path:
    """Return the newest cached ``<package>_*.deb``, downloading it if absent."""
    cache.mkdir(parents=True, exist_ok=True)
    candidates = sorted(cache.glob(f"{package}_*.deb"))
    if not candidates:
        print(f"[download] apt-get download {package} -> {cache}", flush=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        candidates = sorted(cache.glob(f"{package}_*.deb"))
        if not candidates:
            raise SystemExit(f"apt-get download {package} produced no .deb in {cache}")
    if len(candidates) > 1:
        versions = {deb: _deb_field(deb, "Version") for deb in candidates}
        candidates.sort(key=functools.cmp_to_key(
            lambda x, y: _compare_deb_versions(versions[x], versions[y])))
    return candidates[-1]


# ----------------------------------------------------------------- licences --
def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def detect_package_licence(doc_dir: Path) -> str:
    """Short licence id of a package's music, read from its copyright file."""
    text = _read_text(doc_dir / "copyright")
    if not text:
        return "UNKNOWN (no copyright file)"
    # Machine-readable DEP-5 file: the licence of the "Files: *" stanza.
    if re.match(r"\s*Format:\s*\S*copyright-format", text):
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
    return "UNKNOWN (see copyright file)"


def licence_note_for(audio: Path, root: Path) -> tuple[str | None, str | None]:
    """Opening paragraph of a licence file sitting next to the track, if any."""
    for name in LICENCE_FILE_NAMES:
        path = audio.parent / name
        if path.is_file():
            text = _read_text(path)
            head = text.split("[EN]")[0] if "[EN]" in text else text[:800]
            note = " ".join(head.split())[:800]
            return note, "/" + str(path.relative_to(root))
    return None, None


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


# --------------------------------------------------------------------- main --
def gather(out_dir: Path, deb_cache: Path, val_fraction: float, seed: int,
           min_duration: float, min_val: int, packages: tuple[str, ...]) -> dict:
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
        "seed": seed, "val_fraction": val_fraction, "min_duration_s": min_duration,
        "packages": {}, "tracks": [], "skipped": [],
    }
    try:
        for package in packages:
            deb = find_or_download_deb(package, deb_cache)
            version = _deb_field(deb, "Version")
            root = scratch / package
            print(f"[extract] {deb.name}", flush=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            doc_dir = root / "usr" / "share" / "doc" / package
            licence = detect_package_licence(doc_dir)
            manifest["packages"][package] = {
                "version": version, "deb": deb.name, "licence": licence,
                "copyright_file": f"/usr/share/doc/{package}/copyright",
            }

            tracks: list[dict] = []
            used_names: set[str] = set()
            for audio in sorted(p for p in root.rglob("*")
                                if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                                and not p.is_symlink()):
                source = "/" + str(audio.relative_to(root))
                info = probe_audio(audio)
                dur = info.get("duration_s")
                if dur is None or dur < min_duration:
                    reason = info.get("probe_error") or f"shorter than {min_duration:g} s"
                    manifest["skipped"].append({"package": package, "source": source,
                                                "duration_s": dur, "reason": reason})
                    continue
                name = safe_name(audio.stem)
                if name in used_names:  # same stem in two folders: prefix the folder
                    name = safe_name(f"{audio.parent.name}_{audio.stem}")
                used_names.add(name)
                meta = album_metadata(audio)
                note, note_file = licence_note_for(audio, root)
                entry = {
                    "package": package, "track": name,
                    "title": meta.get("title") or info.get("tag_title") or audio.stem,
                    "artist": meta.get("artist") or info.get("tag_artist"),
                    "album": meta.get("album") or info.get("tag_album"),
                    "source": source, "duration_s": dur,
                    "sample_rate": info.get("sample_rate"), "channels": info.get("channels"),
                    "licence": licence,
                }
                if info.get("tag_license"):
                    entry["licence_tag"] = info["tag_license"]
                if note:
                    entry["licence_note"], entry["licence_note_file"] = note, note_file
                entry["_path"] = audio
                tracks.append(entry)

            val_names = choose_validation(tracks, val_fraction, min_val, seed, package)
            for entry in tracks:
                split = "val" if entry["track"] in val_names else "train"
                src: Path = entry.pop("_path")
                dest = out_dir / split / f"{package}__{entry['track']}{src.suffix.lower()}"
                shutil.move(str(src), dest)
                entry = {"split": split, "file": str(dest.relative_to(out_dir)), **entry}
                manifest["tracks"].append(entry)
            shutil.rmtree(root)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    manifest["tracks"].sort(key=lambda t: (t["split"] != "train", t["package"], t["track"]))
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, manifest_path)
    return manifest


def print_summary(manifest: dict, out_dir: Path) -> None:
    rows: dict = defaultdict(lambda: {"train": [0, 0.0], "val": [0, 0.0]})
    for t in manifest["tracks"]:
        cell = rows[t["package"]][t["split"]]
        cell[0] += 1
        cell[1] += t["duration_s"] / 60.0
    print(f"\n{'package':<22} {'train':>14} {'val':>14}  licence")
    tot = {"train": [0, 0.0], "val": [0, 0.0]}
    for pkg, r in rows.items():
        for s in tot:
            tot[s][0] += r[s][0]
            tot[s][1] += r[s][1]
        print(f"{pkg:<22} {r['train'][0]:>3} {r['train'][1]:>6.1f} min "
              f"{r['val'][0]:>3} {r['val'][1]:>6.1f} min  {manifest['packages'][pkg]['licence']}")
    print(f"{'total':<22} {tot['train'][0]:>3} {tot['train'][1]:>6.1f} min "
          f"{tot['val'][0]:>3} {tot['val'][1]:>6.1f} min")
    print(f"skipped {len(manifest['skipped'])} file(s) (too short / unreadable)")
    print("validation tracks:")
    for t in manifest["tracks"]:
        if t["split"] == "val":
            print(f"  {t['file']}  ({t['duration_s'] / 60:.1f} min, {t['title']})")
    print(f"manifest: {out_dir / 'manifest.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Gather training music from Debian music packages (no installation).")
    parser.add_argument("out_dir", type=Path, help="output folder (train/, val/, manifest.json)")
    parser.add_argument("--deb-cache", type=Path,
                        default=Path("~/.cache/musicoder/debs").expanduser(),
                        help="folder for the downloaded .deb files (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="fraction of each package's tracks held out (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default: %(default)s)")
    parser.add_argument("--min-duration", type=float, default=20.0,
                        help="skip tracks shorter than this many seconds (default: %(default)s)")
    parser.add_argument("--min-val-per-package", type=int, default=2,
                        help="least validation tracks per package (default: %(default)s)")
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES),
                        help="Debian packages to gather (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in [0, 1)")
    for tool in ("dpkg-deb", "dpkg"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found: this script needs a Debian-based system")
    manifest = gather(args.out_dir.expanduser().resolve(), args.deb_cache.expanduser().resolve(),
                      args.val_fraction, args.seed, args.min_duration,
                      args.min_val_per_package, tuple(args.packages))
    print_summary(manifest, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
