"""Bad input, each with the error it gets: through a real server (identity textures:
the plumbing, not the texture transfer) and through ``musicoder convert`` in a subprocess (one
line on stderr, exit status 2, never a traceback). Odd but valid audio (8 channels at
96 kHz in float, silence, clipping, a DC offset, a file cut short after its index) must
convert, to finite output within the limiter's ceiling.

Covered elsewhere, not repeated here: in tests/test_server.py
``test_every_request_error_code_and_the_session_goes_on`` (clip and convert before a
track, unknown texture, quality and format, a binary frame for no upload, oversize
text and binary frames, fewer or more bytes than announced), in tests/test_audio_in.py
the decoder's codes on their own, in tests/test_protocol_fuzz.py the decoder under
arbitrary input.
"""
from __future__ import annotations

import copy
import io
import json
import time

import numpy as np
import pytest
import soundfile
from websockets.exceptions import ConnectionClosedError

import client
import protocol
from bench.fuzz_protocol import SAMPLES
from musicoder import audio
from musicoder.errors import InputError
from server.testing import ServerProcess

from .conftest import DEMO_CLIP, ffmpeg, peak_frequency
from .test_cli import run_cli
from .test_server import PLUMBING, Raw, run, wait_clean, wav_bytes

REFUSED = [  # file: the code it gets, from the server and in the CLI's message
    ("noise.mp3", "not_audio"),  # random bytes with an audio extension
    ("letter.mp4", "not_audio"),  # text renamed .mp4
    ("truncated.mp4", "truncated"),  # the first half of an AAC .mp4: its index (at the end) is missing
    ("empty.wav", "empty"),
    ("video_only.mp4", "no_audio_stream"),
    ("hour.flac", "too_long"),  # the limit is 30 min
]
CONVERTED = ["eight_96k_float.wav", "silence.wav", "clipped.wav", "over_full_scale.wav", "dc_offset.wav",
             "cut_after_index.mp4"]
CEILING = 10 ** (audio.PEAK_CEILING_DB / 20) + 1 / 32767  # the limiter's, plus 16-bit rounding


