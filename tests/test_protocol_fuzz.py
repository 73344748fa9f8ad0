"""The protocol decoder under hypothesis: every public parse/decode entry point of
``protocol`` raises nothing but ProtocolError, each error fits in an error frame, and
every message accepted encodes back to itself. The checks and inputs are those of
``python -m bench.fuzz_protocol`` (100,000 cases); here a few thousand. The examples
pinned below are the failures the fuzzer found, fixed in protocol/."""
from __future__ import annotations

import pytest
from hypothesis import example, given, settings

import protocol
from bench import fuzz_protocol as fuzz
from bench.fuzz_protocol import Case


def test_the_samples_are_valid_messages_of_every_type():
    assert {type(m).TYPE for m in fuzz.SAMPLES} == set(protocol.MESSAGES)
    for msg in fuzz.SAMPLES:
        fuzz.decode_text(protocol.encode(msg), msg.SENDER)


@settings(max_examples=1500, deadline=None)
@given(fuzz.TEXT_CASES)
@example(Case(fuzz.decode_text, ('{"type":"clip","id":1,"start":1%s,"duration":5}' % ("0" * 400), "client")))
@example(Case(fuzz.decode_text, ('{"type":"hello","id":1,"version":1,"client":"\\ud800"}', "client")))
@example(Case(fuzz.decode_text, ('{"type":"clip","id":5,"start":NaN,"duration":5}', "client")))
def test_text_frames(case):
    case.run()


@settings(max_examples=1000, deadline=None)
@given(fuzz.BINARY_CASES)
@example(Case(fuzz.reassemble, ([("x", 1, 10)],)))
@example(Case(fuzz.reassemble, ([(float("inf"), 1, 10)],)))
@example(Case(fuzz.reassemble, ([(3, [1], 10)],)))
def test_binary_frames(case):
    case.run()


@settings(max_examples=500, deadline=None)
@given(fuzz.OTHER_CASES)
@example(Case(fuzz.decode_peaks, (bytes(4), 0.5)))
@example(Case(fuzz.decode_peaks, (b"", None)))
@example(Case(fuzz.decode_peaks, (b"", -10**2000)))
def test_peaks_and_any_value(case):
    case.run()


def test_a_check_fails_on_an_escaping_exception(monkeypatch):
    """The checks can fail: a decoder that raises anything else is caught."""
    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(protocol, "parse_text", broken)
    with pytest.raises(KeyError):
        fuzz.decode_text("{}", None)
    cases, failures = fuzz.fuzz(50, seed_value=1)
    assert cases == 50 and any(f.startswith("KeyError") for f in failures)
