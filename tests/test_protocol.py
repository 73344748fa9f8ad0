"""The sans-I/O protocol: round trips, validation, binary framing, and that
docs/protocol.md and the code list the same messages, kinds and error codes."""
from __future__ import annotations

import json
import re

import pytest

import protocol
from bench.fuzz_protocol import SAMPLES  # a valid message of every type, shared with the fuzzer
from protocol import Kind, ProtocolError

from .conftest import REPO

DOC = (REPO / "docs" / "protocol.md").read_text()


def test_every_message_type_has_a_sample():
    assert {type(m).TYPE for m in SAMPLES} == set(protocol.MESSAGES)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_round_trip(msg):
    text = protocol.encode(msg)
    assert json.loads(text)["type"] == msg.TYPE
    assert protocol.parse_text(text) == msg
    assert protocol.parse_text(text, sender=msg.SENDER) == msg


def test_a_server_message_from_a_client_is_an_unknown_type():
    with pytest.raises(ProtocolError) as e:
        protocol.parse_text(protocol.encode(SAMPLES[-1]), sender="client")
    assert e.value.code == "unknown_type"


@pytest.mark.parametrize("text, code", [
    ("not json", "bad_message"),
    ("[1, 2]", "bad_message"),
    ('{"id": 1}', "bad_message"),
    ('{"type": "nope", "id": 3}', "unknown_type"),
    ('{"type": "hello"}', "bad_message"),
    ('{"type": "hello", "id": 0}', "bad_message"),
    ('{"type": "hello", "id": true}', "bad_message"),
    ('{"type": "hello", "id": 4294967296}', "bad_message"),
    ('{"type": "clip", "id": 1, "start": NaN, "duration": 10}', "bad_message"),
    ('{"type": "clip", "id": 1, "start": Infinity, "duration": 10}', "bad_message"),
    ('{"type": "clip", "id": 1, "start": -1, "duration": 10}', "bad_message"),
    ('{"type": "clip", "id": 1, "start": 0, "duration": 0}', "bad_message"),
    ('{"type": "clip", "id": 1, "start": "0", "duration": 10}', "bad_message"),
    ('{"type": "upload", "id": 1, "name": "a", "size": -5}', "bad_message"),
    ('{"type": "upload", "id": 1, "name": "' + "a" * 300 + '", "size": 5}', "bad_message"),
    ('{"type": "convert", "id": 1, "texture": "laser", "normalize": "yes"}', "bad_message"),
    ("[" * 50000 + "]" * 50000, "too_large"),
    ("[" * 30000, "bad_message"),
    ('"' + "x" * 70000 + '"', "too_large"),
])
def test_malformed_text_is_refused_with_a_code(text, code):
    with pytest.raises(ProtocolError) as e:
        protocol.parse_text(text, sender="client")
    assert e.value.code == code


def test_the_request_id_is_kept_when_a_field_is_bad():
    with pytest.raises(ProtocolError) as e:
        protocol.parse_text('{"type": "convert", "id": 42}', sender="client")
    assert (e.value.code, e.value.re, e.value.request) == ("bad_message", 42, "convert")


def test_defaults_and_unknown_fields():
    msg = protocol.parse_text('{"type": "convert", "id": 1, "texture": "laser", "extra": [1]}')
    assert (msg.quality, msg.format, msg.normalize) == ("standard", "wav", True)


def test_encode_refuses_a_bad_message():
    with pytest.raises(ProtocolError):
        protocol.encode(protocol.Progress(job=1, stage="dancing", fraction=0.5, eta=1.0, position=0))
    with pytest.raises(ProtocolError):
        protocol.encode(protocol.Accepted(re=1, job=1, position=0, eta=float("nan")))


def test_binary_chunks_reassemble():
    data = bytes(range(256)) * 3000  # 768000 bytes: 3 chunks of 256 KiB
    frames = list(protocol.chunks(Kind.AUDIO, 7, data))
    assert len(frames) == 3 and all(len(f) <= protocol.HEADER.size + protocol.CHUNK_BYTES for f in frames)
    r = protocol.Reassembler()
    r.expect(Kind.AUDIO, 7, len(data))
    out = [r.feed(protocol.parse_binary(f)) for f in frames]
    assert out[:2] == [None, None] and out[2] == (Kind.AUDIO, 7, data)
    empty = list(protocol.chunks(Kind.PREVIEW, 1, b""))
    assert len(empty) == 1 and protocol.parse_binary(empty[0]).last


def test_header_layout():
    frame = protocol.encode_chunk(Kind.UPLOAD, 0x01020304, 5, True, b"xyz")
    assert frame == b"MC\x01\x01\x01\x02\x03\x04\x00\x00\x00\x05\x00\x01xyz"


@pytest.mark.parametrize("data", [b"", b"MC", b"XX\x01\x01" + bytes(10), b"MC\x02\x01" + bytes(10),
                                  b"MC\x01\x63" + bytes(10), b"MC\x01\x01" + bytes(8) + b"\x00\x02"])
def test_bad_binary_headers(data):
    with pytest.raises(ProtocolError) as e:
        protocol.parse_binary(data)
    assert e.value.code == "bad_binary"


def test_reassembler_refuses_strays_gaps_and_overruns():
    r = protocol.Reassembler()
    with pytest.raises(ProtocolError):
        r.feed(protocol.parse_binary(protocol.encode_chunk(Kind.AUDIO, 1, 0, True, b"x")))
    r.expect(Kind.AUDIO, 1, 2)
    with pytest.raises(ProtocolError):
        r.feed(protocol.parse_binary(protocol.encode_chunk(Kind.AUDIO, 1, 1, True, b"x")))
    r.expect(Kind.AUDIO, 1, 2)
    with pytest.raises(ProtocolError):
        r.feed(protocol.parse_binary(protocol.encode_chunk(Kind.AUDIO, 1, 0, True, b"xyz")))


def test_peaks_round_trip():
    lo, hi = [-0.5, -0.25, 0.0], [0.5, 0.25, 1.0]
    assert protocol.peaks_from_bytes(protocol.peaks_to_bytes([lo, hi]), 3) == (lo, hi)
    with pytest.raises(ProtocolError):
        protocol.peaks_from_bytes(b"abc", 3)


# ---- docs/protocol.md and the code agree ---------------------------------------------------

def _doc_section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", DOC, re.S | re.M)
    assert m, f"docs/protocol.md has no '## {title}' section"
    return m.group(1)


def test_doc_lists_every_message_with_its_fields():
    documented = set(re.findall(r"^### `(\w+)`", DOC, re.M))
    assert documented == set(protocol.MESSAGES)
    for name, cls in protocol.MESSAGES.items():
        section = re.search(rf"^### `{name}`\n(.*?)(?=^##)", DOC, re.S | re.M).group(1)
        for field in cls.FIELDS:
            assert f"`{field}`" in section, f"docs/protocol.md: {name}.{field} is not described"


def test_doc_lists_every_error_code():
    documented = set(re.findall(r"^\| `(\w+)` \|", _doc_section("Error codes"), re.M))
    assert documented == set(protocol.ERROR_CODES)


def test_doc_lists_every_binary_kind():
    section = _doc_section("Binary frames")
    for kind in Kind:
        assert re.search(rf"\| {kind.value} \| `{kind.name}` \|", section), kind.name
