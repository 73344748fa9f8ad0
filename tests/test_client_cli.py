"""`musicoder convert --server URL` through the client library, as a user runs it.

Skipped until the CLI has the --server option (cli/ wires client.convert_file)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import soundfile

import cli
from server.testing import ServerProcess

from .conftest import DEMO_CLIP, REPO

HAS_SERVER_OPTION = "--server" in cli.build_parser()._subparsers._group_actions[0].choices["convert"].format_help()
pytestmark = pytest.mark.skipif(not HAS_SERVER_OPTION, reason="musicoder convert has no --server option yet")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_convert_through_a_server_and_its_errors(tmp_path):
    with ServerProcess(tmp_path / "data", workers=1) as srv:
        out, png = tmp_path / "out.ogg", tmp_path / "out.png"
        proc = run_cli("convert", str(DEMO_CLIP), "-o", str(out), "--texture", "water", "--quality", "lofi",
                       "--start", "3", "--duration", "2", "--spectrogram", str(png), "--server", srv.url)
        assert proc.returncode == 0, proc.stderr
        y, rate = soundfile.read(out)
        assert rate == 44100 and abs(len(y) / rate - 2.0) < 0.05 and png.read_bytes()[:4] == b"\x89PNG"
        proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "x.wav"), "--texture", "water",
                       "--start", "100", "--server", srv.url)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "y.wav"), "--texture", "water",
                   "--server", srv.url)  # the server is gone now
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "cannot connect" in proc.stderr
