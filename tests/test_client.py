"""The client library: what fails before connecting, and how; several server addresses
(parsing them, passing over one that cannot be reached or refuses us, and failing over
to the next when a server dies mid-conversion)."""
from __future__ import annotations

import asyncio
import socket

import pytest
import soundfile

import client
from musicoder.errors import InputError
from server.testing import ServerProcess

from .conftest import DEMO_CLIP, REPO

PLUMBING = "tests.passthrough_models"  # identity textures: these tests are about the connection
TOKEN = "client-test-token"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_connection_failed(tmp_path):
    url = f"ws://127.0.0.1:{_closed_port()}"
    with pytest.raises(client.ConnectionFailed) as e:
        client.convert_file(url, DEMO_CLIP, tmp_path / "x.wav", "laser", timeout=3)
    assert "\n" not in str(e.value) and url in str(e.value) and "refused" in str(e.value)


@pytest.mark.parametrize("bad, words", [("http://127.0.0.1:1", "must start with ws:// or wss://"),
                                        ("127.0.0.1:8765", "must start with ws:// or wss://"),
                                        ("ws://127.0.0.1:port", "port is not a number"),
                                        ("ws://127.0.0.1:70000", "port is not a number"),
                                        ("ws://:8765", "names no host"),
                                        ("ws://a:1 ws://b:2", "separate addresses with commas"),
                                        (" , ", "No server address given")])
def test_a_bad_address_is_a_clear_input_error_before_connecting(tmp_path, bad, words):
    good = f"ws://127.0.0.1:{_closed_port()}, " if bad.strip(" ,") else ""  # a good one beside it changes nothing
    with pytest.raises(InputError) as e:
        client.convert_file(f"{good}{bad}", DEMO_CLIP, tmp_path / "x.wav", "laser", timeout=3)
    assert e.value.code == "bad_server" and words in str(e.value) and "\n" not in str(e.value)
    assert bad.strip(" ,") in str(e.value)  # names the bad one
    with pytest.raises(InputError, match=words):
        client.Client([bad])


def test_addresses_comma_separated_or_repeated_read_the_same():
    a, b, c = "ws://127.0.0.1:8765", "wss://front-b.example:443/musicoder", "ws://[::1]:9000"
    assert client.parse_servers(a) == [a]
    assert client.parse_servers(f" {a} ,{b},, {c}, ") == [a, b, c]  # spaces and stray commas dropped
    assert client.parse_servers([a, f"{b},{c}", a]) == [a, b, c]  # --server repeated; a repeat once
    c1 = client.Client(f"{a},{b}")
    assert c1.urls == [a, b] and c1.url == a
    assert (c1.next_server(), c1.next_server()) == (b, a)  # cycling
    assert client.Client(a).next_server() == a  # one address: that one again


def test_none_reachable_names_every_address_tried(tmp_path):
    urls = [f"ws://127.0.0.1:{_closed_port()}", f"ws://127.0.0.1:{_closed_port()}"]
    tried = []

    async def main():
        c = client.Client(urls, open_timeout=3, on_connecting=tried.append)
        with pytest.raises(client.ConnectionFailed) as e:
            await c.connect()
        assert c.url == urls[0]  # the next try starts where this one did
        return e.value

    err = asyncio.run(main())
    assert tried == urls and not isinstance(err, client.AccessDenied)
    assert "\n" not in str(err) and "any of 2 servers" in str(err) and all(u in str(err) for u in urls)
    with pytest.raises(client.ConnectionFailed) as e:
        client.convert_file(",".join(urls), DEMO_CLIP, tmp_path / "x.wav", "laser", timeout=3)
    assert all(u in str(e.value) for u in urls) and "refused" in str(e.value)


@pytest.mark.parametrize("out, source, code", [("x.aiff", DEMO_CLIP, "bad_format"),
                                                ("x.wav", "/no/such/song.mp3", "not_found")])
def test_local_input_errors_come_before_connecting(tmp_path, out, source, code):
    with pytest.raises(InputError) as e:
        client.convert_file(f"ws://127.0.0.1:{_closed_port()}", source, tmp_path / out, "laser")
    assert e.value.code == code


# ---- several front ends: real servers --------------------------------------------------------

@pytest.fixture(scope="module")
def standby(tmp_path_factory):
    """The front end a client fails over to."""
    with ServerProcess(tmp_path_factory.mktemp("standby"), workers=1, models=PLUMBING) as srv:
        yield srv


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    """A front end that wants a token the clients here do not have."""
    with ServerProcess(tmp_path_factory.mktemp("guarded"), workers=1, models=PLUMBING,
                       env={"MUSICODER_TOKEN": TOKEN}) as srv:
        yield srv


