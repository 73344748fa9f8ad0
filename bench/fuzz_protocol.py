"""Fuzz the protocol decoder: every public parse/decode entry point of ``protocol``
under hypothesis-generated input. Only ProtocolError may escape, every ProtocolError
must fit in the error frame the server answers with (and keep the request's id where
JSON can read one), and every message accepted must encode back to the same message.

    python -m bench.fuzz_protocol [--examples 100000] [--seed N]

Inputs: arbitrary text and bytes; JSON built from a real message of every type
(:data:`SAMPLES`) with fields replaced by arbitrary or edge values (NaN, infinities,
negative, huge, wrong types, lone surrogates), removed, added, or a type swapped;
binary frames with valid and invalid headers, alone and as sequences fed to a
:class:`protocol.Reassembler`; peaks payloads with arbitrary column counts; values that
are neither text nor bytes. Prints cases, seconds, cases/s and each distinct failure
(progress on stderr every 10,000 cases); exits 1 on any failure.
``tests/test_protocol_fuzz.py`` runs the same checks with fewer examples. Needs
hypothesis (the ``test`` extra).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import struct
import sys
import time
from collections.abc import Callable

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import protocol
from protocol import HEADER, MAGIC, ProtocolError

SAMPLES = [  # one valid message of every type
    protocol.Hello(id=1, version=1, client="test"),
    protocol.Upload(id=2, name="song.mp3", size=1234),
    protocol.Upload(id=12, name="brook.wav", size=4321, purpose="exemplar"),
    protocol.UploadEnd(id=3, upload=2),
    protocol.Clip(id=4, start=1.5, duration=10.0),
    protocol.Preview(id=5, texture="laser"),
    protocol.Convert(id=6, texture="water", quality="hifi", format="flac", normalize=False),
    protocol.Cancel(id=7, job=9),
    protocol.Welcome(re=1, version=1, server="s", session="abc",
                     limits={"upload_bytes": 1, "track_seconds": 2.0, "window_seconds": 3.0, "message_bytes": 4,
                             "chunk_bytes": 5, "idle_seconds": 6.0, "jobs_per_session": 7, "queue": 8},
                     textures=[{"name": "laser", "label": "Laser", "description": "d"}],
                     qualities=[{"name": "lofi", "label": "LOFI", "expected_seconds": 1.0}],
                     formats=["wav"], default_window=10.0),
    protocol.UploadProgress(re=2, received=10, size=1234),
    protocol.Exemplar(re=12, name="brook.wav", duration=45.0, used=30.0, peaks=800, warnings=["cut to 30 s"]),
    protocol.Track(re=2, name="song.mp3", duration=200.0, sample_rate=48000, channels=2, codec="mp3",
                   window={"start": 0.0, "duration": 10.0}, peaks=800, warnings=[]),
    protocol.Window(re=4, start=1.5, duration=10.0, peaks=800, warnings=["silent"]),
    protocol.PreviewAudio(re=5, texture="laser", format="flac", bytes=100),
    protocol.Accepted(re=6, job=9, position=0, eta=1.5),
    protocol.Progress(job=9, stage="reconstructing", fraction=0.5, eta=0.7, position=0),
    protocol.Result(re=6, job=9, texture="water", quality="hifi", format="flac", duration=10.0, audio_bytes=5,
                    spectrogram_bytes=6, peaks=800, timings={"queued": 0.0, "analysing": 0.1}),
    protocol.Cancelled(re=7, job=9),
    protocol.Error(re=6, request="convert", code="busy", message="full", job=9, queue=3),
    protocol.Shutdown(reason="stopping", grace=10.0),
]

EDGE_VALUES = [float("nan"), float("inf"), float("-inf"), -1, -0.5, -0.0, 0, 1, 0.5, 2**31, 2**32 - 1, 2**32,
               2**53 + 1, 2**64, 10**400, -10**400, 1e308, 5e-324, True, False, None, "", "\ud800", "x" * 1001, [], {}]


# ---- the checks: each raises on a violation --------------------------------------------------

def _answerable(err: ProtocolError) -> None:
    """The error frame the server would send for ``err`` must itself encode."""
    assert err.code in protocol.ERROR_CODES, f"unknown error code {err.code!r}"
    frame = protocol.encode(protocol.Error(re=err.re, request=err.request, code=err.code, message=err.message))
    frame.encode("utf-8")  # a WebSocket text frame is UTF-8


def _request_id(text: str) -> int | None:
    """The id of the request in ``text``, where JSON can read one: its error must carry it."""
    try:
        rid = json.loads(text).get("id")
    except (ValueError, RecursionError, AttributeError):
        return None
    return rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= protocol.messages.MAX_ID else None


def decode_text(text, sender: str | None) -> None:
    try:
        msg = protocol.parse_text(text, sender=sender)
    except ProtocolError as err:
        _answerable(err)
        if err.code != "too_large":  # (too large is refused unread)
            assert err.re == _request_id(text), f"the error lost the request's id: {err.message}"
        return
    again = protocol.encode(msg)  # what was accepted goes back out, as a sendable frame, unchanged
    again.encode("utf-8")
    assert protocol.parse_text(again, sender=sender) == msg, f"round trip changed {msg}"


def decode_binary(data, max_payload: int) -> None:
    try:
        frame = protocol.parse_binary(data, max_payload=max_payload)
    except ProtocolError as err:
        return _answerable(err)
    assert len(frame.payload) <= max_payload and frame.payload == bytes(data)[HEADER.size:]
    again = protocol.encode_chunk(frame.kind, frame.ref, frame.seq, frame.last, frame.payload)
    assert again == bytes(data), "a frame does not encode back to its bytes"


def decode_any(data) -> None:
    try:
        protocol.parse(data)
    except ProtocolError as err:
        _answerable(err)


def decode_peaks(data: bytes, columns) -> None:
    try:
        lo, hi = protocol.peaks_from_bytes(data, columns)
    except ProtocolError as err:
        return _answerable(err)
    assert len(lo) == len(hi) == columns


def reassemble(steps: list) -> None:
    """A sequence of expect(kind, ref, size) and frames: the client's side of payloads."""
    r = protocol.Reassembler(max_bytes=1000)
    for step in steps:
        try:
            if isinstance(step, bytes):
                r.feed(protocol.parse_binary(step))
            else:
                r.expect(*step)
        except ProtocolError as err:
            _answerable(err)


