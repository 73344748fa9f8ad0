"""Binary frames: a 14-byte header, then a chunk of payload.

    offset size  field
    0      2     magic  b"MC"
    2      1     version (PROTOCOL_VERSION)
    3      1     kind   (Kind: what the payload is)
    4      4     ref    u32: the id of the message the payload belongs to
                        (an upload id, a request id, a job id: see Kind)
    8      4     seq    u32: chunk number, 0, 1, 2... in order
    12     2     flags  u16: bit 0 = LAST (the payload's final chunk); other bits 0
    14     ...   payload bytes (at most the chunk size the server announced)

All integers big-endian. A payload of any size goes as one or more chunks; the JSON
message that announces it always comes first and gives its size in bytes.
"""
from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Iterator

from .errors import ProtocolError

MAGIC = b"MC"
VERSION = 1
HEADER = struct.Struct(">2sBBIIH")
FLAG_LAST = 0x1
CHUNK_BYTES = 256 * 1024  # payload bytes per frame that senders use by default
MAX_CHUNK_BYTES = 1024 * 1024  # the most one frame may carry
MAX_U32 = 2**32 - 1


class Kind(enum.IntEnum):
    UPLOAD = 1  # client → server: the uploaded file; ref = the upload message's id
    PEAKS = 2  # server → client: window peaks; ref = the id of the upload or clip request
    AUDIO = 3  # server → client: the converted audio; ref = job id
    SPECTROGRAM = 4  # server → client: the result's spectrogram PNG; ref = job id
    RESULT_PEAKS = 5  # server → client: the result's waveform peaks; ref = job id
    PREVIEW = 6  # server → client: a texture's exemplar audio; ref = the preview request id


KINDS = {k.value: k for k in Kind}


@dataclasses.dataclass(frozen=True)
class BinaryFrame:
    kind: Kind
    ref: int
    seq: int
    last: bool
    payload: bytes


def _kind(kind) -> Kind:
    if not isinstance(kind, int) or isinstance(kind, bool) or kind not in KINDS:
        raise ProtocolError("bad_binary", f"unknown binary kind {repr(kind)[:40]}")
    return KINDS[kind]


def _u32(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_U32:
        raise ProtocolError("bad_binary", f"{name} must be an integer in 0..2**32-1")
    return value


def encode_chunk(kind: Kind | int, ref: int, seq: int, last: bool, payload: bytes) -> bytes:
    """One binary frame. Raises ProtocolError for out-of-range fields."""
    kind, ref, seq = _kind(kind), _u32("ref", ref), _u32("seq", seq)
    if not isinstance(payload, (bytes, bytearray, memoryview)) or len(payload) > MAX_CHUNK_BYTES:
        raise ProtocolError("bad_binary", f"payload must be bytes, at most {MAX_CHUNK_BYTES}")
    return HEADER.pack(MAGIC, VERSION, int(kind), ref, seq, FLAG_LAST if last else 0) + bytes(payload)


def chunks(kind: Kind | int, ref: int, data: bytes, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``data`` as frames of at most ``chunk_bytes`` payload; empty data is one empty LAST frame."""
    if not isinstance(chunk_bytes, int) or not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise ProtocolError("bad_binary", f"chunk size must be 1..{MAX_CHUNK_BYTES}")
    view = memoryview(data)
    count = max(1, -(-len(view) // chunk_bytes))
    for seq in range(count):
        yield encode_chunk(kind, ref, seq, seq == count - 1, view[seq * chunk_bytes:(seq + 1) * chunk_bytes])


def parse_binary(data: bytes, max_payload: int = MAX_CHUNK_BYTES) -> BinaryFrame:
    """A binary frame's header and payload. Raises ProtocolError("bad_binary" or "too_large")."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("bad_binary", "a binary frame must be bytes")
    data = bytes(data)
    if len(data) < HEADER.size:
        raise ProtocolError("bad_binary", f"a binary frame has a {HEADER.size}-byte header; got {len(data)} bytes")
    magic, version, kind, ref, seq, flags = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError("bad_binary", "a binary frame must start with b'MC'")
    if version != VERSION:
        raise ProtocolError("bad_binary", f"binary frame version {version}; this protocol is {VERSION}")
    if kind not in KINDS:
        raise ProtocolError("bad_binary", f"unknown binary kind {kind}")
    if flags & ~FLAG_LAST:
        raise ProtocolError("bad_binary", "unknown flags in a binary frame")
    if len(data) - HEADER.size > max_payload:
        raise ProtocolError("too_large", f"a binary frame carries at most {max_payload} bytes")
    return BinaryFrame(KINDS[kind], ref, seq, bool(flags & FLAG_LAST), data[HEADER.size:])


class Reassembler:
    """Collects chunked payloads: :meth:`feed` a frame, get ``(kind, ref, bytes)`` when its
    LAST chunk arrives, else None. ``expect(kind, ref, size)`` first, from the announcing
    JSON message; frames nobody expects, out of order or past the size raise ProtocolError."""

    def __init__(self, max_bytes: int = 2**31):
        self.max_bytes = max_bytes
        self._parts: dict[tuple[int, int], tuple[int, list[bytes], int]] = {}

    def expect(self, kind: Kind | int, ref: int, size: int) -> None:
        kind, ref = _kind(kind), _u32("ref", ref)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= self.max_bytes:
            raise ProtocolError("too_large", f"a payload may have 0..{self.max_bytes} bytes")
        self._parts[(int(kind), ref)] = (size, [], 0)

    def expecting(self, kind: Kind | int, ref: int) -> bool:
        return (int(kind), ref) in self._parts

    def feed(self, frame: BinaryFrame) -> tuple[Kind, int, bytes] | None:
        key = (int(frame.kind), frame.ref)
        if key not in self._parts:
            raise ProtocolError("bad_binary", f"unexpected {frame.kind.name} frame for ref {frame.ref}")
        size, parts, got = self._parts[key]
        if frame.seq != len(parts):
            del self._parts[key]
            raise ProtocolError("bad_binary", f"chunk {frame.seq} of {frame.kind.name} {frame.ref} out of order")
        got += len(frame.payload)
        if got > size:
            del self._parts[key]
            raise ProtocolError("bad_binary", f"{frame.kind.name} {frame.ref}: more than the {size} bytes announced")
        parts.append(frame.payload)
        if not frame.last:
            self._parts[key] = (size, parts, got)
            return None
        del self._parts[key]
        if got != size:
            raise ProtocolError("bad_binary", f"{frame.kind.name} {frame.ref}: {got} bytes of the {size} announced")
        return frame.kind, frame.ref, b"".join(parts)
