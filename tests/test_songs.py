"""Whole songs: the engine's blocks give the whole-clip result, a song streams from file to
file (convert_file) as the in-memory conversion gives it, and the CLI converts the whole
track by default and many files in one process, going on past a bad one."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

import models
from musicoder import audio, convert, engine, render, spectral
from musicoder import texture as transfer

from .conftest import DEMO_CLIP, REPO, ffmpeg


@pytest.fixture(scope="module")
def water():
    m = models.load("water")
    return transfer.make_transform(m.exemplar, m.settings)


@pytest.fixture(scope="module")
def minute() -> np.ndarray:
    """60 s of real stereo music, (2, n): the demo recording, then its reverse, then its start."""
    x = audio.load(DEMO_CLIP, duration=None, stereo=True).samples
    n = 60 * audio.SAMPLE_RATE
    return np.ascontiguousarray(np.concatenate([x, x[:, ::-1], x], axis=1)[:, :n])


def test_blocks_give_the_whole_clip_result_on_a_60_s_window(minute, water):
    # the whole minute in one block against blocks of 11.6 s (five seams); the margin grows with
    # the iterations, so LOFI's 8 check it as well as HIFI's 32 (docs/performance.md has those)
    whole = engine.render(minute, "lofi", water, block_frames=spectral.n_frames(minute.shape[1])).samples
    blocks = engine.render(minute, "lofi", water, block_frames=1000).samples
    assert blocks.shape == whole.shape == minute.shape
    assert np.max(np.abs(blocks - whole)) < 1e-4  # of full scale; measured: 0 (to float rounding)


def test_a_plain_transform_is_given_the_whole_clip_so_blocks_change_nothing(minute, water):
    def plain(log_x):  # any LogMagTransform without a plan (as the tests' broken engines are)
        return water(log_x)

    short = minute[:, :12 * audio.SAMPLE_RATE]
    whole = engine.render(short, "lofi", plain, block_frames=10_000).samples
    assert np.max(np.abs(engine.render(short, "lofi", plain, block_frames=400).samples - whole)) < 1e-4


def test_a_song_streams_from_file_to_file_as_the_in_memory_conversion_gives_it(tmp_path, water):
    out = tmp_path / "out.flac"
    # a window past 60 s is a streaming conversion's to take (here cut at the track's end, 28 s)
    result = convert.convert_file(DEMO_CLIP, out, "lofi", water, duration=180.0, block_frames=600,
                                  spectrogram_path=tmp_path / "s.png")
    assert result.channels == 2 and abs(result.duration - 28.0) < 0.01
    x = audio.load(DEMO_CLIP, duration=None, stereo=True).samples
    (tmp_path / "ref.flac").write_bytes(convert.convert(x, "lofi", water, format="flac", spectrogram=False).audio)
    got, ref = (soundfile.read(p, always_2d=True)[0] for p in (out, tmp_path / "ref.flac"))
    assert got.shape == ref.shape == (x.shape[1], 2)
    assert np.max(np.abs(got - ref)) <= 3 / 32767  # 16-bit steps
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_waveform_peaks_of_a_song_streamed_in_chunks_are_those_of_the_whole():
    y = np.random.default_rng(3).standard_normal(100_003).astype(np.float32)
    for n, chunk in ((len(y), 7_001), (500, 120), (10, 3)):  # the last two: fewer samples than columns
        peaks = render.WaveformPeaks(n, 800)
        for a in range(0, n, chunk):
            peaks.add(a, y[a:min(a + chunk, n)])
        assert np.array_equal(peaks.value, render.waveform_peaks(y[:n], 800))


def test_a_servers_long_job_streams_and_gives_the_in_memory_result(monkeypatch, minute, water):
    from server import worker

    c = worker.Converter("models")
    song = minute[:, :14 * audio.SAMPLE_RATE]
    spec = worker.JobSpec(window_path="", seconds=14.0, texture="water", quality="lofi", format="wav",
                          normalize=True, channels=2)
    held = c.convert(spec, song, None, lambda *a: None, lambda: False)
    monkeypatch.setattr(worker, "STREAM_SECONDS", 10.0)  # this 14 s job is now a "song"
    streamed = c.convert(spec, song, None, lambda *a: None, lambda: False)
    got, ref = (soundfile.read(io.BytesIO(o.audio), always_2d=True)[0] for o in (streamed, held))
    assert got.shape == ref.shape == (song.shape[1], 2) and streamed.channels == 2
    assert np.max(np.abs(got - ref)) <= 3 / 32767  # 16-bit steps
    assert np.max(np.abs(np.frombuffer(streamed.peaks, "<f4") - np.frombuffer(held.peaks, "<f4"))) < 1e-4
    assert streamed.spectrogram[:4] == b"\x89PNG"


def run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_the_whole_track_by_default_and_many_files_going_on_past_a_bad_one(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    ffmpeg("-i", str(DEMO_CLIP), "-t", "6", str(songs / "a.mp3"))  # stereo
    ffmpeg("-i", str(DEMO_CLIP), "-ss", "10", "-t", "4", "-ac", "1", str(songs / "b.wav"))  # mono
    ffmpeg("-i", str(DEMO_CLIP), "-ss", "20", "-t", "5", str(songs / "c.flac"))
    (songs / "bad.ogg").write_bytes(b"not audio at all" * 100)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("convert", *(str(songs / n) for n in ("a.mp3", "b.wav", "bad.ogg", "c.flac")),
                   "--output-dir", str(out), "--texture", "laser", "--quality", "lofi", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert sorted(os.listdir(out)) == ["a_laser_lofi.wav", "b_laser_lofi.wav", "c_laser_lofi.wav"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("musicoder: error:")]
    assert len(errors) == 1 and "bad.ogg" in errors[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "musicoder: 3 of 4 files converted; 1 failed: bad.ogg"
    for name, channels, seconds in (("a", 2, 6.0), ("b", 1, 4.0), ("c", 2, 5.0)):  # the whole of each
        info = soundfile.info(out / f"{name}_laser_lofi.wav")
        assert info.channels == channels and abs(info.duration - seconds) < 0.06, (name, info)


def test_many_files_refuse_one_output_name_and_two_outputs_alike_before_any_work(tmp_path):
    proc = run_cli("convert", str(DEMO_CLIP), str(DEMO_CLIP), "-o", "x.wav", "--texture", "water", cwd=tmp_path)
    assert proc.returncode == 2 and "--output-dir" in proc.stderr
    proc = run_cli("convert", str(DEMO_CLIP), str(DEMO_CLIP), "--texture", "water", cwd=tmp_path)
    assert proc.returncode == 2 and "two inputs would both be written to demo_water_standard.wav" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_many_files_through_a_server_in_one_session_going_on_past_a_bad_one(tmp_path):
    from server.testing import ServerProcess

    ffmpeg("-i", str(DEMO_CLIP), "-t", "3", str(tmp_path / "a.flac"))
    ffmpeg("-i", str(DEMO_CLIP), "-ss", "12", "-t", "2", "-ac", "1", str(tmp_path / "b.wav"))
    (tmp_path / "bad.mp3").write_bytes(b"not audio at all" * 100)
    out = tmp_path / "out"
    out.mkdir()
    server = ServerProcess(str(tmp_path / "data"), workers=1).start()
    try:
        proc = run_cli("convert", *(str(tmp_path / n) for n in ("a.flac", "bad.mp3", "b.wav")), "--output-dir",
                       str(out), "--texture", "water", "--quality", "lofi", "--strength", "0.5", "--server",
                       server.url, cwd=tmp_path)
    finally:
        server.stop()
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "musicoder: 2 of 3 files converted; 1 failed: bad.mp3"
    assert [line for line in proc.stderr.splitlines() if "error" in line][0].startswith("musicoder: error: bad.mp3: ")
    for name, channels, seconds in (("a", 2, 3.0), ("b", 1, 2.0)):  # the whole of each, its channels kept
        info = soundfile.info(out / f"{name}_water_lofi.wav")
        assert info.channels == channels and abs(info.duration - seconds) < 0.06, (name, info)
