"""The music folders that tuning and evaluation read (made by
``scripts/gather_training_music.py``: ``train/``, ``val/`` and ``manifest.json``)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

AUDIO_EXTENSIONS = {".ogg", ".opus", ".flac", ".wav", ".mp3", ".m4a", ".aac", ".oga"}


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Sorted audio files directly in ``folder``."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)


# training packages the network never trains on (tuning saw them): learned vs tuned on music it never heard
NETWORK_HELD_OUT = ("nexuiz-music", "widelands-data")

# where models/README.md's gathering commands put the music (and the recordings beside it)
DATA_DIR = "~/musicoder-data"
DEFAULT_MUSIC_DIR = os.environ.get("MUSICODER_MUSIC_DIR", f"{DATA_DIR}/music")


def user_path(text: str) -> Path:
    """A folder or file argument as a user types it (``~`` expanded); argparse's ``type``."""
    return Path(text).expanduser()


def portable_path(path: str | os.PathLike, home: str | os.PathLike | None = None,
                  project: str | os.PathLike | None = None, temp: str | os.PathLike | None = None) -> str:
    """``path`` as it reads on anyone's machine, for a record committed with the project:
    under ``project`` (default: this repository) relative to it, under ``home`` (default:
    the user's) as ``~/…``, under ``temp`` (default: the system's temporary folder) as
    ``$TMPDIR/…``, else unchanged."""
    p = Path(path).expanduser().absolute()
    bases = ((project or Path(__file__).resolve().parents[1], ""), (home or Path.home(), "~"),
             (temp or tempfile.gettempdir(), "$TMPDIR"))
    for base, prefix in bases:
        try:
            rest = p.relative_to(Path(base).absolute()).as_posix()
        except ValueError:
            continue
        if not prefix:
            return rest
        return prefix if rest == "." else f"{prefix}/{rest}"
    return str(path)


def portable_command(prog: str, args: list[str], home: str | os.PathLike | None = None,
                     project: str | os.PathLike | None = None, temp: str | os.PathLike | None = None) -> str:
    """The command line ``prog args…`` as a record: every argument that is a path
    (absolute, ``~/…``, or naming an existing file; ``--opt=PATH`` too) through
    :func:`portable_path`, the rest as typed."""
    def one(arg: str) -> str:
        opt, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if value and (value.startswith(("/", "~")) or os.path.exists(value)):
            value = portable_path(value, home, project, temp)
        return f"{opt}{eq}{value}"
    return " ".join([prog, *(one(a) for a in args)])