def chords(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict:
    """Every input file, made once per run (the hour-long one included: 1-2 s, 0.4 MB)."""
    folder = tmp_path_factory.mktemp("bad_input")
    path = {name: folder / name for name, _ in REFUSED}
    path |= {name: folder / name for name in CONVERTED}
    path["noise.mp3"].write_bytes(np.random.default_rng(0).bytes(20000))
    path["letter.mp4"].write_text("Dear user, this is not a song.\n" * 50)
    path["empty.wav"].write_bytes(b"")
    whole = folder / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-c:a", "aac", str(whole))
    path["truncated.mp4"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=6", "-c:a", "aac", "-movflags", "+faststart", str(whole))
    path["cut_after_index.mp4"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    ffmpeg("-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=10", "-c:v", "mpeg4", str(path["video_only.mp4"]))
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "flac", str(path["hour.flac"]))
    t = np.arange(3 * 96000) / 96000
    eight = np.stack([0.1 * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(8)], axis=1)
    soundfile.write(path["eight_96k_float.wav"], eight.astype(np.float32), 96000, subtype="FLOAT")
    soundfile.write(path["silence.wav"], np.zeros(3 * 44100, np.float32), 44100)
    soundfile.write(path["clipped.wav"], np.clip(4 * chords(3, 44100), -1, 1), 44100, subtype="PCM_16")
    soundfile.write(path["over_full_scale.wav"], (4 * chords(3, 44100)).astype(np.float32), 44100, subtype="FLOAT")
    soundfile.write(path["dc_offset.wav"], (0.6 + 0.1 * chords(3, 44100)).astype(np.float32), 44100, subtype="FLOAT")
    return path


def check_sane(data: bytes | str, name: str) -> None:
    """A conversion of ``name``: finite, within the limiter's ceiling, and what it should sound like."""
    y, rate = soundfile.read(data if isinstance(data, str) else io.BytesIO(data))
    assert rate == audio.SAMPLE_RATE and len(y) > rate and np.all(np.isfinite(y))
    assert np.max(np.abs(y)) <= CEILING
    if name == "silence.wav":
        assert audio.rms_dbfs(y) < audio.SILENCE_DBFS
        return
    assert audio.rms_dbfs(y) > -40
    assert abs(np.mean(y)) < 0.01
    if name == "dc_offset.wav":  # the music, not a rumble made of the offset
        assert abs(peak_frequency(y) - 220) < 3


# ---- files through the server --------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("srv"), models=PLUMBING) as server:
        yield server
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("name, code", REFUSED)
def test_the_server_refuses_a_bad_file_and_the_session_goes_on(srv, inputs, name, code):
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            t0 = time.monotonic()
            await r.upload(inputs[name].read_bytes(), name=name)
            err = await r.expect("error")
            assert (err.code, err.request) == (code, "upload_end") and "\n" not in err.message
            assert time.monotonic() - t0 < 10  # the hour-long file too: refused on its header
            await r.upload(wav_bytes(2.0))
            await r.expect("track")
        wait_clean(srv)

    run(main())


@pytest.mark.parametrize("name", CONVERTED)
def test_the_server_converts_odd_but_valid_audio(srv, inputs, name):
    async def main():
        async with client.Client(srv.url) as c:
            track = await c.upload(inputs[name])
            return track, await c.convert("water", "lofi", "wav")

    track, result = run(main())
    check_sane(result.audio, name)
    warnings = " ".join(track.window.warnings)
    if name == "eight_96k_float.wav":
        assert (track.channels, track.sample_rate) == (8, 96000)
    assert ("silent" in warnings) == (name == "silence.wav")
    assert ("cut short" in warnings) == (name == "cut_after_index.mp4")


# ---- files through `musicoder convert` -------------------------------------------------------

def assert_one_line_error(proc, exit_status: int = 2) -> str:
    assert proc.returncode == exit_status, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("musicoder: error: "), proc.stderr
    return proc.stderr[len("musicoder: error: "):].strip()


@pytest.mark.parametrize("via_server", [False, True], ids=["direct", "server"])
@pytest.mark.parametrize("name, code", REFUSED)
def test_the_cli_refuses_a_bad_file_in_one_line(srv, inputs, name, code, via_server, tmp_path):
    with pytest.raises(InputError) as expected:
        audio.load(inputs[name])
    assert expected.value.code == code
    out = tmp_path / "out.wav"
    server = ["--server", srv.url] if via_server else []
    t0 = time.monotonic()
    proc = run_cli("convert", str(inputs[name]), "-o", str(out), "--texture", "laser", "--quality", "lofi", *server)
    assert assert_one_line_error(proc) == f"{name}: {expected.value.message}"  # names the song, as an exemplar's does
    assert time.monotonic() - t0 < 30 and not out.exists()  # the hour too: refused on its header


@pytest.mark.parametrize("via_server", [False, True], ids=["direct", "server"])
@pytest.mark.parametrize("option, value, message", [("--texture", "disco", "Unknown texture 'disco'"),
                                                    ("--quality", "ultra", "Unknown quality 'ultra'")])
def test_the_cli_refuses_an_unknown_texture_or_quality(srv, option, value, message, via_server, tmp_path):
    args = {"--texture": "laser", "--quality": "lofi", option: value}
    server = ["--server", srv.url] if via_server else []
    proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "out.wav"),
                   *[part for item in args.items() for part in item], *server)
    assert assert_one_line_error(proc).startswith(message)


@pytest.mark.parametrize("via_server", [False, True], ids=["direct", "server"])
@pytest.mark.parametrize("option", ["--start", "--duration"])
def test_the_cli_refuses_nan_infinity_and_negative_windows(srv, option, via_server, tmp_path):
    server = ["--server", srv.url] if via_server else []
    for value in ["nan", "inf", "-inf", "-1"]:
        proc = run_cli("convert", str(DEMO_CLIP), "-o", str(tmp_path / "out.wav"), "--texture", "laser",
                       "--quality", "lofi", f"{option}={value}", *server)
        assert "window" in assert_one_line_error(proc), (option, value)


@pytest.mark.parametrize("name", ["eight_96k_float.wav", "silence.wav", "over_full_scale.wav", "dc_offset.wav"])
def test_the_cli_converts_odd_but_valid_audio(inputs, name, tmp_path):
    out = tmp_path / "out.wav"
    proc = run_cli("convert", str(inputs[name]), "-o", str(out), "--texture", "water", "--quality", "lofi")
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith("musicoder: warning: ") for line in proc.stderr.splitlines()), proc.stderr
    check_sane(str(out), name)


def test_too_long_is_refused_before_any_decoding(inputs, monkeypatch):
    """Even asked for the whole track (what the GUI's decode_bytes does), the hour is
    refused from the header that ``ffmpeg -i`` reads: the decoder is never called."""
    def decode(*args):
        raise AssertionError("the hour-long file is being decoded")

    monkeypatch.setattr(audio, "_decode", decode)
    t0 = time.monotonic()
    with pytest.raises(InputError) as err:
        audio.load(inputs["hour.flac"], duration=None)
    assert err.value.code == "too_long" and "60.0 min" in err.value.message
    assert time.monotonic() - t0 < 5


