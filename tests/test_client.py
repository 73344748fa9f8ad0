"""The client library without a server: what fails before connecting, and how."""
from __future__ import annotations

import socket

import pytest

import client
from musicoder.errors import InputError

from .conftest import DEMO_CLIP


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_one_line_connection_failed(tmp_path):
    url = f"ws://127.0.0.1:{_closed_port()}"
    with pytest.raises(client.ConnectionFailed) as e:
        client.convert_file(url, DEMO_CLIP, tmp_path / "x.wav", "laser", timeout=3)
    assert "\n" not in str(e.value) and url in str(e.value) and "refused" in str(e.value)


def test_bad_url_is_connection_failed(tmp_path):
    with pytest.raises(client.ConnectionFailed):
        client.convert_file("http://127.0.0.1:1", DEMO_CLIP, tmp_path / "x.wav", "laser", timeout=3)


@pytest.mark.parametrize("out, source, code", [("x.aiff", DEMO_CLIP, "bad_format"),
                                                ("x.wav", "/no/such/song.mp3", "not_found")])
def test_local_input_errors_come_before_connecting(tmp_path, out, source, code):
    with pytest.raises(InputError) as e:
        client.convert_file(f"ws://127.0.0.1:{_closed_port()}", source, tmp_path / out, "laser")
    assert e.value.code == code
