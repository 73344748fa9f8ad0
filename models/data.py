"""The music folders that tuning and evaluation read (made by
``scripts/gather_training_music.py``: ``train/``, ``val/`` and ``manifest.json``)."""
from __future__ import annotations

import os
from pathlib import Path

AUDIO_EXTENSIONS = {".ogg", ".opus", ".flac", ".wav", ".mp3", ".m4a", ".aac", ".oga"}


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Sorted audio files directly in ``folder``."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS)