# ---- messages --------------------------------------------------------------------------------

BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "1" + "0" * 400]


def numeric_fields(obj, path=()):
    """The path of every number in a message (nested ones too; booleans are not numbers)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield path + (key,)
        else:
            yield from numeric_fields(value, path + (key,))


def with_number(msg: protocol.Message, path: tuple, literal: str) -> str:
    """The text of ``msg`` with the number at ``path`` written as ``literal``."""
    obj = copy.deepcopy(msg.to_dict())  # (its nested objects are the sample's own)
    inner = obj
    for key in path[:-1]:
        inner = inner[key]
    inner[path[-1]] = "@number@"
    return json.dumps(obj).replace('"@number@"', literal)


FIELDS = [(msg, path) for msg in SAMPLES for path in numeric_fields(msg.to_dict())]


def test_every_message_has_its_numbers_checked():
    assert {msg.TYPE for msg, _ in FIELDS} == set(protocol.MESSAGES)
    assert len(FIELDS) >= 40


@pytest.mark.parametrize("msg, path", [(m, p) for m, p in FIELDS if m.SENDER == "server"],
                         ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else v.TYPE)
def test_the_client_refuses_bad_numbers_in_every_answer(msg, path):
    for literal in BAD_NUMBERS:
        with pytest.raises(protocol.ProtocolError) as err:
            protocol.parse_text(with_number(msg, path, literal), sender="server")
        assert err.value.code == "bad_message", (path, literal)


def test_the_server_refuses_bad_numbers_in_every_request(srv):
    requests = [(m, p) for m, p in FIELDS if m.SENDER == "client"]
    assert {m.TYPE for m, _ in requests} == set(protocol.CLIENT_MESSAGES)

    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            for msg, path in requests:
                for literal in BAD_NUMBERS:
                    err = await r.error(with_number(msg, path, literal), "bad_message")
                    assert err.request == msg.TYPE and err.re == (None if path == ("id",) else msg.id), err
                    assert ".".join(map(str, path)) in err.message
            await r.hello()  # and the session goes on

    run(main())


def test_huge_and_deeply_nested_json(srv):
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            huge = json.dumps({"type": "hello", "id": 2, "version": 1, "padding": "x" * 1_000_000})
            await r.error(huge, "too_large")
            nested = '{"type": "hello", "id": 3, "version": 1, "padding": %s}' % ("[" * 20000 + "]" * 20000)
            err = await r.error(nested, "bad_message")
            assert len(nested) < protocol.MAX_TEXT_BYTES and "recursion" in err.message
            await r.hello()

    run(main())


def test_invalid_utf8_in_a_text_frame_closes_the_connection_and_cleans_up(srv):
    """RFC 6455 says a text frame that is not UTF-8 fails the connection: close code 1007."""
    async def main():
        async with Raw(srv.url) as r:
            await r.hello()
            await r.upload(wav_bytes(2.0))
            await r.expect("track")
            await r.ws.send(b'{"type": "hello", "id": 9, "version": 1, "client": "\xff\xfe"}', text=True)
            with pytest.raises(ConnectionClosedError):
                while True:
                    await r.recv()
            assert r.ws.close_code == 1007
        wait_clean(srv)  # the session, its upload and its window are gone
        async with Raw(srv.url) as r:  # and the server goes on
            await r.hello()

    run(main())


def test_requests_out_of_order(srv):
    """Beyond test_server's: an upload before hello, a chunk after its upload ended,
    upload_end twice, upload_end before any chunk, cancel with no conversion."""
    async def main():
        async with Raw(srv.url) as r:
            await r.error({"type": "upload", "id": 1, "name": "a.wav", "size": 10}, "not_ready")
            await r.hello()
            uid = await r.upload(wav_bytes(2.0))
            await r.expect("track")
            await r.error(protocol.encode_chunk(protocol.Kind.UPLOAD, uid, 1, True, b"late"), "bad_binary")
            await r.error({"type": "upload_end", "id": r.id(), "upload": uid}, "not_ready")
            uid = r.id()
            await r.send({"type": "upload", "id": uid, "name": "b.wav", "size": 100})
            await r.expect("upload_progress")
            await r.error({"type": "upload_end", "id": r.id(), "upload": uid}, "truncated")
            await r.error({"type": "cancel", "id": r.id(), "job": 1}, "unknown_job")
            await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "lofi"})
            await r.expect("result")  # the first track is still there
        wait_clean(srv)

    run(main())
