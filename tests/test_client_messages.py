"""The client handles every message the server may send: each type of
protocol.SERVER_MESSAGES, with real field values, goes through the client's own
handling of an incoming frame (the one its reader runs) to the request or job waiting
for it, with the payloads it announces; none falls to the branch for messages the
client does not know. A type added to the protocol fails here until the client
handles it (and bench/fuzz_protocol.SAMPLES, which tests/test_protocol.py keeps
complete, has one of it)."""
from __future__ import annotations

import asyncio
import dataclasses

import pytest

import client
import protocol
from bench.fuzz_protocol import SAMPLES  # a valid message of every type, shared with the fuzzer

SERVER_SAMPLES = [m for m in SAMPLES if m.SENDER == "server"]

# the binary payloads a message announces: (kind, what ref is, bytes), from its own fields
PAYLOADS = {
    protocol.Track: lambda m: [(protocol.Kind.PEAKS, m.re, 8 * m.peaks)],
    protocol.Exemplar: lambda m: [(protocol.Kind.PEAKS, m.re, 8 * m.peaks)],
    protocol.Window: lambda m: [(protocol.Kind.PEAKS, m.re, 8 * m.peaks)],
    protocol.PreviewAudio: lambda m: [(protocol.Kind.PREVIEW, m.re, m.bytes)],
    protocol.Result: lambda m: [(protocol.Kind.AUDIO, m.job, m.audio_bytes),
                                (protocol.Kind.SPECTROGRAM, m.job, m.spectrogram_bytes),
                                (protocol.Kind.RESULT_PEAKS, m.job, 8 * m.peaks)],
}


def test_there_is_a_sample_of_every_server_message():
    assert {type(m) for m in SERVER_SAMPLES} == set(protocol.SERVER_MESSAGES.values())


def _waiting_client() -> tuple[client.Client, asyncio.Queue, asyncio.Queue]:
    """A client (not connected) with a request waiting on every sample's re and a job
    queue for every sample's job, as its requests leave them."""
    c = client.Client("ws://127.0.0.1:1")
    request, job = asyncio.Queue(), asyncio.Queue()
    for m in SERVER_SAMPLES:
        if getattr(m, "re", None) is not None:
            c._waiters[m.re] = request
    for m in SERVER_SAMPLES:
        if getattr(m, "job", None) is not None:
            c._jobs[m.job] = job
    return c, request, job


def _drain(queue: asyncio.Queue) -> list:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


@pytest.mark.parametrize("msg", SERVER_SAMPLES, ids=lambda m: m.TYPE)
def test_the_client_handles_each_server_message(msg):
    shutdowns = []
    c, request, job = _waiting_client()
    c.on_shutdown = shutdowns.append
    c._route(protocol.encode(msg))  # a ProtocolError here: a type the client does not handle
    got = _drain(request) + _drain(job)
    if isinstance(msg, protocol.Shutdown):
        assert (c.shutdown, shutdowns, got) == (msg, [msg], [])
        return
    assert got and all(g == msg for g in got), got  # delivered as sent, and no error in its place
    for kind, ref, size in PAYLOADS.get(type(msg), lambda m: [])(msg):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        for frame in protocol.chunks(kind, ref, data, 4096):
            c._route(frame)
        assert _drain(request) + _drain(job) == [(kind, ref, data)], kind


def test_a_message_the_client_was_not_taught_is_refused_not_dropped(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Novel(protocol.Message):
        TYPE = "novel"
        SENDER = "server"
        FIELDS = {"re": protocol.messages.RE}
        re: int | None

    monkeypatch.setitem(protocol.MESSAGES, "novel", Novel)
    c, request, job = _waiting_client()
    with pytest.raises(protocol.ProtocolError, match="novel is not a message this client handles"):
        c._route('{"type": "novel", "re": 2}')
    assert _drain(request) + _drain(job) == []