# ---- the inputs -------------------------------------------------------------------------------
#
# Hypothesis spends its time per draw, so each input is built from one or two draws of
# bytes: a structured value is read out of them by :class:`Choices`, not drawn piece by
# piece (twice the cases per second here; hypothesis still mutates and shrinks the bytes).

class Choices:
    """Choices read from a byte string, as a fuzzer's data provider does; past its end
    every choice is the first option."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        self.at += n
        return self.data[self.at - n:self.at]

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "little")

    def pick(self, options):
        return options[self.number(1) % len(options)]

    def text(self) -> str:
        """Latin-1 (ASCII and control characters) or UTF-16 (any character, lone surrogates too)."""
        raw = self.take(self.number(1) % 24)
        if self.number(1) % 2:
            return raw.decode("latin-1")
        return raw[:len(raw) // 2 * 2].decode("utf-16-le", "surrogatepass")

    def value(self, depth: int = 0):
        """A JSON-ish value: an edge value, an integer, a float (NaN, infinities and
        subnormals among them), a text, or a list or object of values."""
        kind = self.number(1) % (7 if depth < 3 else 5)
        if kind == 0:
            return self.pick(EDGE_VALUES)
        if kind == 1:
            return self.number(1) - 128
        if kind == 2:
            return int.from_bytes(self.take(9), "little", signed=True)
        if kind == 3:
            return struct.unpack("<d", self.take(8).ljust(8, b"\0"))[0]
        if kind == 4:
            return self.text()
        if kind == 5:
            return [self.value(depth + 1) for _ in range(self.number(1) % 4)]
        return {self.pick(_KEYS) if self.number(1) % 2 else self.text(): self.value(depth + 1)
                for _ in range(self.number(1) % 4)}


_KEYS = sorted({"type", "id", "re"} | {name for cls in protocol.MESSAGES.values() for name in cls.FIELDS})


def _slots(obj) -> list[tuple]:
    """Every (container, key) of a JSON object, nested ones included."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj)
    for key, value in items:
        out.append((obj, key))
        if isinstance(value, (dict, list)) and value:
            out += _slots(value)
    return out


def _mutated(data: bytes) -> str:
    """A real message of some type, 1 to 3 of its fields (nested ones too) given an edge
    value or any value, removed, added, or its type swapped; as the text of a frame, now
    and then damaged."""
    c = Choices(data)
    obj = copy.deepcopy(c.pick(SAMPLES).to_dict())
    for _ in range(1 + c.number(1) % 3):
        container, key = c.pick(_slots(obj))
        how = c.pick(["edge", "edge", "value", "delete", "add", "type"])
        if how == "edge":
            container[key] = c.pick(EDGE_VALUES)
        elif how == "value":
            container[key] = c.value()
        elif how == "delete":
            del container[key]
        elif how == "add" and isinstance(container, dict):
            container[c.pick(_KEYS) if c.number(1) % 2 else c.text()] = c.value()
        elif how == "type":
            obj["type"] = c.pick(sorted(protocol.MESSAGES)) if c.number(1) % 4 else c.text()
        if not obj:
            break
    text = json.dumps(obj, ensure_ascii=bool(c.number(1) % 2))  # NaN, Infinity as JavaScript writes them
    if c.number(1) % 10 == 0:
        cut = c.number(2) % (len(text) + 1)
        text = text[:cut] + c.text() + text[cut + c.number(1) % 4:]
    return text