def test_a_first_address_that_refuses_connections_gives_way_to_the_second(standby, tmp_path):
    closed = f"ws://127.0.0.1:{_closed_port()}"
    tried = []

    async def main():
        async with client.Client(f"{closed}, {standby.url}", on_connecting=tried.append) as c:
            assert c.url == standby.url and c.welcome is not None
            await c.upload(DEMO_CLIP)
            await c.clip(1.0, 2.0)
            await c.reconnect()  # a new session, on the next address: the closed one, then round to the standby
            result = await c.convert("water", "lofi")
            return c.url, result

    url, result = asyncio.run(main())
    assert url == standby.url and tried == [closed, standby.url, closed, standby.url]
    assert abs(result.duration - 2.0) < 0.01  # the song and its window were sent again
    out = tmp_path / "x.wav"
    info = client.convert_file([closed, standby.url], DEMO_CLIP, out, "water", "lofi", duration=2.0, timeout=3)
    assert info.url == standby.url and abs(soundfile.info(out).duration - 2.0) < 0.05


def test_access_denied_is_not_retried_on_that_address_but_the_next_is_tried(guarded, standby):
    closed = f"ws://127.0.0.1:{_closed_port()}"

    async def main():
        with pytest.raises(client.AccessDenied) as e:
            await client.Client(guarded.url).connect()
        assert "HTTP 401" in str(e.value)  # one address: its own error, as before
        tried = []
        async with client.Client([guarded.url, standby.url], on_connecting=tried.append) as c:
            assert c.url == standby.url
            assert c.next_server() == standby.url  # the refusing one is passed over
            await c.reconnect()
        assert tried == [guarded.url, standby.url, standby.url]
        tried.clear()
        c = client.Client([guarded.url, closed], on_connecting=tried.append, open_timeout=3)
        with pytest.raises(client.ConnectionFailed) as e:
            await c.connect()
        assert not isinstance(e.value, client.AccessDenied)  # the other may come back: worth retrying
        assert guarded.url in str(e.value) and closed in str(e.value) and "HTTP 401" in str(e.value)
        with pytest.raises(client.ConnectionFailed) as e:
            await c.connect()
        assert tried == [guarded.url, closed, closed]  # the refusing address was not asked again
        assert guarded.url in str(e.value)  # but the error still names it

    asyncio.run(main())


def test_a_server_that_dies_mid_conversion_fails_over_and_the_song_window_and_exemplar_go_again(standby, tmp_path):
    exemplar = REPO / "models" / "exemplars" / "laser.flac"
    first = ServerProcess(tmp_path / "first", workers=1, models=PLUMBING).start()
    stages, killed_at = [], []

    def progress(stage, fraction):
        stages.append(stage)
        if stage not in ("uploading", "done") and not killed_at:
            killed_at.append(stage)
            first.kill9()  # the first front end dies while its job runs

    try:
        out, png = tmp_path / "out.flac", tmp_path / "out.png"
        info = client.convert_file(f"{first.url},{standby.url}", DEMO_CLIP, out, None, "hifi", start=1.5,
                                   duration=6.0, spectrogram_path=png, on_progress=progress, exemplar=exemplar)
    finally:
        first.stop()
    assert killed_at and first.proc.poll() is not None
    assert info.url == standby.url
    # the exemplar, the song and the window were sent again: the result is the user's texture, of that window
    assert (info.texture, info.quality, info.start, info.duration) == ("exemplar", "hifi", 1.5, 6.0)
    assert any(f"carried on with {standby.url}" in w and first.url in w for w in info.warnings)
    assert abs(soundfile.info(out).duration - 6.0) < 0.05 and png.read_bytes()[:4] == b"\x89PNG"
    assert stages.index("uploading", stages.index(killed_at[0])) > 0  # uploaded again after the loss
    assert stages[-1] == "done"


def test_many_files_go_one_after_another_in_one_session_and_a_bad_one_does_not_stop_the_rest(standby, tmp_path):
    exemplar = REPO / "models" / "exemplars" / "laser.flac"
    before = standby.log()
    files = [(DEMO_CLIP, tmp_path / "a.flac", None), (REPO / "README.md", tmp_path / "b.wav", None),
             (DEMO_CLIP, tmp_path / "c.wav", tmp_path / "c.png")]
    seen = []
    out = client.convert_files(standby.url, files, None, "lofi", duration=None, exemplar=exemplar,
                               strength=0.5, on_progress=lambda i, stage, fraction: seen.append((i, stage)))
    assert isinstance(out[1], client.ServerError) and out[1].code == "not_audio" and "README.md" in out[1].message
    for info, (_, path, _) in zip((out[0], out[2]), (files[0], files[2])):
        # duration None: the whole track, in stereo, at the strength asked
        assert (info.texture, info.start, info.duration, info.channels, info.strength) == ("exemplar", 0.0, 28.0, 2, 0.5)
        assert soundfile.info(path).channels == 2 and abs(soundfile.info(path).duration - 28.0) < 0.05
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "b.wav").exists()
    log = standby.log()[len(before):]
    assert log.count("hello from 'musicoder-cli'") == 1 and log.count("exemplar 'laser.flac'") == 1  # one session
    assert [i for i, stage in seen if stage == "done"] == [0, 2] and ("downloading" in {s for _, s in seen})
