"""What `musicoder convert` writes and how it ends: the default output name, the level
(−16 LUFS, or the input's own with --no-normalize), an output that exists, a disk that
fills, a broken installation, Ctrl-C and an ffmpeg that hangs. Most run the command in
this process (cli.main), on 2 s of the demo clip at lofi; those about signals and
processes run it as a user does."""
from __future__ import annotations

import builtins
import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyloudnorm
import pytest
import soundfile

import cli
import models
from musicoder import audio

from .conftest import DEMO_CLIP, REPO

QUICK = ("--quality", "lofi", "--start", "2", "--duration", "2")
CEILING = 10 ** (audio.PEAK_CEILING_DB / 20) + 1 / 32767  # the limiter's, plus 16-bit rounding


def convert(*args: str) -> int:
    """cli.main of `musicoder convert ARGS` with the quick window."""
    return cli.main(["convert", *map(str, args), *QUICK])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("musicoder: error: "), err
    return err


def loudness(path) -> float:
    y, rate = soundfile.read(path)
    return pyloudnorm.Meter(rate).integrated_loudness(y)


def test_the_default_output_is_named_after_the_input_texture_and_quality_here(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert convert(DEMO_CLIP, "--texture", "Water") == 0  # any case, as the server reads it
    assert capsys.readouterr().out.strip() == "demo_water_lofi.wav"
    assert os.listdir(tmp_path) == ["demo_water_lofi.wav"]
    assert abs(soundfile.info(tmp_path / "demo_water_lofi.wav").duration - 2.0) < 0.05


def test_a_conversion_is_at_minus_16_lufs_unless_its_peaks_hold_it_lower(tmp_path):
    mono = tmp_path / "mono.wav"  # the mono mix: laser's zaps peak 15 dB above its loudness there
    soundfile.write(mono, audio.load(DEMO_CLIP, start=2.0, duration=2.0).samples, audio.SAMPLE_RATE, subtype="FLOAT")
    for song, texture in ((DEMO_CLIP, "water"), (DEMO_CLIP, "future"), (DEMO_CLIP, "laser"), (mono, "laser")):
        out = tmp_path / f"{texture}_{song.stem}.wav"
        assert cli.main(["convert", str(song), "--texture", texture, "-o", str(out), "--quality", "lofi",
                         *(QUICK[2:] if song == DEMO_CLIP else ())]) == 0
        peak_db = 20 * np.log10(np.max(np.abs(soundfile.read(out)[0])))
        if song == mono:  # the peak ceiling holds it lower
            assert abs(peak_db - audio.PEAK_CEILING_DB) < 0.05 and loudness(out) < audio.TARGET_LUFS - 0.5
        else:  # in stereo (as BS.1770 sums the channels) the same zaps reach the target under the ceiling
            assert abs(loudness(out) - audio.TARGET_LUFS) <= 0.5 and peak_db < audio.PEAK_CEILING_DB


def test_no_normalize_keeps_the_input_level_under_the_peak_ceiling(tmp_path):
    y = audio.load(DEMO_CLIP, start=2.0, duration=2.0).samples  # peaks near -9 dBFS
    outs = {}
    for name, gain_db in (("as_is", 0.0), ("quieter", -12.0), ("hot", 9.0)):
        source, outs[name] = tmp_path / f"{name}.wav", tmp_path / f"out_{name}.wav"
        soundfile.write(source, y * 10 ** (gain_db / 20), audio.SAMPLE_RATE, subtype="FLOAT")
        assert cli.main(["convert", str(source), "--texture", "water", "--quality", "lofi", "--no-normalize",
                         "-o", str(outs[name])]) == 0
    assert abs(loudness(outs["as_is"]) - loudness(outs["quieter"]) - 12.0) < 0.5
    assert loudness(outs["as_is"]) < audio.TARGET_LUFS - 3  # its own level, not the target
    for out in outs.values():
        assert np.max(np.abs(soundfile.read(out)[0])) <= CEILING, out


def test_an_output_that_exists_is_refused_before_any_work_and_replaced_with_y(tmp_path, capsys, monkeypatch):
    out, png = tmp_path / "out.wav", tmp_path / "out.png"
    out.write_bytes(b"the user's file")
    calls = []
    monkeypatch.setattr(audio, "load", lambda *a, **k: calls.append(a))  # no decoding at all
    assert convert(DEMO_CLIP, "--texture", "laser", "-o", out) == cli.EXIT_INPUT
    assert f"{out} exists: use -y (--overwrite)" in one_line_error(capsys)
    assert out.read_bytes() == b"the user's file" and calls == []
    monkeypatch.undo()
    out.unlink()
    png.write_bytes(b"the user's picture")  # the spectrogram's file too
    assert convert(DEMO_CLIP, "--texture", "laser", "-o", out, "--spectrogram", png) == cli.EXIT_INPUT
    assert str(png) in one_line_error(capsys) and not out.exists()
    out.write_bytes(b"the user's file")
    assert convert(DEMO_CLIP, "--texture", "laser", "-o", out, "--spectrogram", png, "-y") == 0
    assert soundfile.info(out).samplerate == audio.SAMPLE_RATE and png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["out.png", "out.wav"]


class _Fails:
    """A file being written that takes a little, then raises ``error``: a disk filling up
    (ENOSPC) or Ctrl-C in mid-write."""

    def __init__(self, f, error: BaseException):
        self.f, self.error = f, error

    def write(self, data: bytes) -> int:
        self.f.write(data[:1000])
        raise self.error

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def _failing_writes(monkeypatch, error: BaseException) -> None:
    """Writing an output file (its temporary ``.part`` beside it) fails with ``error``."""
    def opener(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)
        return _Fails(f, error) if "w" in mode and str(file).endswith(".part") else f

    monkeypatch.setattr(audio, "open", opener, raising=False)  # audio's own open: where it writes files


def test_a_full_disk_is_exit_3_naming_the_file_and_leaves_the_old_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.wav"
    out.write_bytes(b"the user's file")
    _failing_writes(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert convert(DEMO_CLIP, "--texture", "future", "-o", out, "-y") == cli.EXIT_IO
    assert f"cannot write {out}: {os.strerror(errno.ENOSPC)}" in one_line_error(capsys)
    assert out.read_bytes() == b"the user's file" and os.listdir(tmp_path) == ["out.wav"]  # no partial file


def test_ctrl_c_mid_write_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out.wav"
    _failing_writes(monkeypatch, KeyboardInterrupt())
    assert convert(DEMO_CLIP, "--texture", "future", "-o", out) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err.startswith("musicoder: interrupted") and os.listdir(tmp_path) == []


def test_a_folder_in_the_output_s_place_is_exit_3(tmp_path, capsys):
    out = tmp_path / "out.wav"
    out.mkdir()
    assert convert(DEMO_CLIP, "--texture", "water", "-o", out, "--overwrite") == cli.EXIT_IO
    assert f"cannot write {out}" in one_line_error(capsys)
    assert os.listdir(tmp_path) == ["out.wav"] and os.listdir(out) == []


def test_corrupt_texture_settings_are_exit_4(tmp_path, monkeypatch, capsys):
    (tmp_path / "water.json").write_text('{"format_version": 2, "method": "band-statistics", "settings": {')
    monkeypatch.setattr(models, "SETTINGS_DIR", tmp_path)
    assert convert(DEMO_CLIP, "--texture", "water", "-o", tmp_path / "out.wav") == cli.EXIT_MODEL
    assert "water.json: corrupt texture settings" in one_line_error(capsys)
    assert not (tmp_path / "out.wav").exists()


def test_no_usable_ffmpeg_is_exit_4(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(audio.FFMPEG_ENV, str(tmp_path / "no-such-ffmpeg"))
    assert convert(DEMO_CLIP, "--texture", "water", "-o", tmp_path / "out.wav") == cli.EXIT_MODEL
    assert "no such program" in one_line_error(capsys)


# ---- as a user runs it: signals and an ffmpeg that hangs ----------------------------------------

def hanging_ffmpeg(folder, when: str):
    """An ffmpeg that hangs whenever its command line holds ``when`` (writing its pid to
    folder/hung first) and is the real one otherwise."""
    script = folder / "ffmpeg"
    script.write_text(f'#!/bin/sh\ncase "$*" in *{when}*) echo $$ > "{folder / "hung"}"; exec sleep 600;; esac\n'
                      f'exec "{audio.ffmpeg_path()}" "$@"\n')
    script.chmod(0o755)
    return script, folder / "hung"


def start_cli(tmp_path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "convert", str(DEMO_CLIP), *args, *QUICK],
                            cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path, proc: subprocess.Popen, seconds: float = 60) -> int:
    """The pid written to ``path``, once it is there."""
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return int(path.read_text())


def gone(pid: int, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture()
def tools(tmp_path):
    folder = tmp_path / "tools"
    folder.mkdir()
    yield folder
    hung = folder / "hung"
    if hung.exists() and hung.read_text().strip():  # never leave a sleeper behind
        try:
            os.kill(int(hung.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_ctrl_c_mid_conversion_is_exit_130_in_one_line_with_no_file_left(tmp_path, tools):
    # it stalls where the level is measured: after the render, before any file is written
    ffmpeg, hung = hanging_ffmpeg(tools, "ebur128")
    out = tmp_path / "out.wav"
    proc = start_cli(tmp_path, "--texture", "laser", "-o", str(out), "--spectrogram", str(tmp_path / "out.png"),
                     MUSICODER_FFMPEG=str(ffmpeg))
    pid = wait_for(hung, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.count("\n") == 1 and err.startswith("musicoder: interrupted"), err
    assert os.listdir(tmp_path) == ["tools"]  # no output, no spectrogram, no temporary file
    assert gone(pid)  # its ffmpeg stopped with it


def test_an_ffmpeg_that_hangs_is_killed_and_the_command_ends_with_a_clear_error(tmp_path, tools):
    ffmpeg, hung = hanging_ffmpeg(tools, "ebur128")
    t0 = time.monotonic()
    proc = start_cli(tmp_path, "--texture", "laser", "-o", str(tmp_path / "out.wav"),
                     MUSICODER_FFMPEG=str(ffmpeg), MUSICODER_FFMPEG_TIMEOUT="2")
    _, err = proc.communicate(timeout=60)
    limit = 2 + audio.FFMPEG_TIMEOUT_PER_AUDIO_SECOND * 2.0  # 2 s of audio measured
    assert proc.returncode == cli.EXIT_MODEL and err.count("\n") == 1, err
    assert f"ffmpeg did not finish measuring loudness in {limit:g} s and was stopped" in err
    assert limit <= time.monotonic() - t0 < limit + 30
    assert gone(wait_for(hung, proc)) and os.listdir(tmp_path) == ["tools"]


def test_the_ffmpeg_time_limit_grows_with_the_audio_and_reads_its_variable(monkeypatch):
    monkeypatch.delenv(audio.FFMPEG_TIMEOUT_ENV, raising=False)
    assert audio.ffmpeg_timeout() == audio.FFMPEG_TIMEOUT_S
    assert audio.ffmpeg_timeout(30.0) == audio.FFMPEG_TIMEOUT_S + 30.0 * audio.FFMPEG_TIMEOUT_PER_AUDIO_SECOND
    monkeypatch.setenv(audio.FFMPEG_TIMEOUT_ENV, "5")
    assert audio.ffmpeg_timeout(1.0) == 5 + audio.FFMPEG_TIMEOUT_PER_AUDIO_SECOND
    for bad in ("0", "soon", "nan"):
        monkeypatch.setenv(audio.FFMPEG_TIMEOUT_ENV, bad)
        with pytest.raises(audio.NoFfmpeg, match=audio.FFMPEG_TIMEOUT_ENV):
            audio.ffmpeg_timeout()
