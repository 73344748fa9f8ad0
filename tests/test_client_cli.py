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
        args = ("convert", str(DEMO_CLIP), "-o", str(out), "--texture", "Water", "--quality", "lofi",  # any case
                "--start", "3", "--duration", "2", "--spectrogram", str(png), "--server", srv.url)
        proc = run_cli(*args)
        assert proc.returncode == 0, proc.stderr
        y, rate = soundfile.read(out)
        assert rate == 44100 and abs(len(y) / rate - 2.0) < 0.05 and png.read_bytes()[:4] == b"\x89PNG"
        first = out.read_bytes()
        out.write_bytes(b"the user's file")
        proc = run_cli(*args)  # the output exists: refused, before connecting
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "use -y (--overwrite)" in proc.stderr
        assert out.read_bytes() == b"the user's file"
        proc = run_cli(*args, "-y")
        assert proc.returncode == 0 and out.read_bytes() == first, proc.stderr
        proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "x.wav"), "--texture", "water",
                       "--start", "100", "--server", srv.url)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "y.wav"), "--texture", "water",
                   "--server", srv.url)  # the server is gone now
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "cannot connect" in proc.stderr


def _closed_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}"


def test_several_servers_comma_separated_or_repeated_and_bad_ones(tmp_path):
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["convert"].format_help()
    assert "comma-separated" in " ".join(help_text.split())
    closed, closed2 = _closed_url(), _closed_url()
    base = ("convert", str(DEMO_CLIP), "--texture", "water", "--quality", "lofi", "--duration", "2")
    with ServerProcess(tmp_path / "data", workers=1, models="tests.passthrough_models") as srv:
        for i, servers in enumerate(([f"{closed},{srv.url}"], [closed, srv.url])):  # one value, or --server again
            out = tmp_path / f"out{i}.wav"
            proc = run_cli(*base, "-o", str(out), *(a for url in servers for a in ("--server", url)))
            assert proc.returncode == 0, proc.stderr
            assert abs(soundfile.info(out).duration - 2.0) < 0.05
    for servers, code, words in (((f"{closed},http://127.0.0.1:1",), 2, "Bad server address 'http://127.0.0.1:1'"),
                                 (("",), 2, "No server address given"),
                                 ((closed, closed2), 5, "cannot connect to any of 2 servers")):
        proc = run_cli(*base, "-o", str(tmp_path / "x.wav"), *(a for url in servers for a in ("--server", url)))
        assert proc.returncode == code and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "x.wav").exists()
    assert closed in proc.stderr and closed2 in proc.stderr  # every address tried is named
