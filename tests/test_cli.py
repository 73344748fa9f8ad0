"""The musicoder command as a user runs it."""
from __future__ import annotations

import subprocess
import sys

from .conftest import DEMO_CLIP, REPO


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def test_reconstruct_writes_audio_and_spectrogram(tmp_path):
    out, png = tmp_path / "demo.flac", tmp_path / "demo.png"
    proc = run_cli("reconstruct", str(DEMO_CLIP), "-o", str(out), "--quality", "lofi", "--duration", "3",
                   "--spectrogram", str(png))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "song.mp4"
    bad.write_text("not a song")
    proc = run_cli("reconstruct", str(bad), "-o", str(tmp_path / "x.wav"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "error" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_window_is_one_line_and_nonzero(tmp_path):
    proc = run_cli("reconstruct", str(DEMO_CLIP), "--start", "nan", "-o", str(tmp_path / "x.wav"))
    assert proc.returncode == 2 and "finite" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_output_folder_is_refused_before_the_work(tmp_path):
    proc = run_cli("reconstruct", str(DEMO_CLIP), "--duration", "2", "--quality", "lofi",
                   "-o", str(tmp_path / "no" / "such" / "dir" / "x.wav"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