def _from(build: Callable, max_size: int = 120) -> st.SearchStrategy:
    return st.binary(max_size=max_size).map(build)


_SOUP = '{}[]":,0123456789.eE-+ \\utrfalsnNIiy"type"id'
_HUGE = ["1" * 5000, "[" * 3000 + "]" * 3000, '{"a":' * 2000 + "1" + "}" * 2000,
         '{"type":"hello","id":1,"client":"' + "x" * 70000 + '"}']
texts = st.one_of(_from(lambda b: Choices(b).text()), _from(lambda b: "".join(_SOUP[x % len(_SOUP)] for x in b)),
                  _from(lambda b: json.dumps(Choices(b).value(), ensure_ascii=False)), _from(_mutated),
                  _from(_mutated), st.sampled_from(_HUGE))
values = _from(lambda b: Choices(b).value())


def _frame(raw: bytes, valid: int, small: bool = False) -> bytes:
    """Random bytes made into a binary frame: each of bits 0-3 of ``valid`` makes one header
    field valid (magic, version, kind, flags); with bits 4 and 5 clear the frame is cut
    short. ``small`` keeps ref and seq in 0..3, so that chunks meet their expect()."""
    data = bytearray(raw.ljust(HEADER.size, b"\0"))
    fixes = [(0, MAGIC), (2, bytes([1])), (3, bytes([1 + data[3] % 6])), (12, bytes([0, data[13] & 1]))]
    for bit, (at, value) in enumerate(fixes):
        if valid >> bit & 1:
            data[at:at + len(value)] = value
    if small:
        data[4:12] = bytes([0, 0, 0, data[7] % 4, 0, 0, 0, data[11] % 4])
    return bytes(data) if valid >> 4 else bytes(data[:valid % len(data)])


frames = st.builds(_frame, st.binary(min_size=HEADER.size, max_size=HEADER.size + 64),
                   st.integers(0, 63) | st.just(63))


def _steps(data: bytes) -> list:
    """Up to 8 steps for a Reassembler: frames (most headers valid, small refs and seqs)
    and expect(kind, ref, size) calls with any arguments."""
    c = Choices(data)

    def arg(usual: int):  # mostly a plausible argument, else any value
        return usual if c.number(1) % 4 else c.value()

    steps = []
    for _ in range(c.number(1) % 9):
        if c.number(1) % 2:
            valid = 63 if c.number(1) % 2 else c.number(1)
            steps.append(_frame(c.take(HEADER.size + c.number(1) % 8), valid, small=True))
        else:
            steps.append((arg(c.number(1) % 9), arg(c.number(1) % 4), arg(c.number(2) % 1200)))
    return steps


@dataclasses.dataclass(frozen=True)
class Case:
    check: Callable
    args: tuple

    def run(self) -> None:
        self.check(*self.args)

    def __repr__(self) -> str:
        return f"{self.check.__name__}{self.args!r}"[:300]


def _case(check: Callable, *args) -> st.SearchStrategy:
    return st.tuples(*args).map(lambda a: Case(check, a))


_senders = st.sampled_from([None, "client", "server"])
TEXT_CASES = _case(decode_text, texts, _senders)
BINARY_CASES = st.one_of(_case(decode_binary, frames | st.binary(max_size=40), st.sampled_from([1024**2, 16, 0])),
                         _case(reassemble, _from(_steps, 300)))
OTHER_CASES = st.one_of(_case(decode_any, st.binary(max_size=40) | texts | values),
                        _case(decode_peaks, st.binary(max_size=48), st.integers(-2, 8) | values))
CASES = st.one_of(TEXT_CASES, TEXT_CASES, BINARY_CASES, OTHER_CASES)


def fuzz(examples: int, seed_value: int | None = None) -> tuple[int, dict[str, str]]:
    """Run ``examples`` generated cases; returns (cases run, {exception and where: its first message
    and input})."""
    failures: dict[str, str] = {}
    count = [0]
    t0 = time.perf_counter()

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(CASES)
    def one(case: Case) -> None:
        count[0] += 1
        if count[0] % 10_000 == 0:
            print(f"{count[0]} cases, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        try:
            case.run()
        except Exception as exc:  # anything escaping a check is a failure: record it, go on
            tb = exc.__traceback__
            while tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"
            failures.setdefault(f"{type(exc).__name__} at {where}", f"{str(exc)[:150]}\n     input: {case!r}")

    if seed_value is not None:
        one = seed(seed_value)(one)
    one()
    return count[0], failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.fuzz_protocol", description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=100_000, help="generated cases (default 100000)")
    ap.add_argument("--seed", type=int, help="hypothesis seed, to repeat a run")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    cases, failures = fuzz(a.examples, a.seed)
    seconds = time.perf_counter() - t0
    print(f"{cases} cases in {seconds:.1f} s ({cases / seconds:.0f} cases/s), {len(failures)} failure(s)")
    for where, what in failures.items():
        print(f"FAIL {where}: {what}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
