"""Control messages: JSON objects in text frames, ``{"type": ..., ...}``.

Each message type is a frozen dataclass; its ``FIELDS`` say how every field is checked
(type, range, finiteness, length). :func:`parse_text` checks all of it and
:func:`encode` checks it again on the way out, so neither side ever sees a malformed
message. Unknown fields are ignored (room for minor additions); unknown types are
refused with ``unknown_type``. Units: seconds, bytes, Hz, fractions 0..1.
"""
from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Callable
from typing import Any, ClassVar

from .errors import ProtocolError

PROTOCOL_VERSION = 3
# 2 added a user's own exemplar; 3 the strength, the whole track and stereo. Older clients
# are served as before (mono, the window, the texture at full strength).
SUPPORTED_VERSIONS = (1, 2, 3)
EXEMPLAR = "exemplar"  # convert's texture for the session's own exemplar (version 2)
UPLOAD_PURPOSES = ("track", EXEMPLAR)
MAX_TEXT_BYTES = 64 * 1024  # the largest control message either side accepts
MAX_ID = 2**32 - 1
STAGES = ("queued", "analysing", "transferring", "reconstructing", "encoding")

Validator = Callable[[Any, str], Any]


def _fail(where: str, what: str) -> ProtocolError:
    return ProtocolError("bad_message", f"{where} must be {what}")


def Int(lo: int = 0, hi: int = 2**53) -> Validator:
    def check(v: Any, where: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise _fail(where, f"an integer in {lo}..{hi}")
        return v
    return check


def Num(lo: float = 0.0, hi: float = 1e12, *, positive: bool = False) -> Validator:
    def check(v: Any, where: str) -> float:
        # the range first: math.isfinite overflows on an integer of 400 digits
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi \
                or not math.isfinite(v) or (positive and v <= 0):
            raise _fail(where, f"a finite number in {lo:g}..{hi:g}" + (", above 0" if positive else ""))
        return float(v)
    return check


def Str(max_len: int = 256, choices: tuple[str, ...] | None = None) -> Validator:
    def check(v: Any, where: str) -> str:
        if not isinstance(v, str) or len(v) > max_len:
            raise _fail(where, f"a string of at most {max_len} characters")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a JSON escape can make one): no text frame can carry it
            raise _fail(where, "valid Unicode text") from None
        if choices is not None and v not in choices:
            raise _fail(where, f"one of {', '.join(choices)}")
        return v
    return check


def Bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _fail(where, "true or false")
    return v


def Opt(inner: Validator) -> Validator:
    def check(v: Any, where: str) -> Any:
        return None if v is None else inner(v, where)
    return check


def ListOf(inner: Validator, max_items: int = 64) -> Validator:
    def check(v: Any, where: str) -> list:
        if not isinstance(v, list) or len(v) > max_items:
            raise _fail(where, f"a list of at most {max_items} items")
        return [inner(x, f"{where}[{i}]") for i, x in enumerate(v)]
    return check


def Obj(fields: dict[str, Validator], optional: tuple[str, ...] = ()) -> Validator:
    def check(v: Any, where: str) -> dict:
        if not isinstance(v, dict):
            raise _fail(where, "an object")
        out = {}
        for name, inner in fields.items():
            if name not in v:
                if name in optional:
                    continue
                raise ProtocolError("bad_message", f"{where}.{name} is missing")
            out[name] = inner(v[name], f"{where}.{name}")
        return out
    return check


def MapOf(inner: Validator, max_items: int = 16) -> Validator:
    def check(v: Any, where: str) -> dict:
        if not isinstance(v, dict) or len(v) > max_items:
            raise _fail(where, f"an object of at most {max_items} entries")
        return {Str(64)(k, f"{where} key"): inner(x, f"{where}.{k}") for k, x in v.items()}
    return check


ID = Int(1, MAX_ID)  # request ids: chosen by the client, echoed by the server as "re"
RE = Opt(Int(0, MAX_ID))  # the request a server message answers (null: none)
SECONDS = Num(0.0, 1e7)
BYTES = Int(0, 2**48)
MAX_COLUMNS = 10000  # of a peaks payload
COLUMNS = Int(1, MAX_COLUMNS)
WINDOW = Obj({"start": SECONDS, "duration": SECONDS})
WARNINGS = ListOf(Str(500), 16)


@dataclasses.dataclass(frozen=True)
class Message:
    """Base of every message. ``TYPE`` is its "type" field; ``FIELDS`` check the rest;
    ``SENDER`` is "client" or "server"."""

    TYPE: ClassVar[str] = ""
    SENDER: ClassVar[str] = ""
    FIELDS: ClassVar[dict[str, Validator]] = {}

    def to_dict(self) -> dict:
        out = {"type": self.TYPE}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        return out


# ---- client → server -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Hello(Message):
    TYPE = "hello"
    SENDER = "client"
    FIELDS = {"id": ID, "version": Int(0, 65535), "client": Str(100)}
    id: int
    version: int = PROTOCOL_VERSION
    client: str = ""


@dataclasses.dataclass(frozen=True)
class Upload(Message):
    TYPE = "upload"
    SENDER = "client"
    FIELDS = {"id": ID, "name": Str(255), "size": BYTES, "purpose": Str(16, UPLOAD_PURPOSES)}
    id: int
    name: str  # for display only; never a path
    size: int  # bytes that will follow as UPLOAD frames with ref = id
    purpose: str = "track"  # or "exemplar": the session's own texture (version 2)


@dataclasses.dataclass(frozen=True)
class UploadEnd(Message):
    TYPE = "upload_end"
    SENDER = "client"
    FIELDS = {"id": ID, "upload": ID}
    id: int
    upload: int  # the upload message's id


@dataclasses.dataclass(frozen=True)
class Clip(Message):
    TYPE = "clip"
    SENDER = "client"
    FIELDS = {"id": ID, "start": SECONDS, "duration": Num(0.0, 1e7, positive=True)}
    id: int
    start: float
    duration: float


@dataclasses.dataclass(frozen=True)
class Preview(Message):
    TYPE = "preview"
    SENDER = "client"
    FIELDS = {"id": ID, "texture": Str(64)}
    id: int
    texture: str


@dataclasses.dataclass(frozen=True)
class Convert(Message):
    TYPE = "convert"
    SENDER = "client"
    FIELDS = {"id": ID, "texture": Str(64), "quality": Str(64), "format": Str(16), "normalize": Bool,
              "strength": Num(0.0, 1.0), "whole": Bool}
    id: int
    texture: str  # a built-in texture's name, or EXEMPLAR: the session's own exemplar
    quality: str = "standard"
    format: str = "wav"
    normalize: bool = True
    strength: float = 1.0  # version 3: 0 the music unchanged .. 1 the texture as tuned
    whole: bool = False  # version 3: the whole track (up to limits.window_seconds), not the window


@dataclasses.dataclass(frozen=True)
class Cancel(Message):
    TYPE = "cancel"
    SENDER = "client"
    FIELDS = {"id": ID, "job": ID}
    id: int
    job: int


# ---- server → client -------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Welcome(Message):
    TYPE = "welcome"
    SENDER = "server"
    FIELDS = {
        "re": RE, "version": Int(0, 65535), "server": Str(64), "session": Str(64),
        "limits": Obj({"upload_bytes": BYTES, "track_seconds": SECONDS, "window_seconds": SECONDS,
                       "message_bytes": BYTES, "chunk_bytes": BYTES, "idle_seconds": SECONDS,
                       "jobs_per_session": Int(0, 10000), "queue": Int(0, 100000),
                       "exemplar_min_seconds": SECONDS, "exemplar_max_seconds": SECONDS,
                       "exemplar_file_seconds": SECONDS},
                      optional=("exemplar_min_seconds", "exemplar_max_seconds", "exemplar_file_seconds")),
        "textures": ListOf(Obj({"name": Str(64), "label": Str(64), "description": Str(1000)})),
        "qualities": ListOf(Obj({"name": Str(64), "label": Str(64), "expected_seconds": SECONDS})),
        "formats": ListOf(Str(16)),
        "default_window": SECONDS,
    }
    re: int | None
    version: int
    server: str
    session: str
    limits: dict
    textures: list
    qualities: list
    formats: list
    default_window: float


@dataclasses.dataclass(frozen=True)
class UploadProgress(Message):
    TYPE = "upload_progress"
    SENDER = "server"
    FIELDS = {"re": RE, "received": BYTES, "size": BYTES}
    re: int | None  # the upload id
    received: int
    size: int


@dataclasses.dataclass(frozen=True)
class Track(Message):
    TYPE = "track"
    SENDER = "server"
    FIELDS = {"re": RE, "name": Str(255), "duration": SECONDS, "sample_rate": Int(0, 10**7),
              "channels": Int(0, 1024), "codec": Str(64), "window": WINDOW, "peaks": COLUMNS,
              "warnings": WARNINGS}
    re: int | None  # the upload id; a PEAKS frame with ref = re follows
    name: str
    duration: float
    sample_rate: int
    channels: int
    codec: str
    window: dict
    peaks: int  # columns of the peaks: the PEAKS payload is 2 × peaks float32
    warnings: list


@dataclasses.dataclass(frozen=True)
class Window(Message):
    TYPE = "window"
    SENDER = "server"
    FIELDS = {"re": RE, "start": SECONDS, "duration": SECONDS, "peaks": COLUMNS, "warnings": WARNINGS}
    re: int | None  # the clip request id; a PEAKS frame with ref = re follows
    start: float
    duration: float
    peaks: int
    warnings: list


@dataclasses.dataclass(frozen=True)
class Exemplar(Message):
    TYPE = "exemplar"
    SENDER = "server"
    FIELDS = {"re": RE, "name": Str(255), "duration": SECONDS, "used": SECONDS, "peaks": COLUMNS,
              "warnings": WARNINGS}
    re: int | None  # the upload id; a PEAKS frame with ref = re follows
    name: str
    duration: float  # of the file
    used: float  # seconds of it the texture is taken from (its start)
    peaks: int
    warnings: list


@dataclasses.dataclass(frozen=True)
class PreviewAudio(Message):
    TYPE = "preview_audio"
    SENDER = "server"
    FIELDS = {"re": RE, "texture": Str(64), "format": Str(16), "bytes": BYTES}
    re: int | None  # the preview request id; PREVIEW frames with ref = re follow
    texture: str
    format: str
    bytes: int


@dataclasses.dataclass(frozen=True)
class Accepted(Message):
    TYPE = "accepted"
    SENDER = "server"
    FIELDS = {"re": RE, "job": ID, "position": Int(0, 100000), "eta": SECONDS}
    re: int | None  # the convert request id
    job: int
    position: int  # 0: running now; n: n jobs before it
    eta: float  # seconds until the result, estimated


@dataclasses.dataclass(frozen=True)
class Progress(Message):
    TYPE = "progress"
    SENDER = "server"
    FIELDS = {"job": ID, "stage": Str(32, STAGES), "fraction": Num(0.0, 1.0), "eta": SECONDS,
              "position": Int(0, 100000)}
    job: int
    stage: str
    fraction: float  # of the whole job, 0..1
    eta: float
    position: int


@dataclasses.dataclass(frozen=True)
class Result(Message):
    TYPE = "result"
    SENDER = "server"
    FIELDS = {"re": RE, "job": ID, "texture": Str(64), "quality": Str(64), "format": Str(16),
              "duration": SECONDS, "audio_bytes": BYTES, "spectrogram_bytes": BYTES, "peaks": COLUMNS,
              "timings": MapOf(SECONDS), "channels": Int(1, 2), "strength": Num(0.0, 1.0), "start": SECONDS}
    re: int | None  # the convert request id; AUDIO, SPECTROGRAM, RESULT_PEAKS frames with ref = job follow
    job: int
    texture: str
    quality: str
    format: str
    duration: float
    audio_bytes: int
    spectrogram_bytes: int
    peaks: int
    timings: dict
    channels: int = 1  # of the audio (version 3: 2 for a stereo song)
    strength: float = 1.0  # the strength used
    start: float = 0.0  # s: where in the track the converted audio starts


@dataclasses.dataclass(frozen=True)
class Cancelled(Message):
    TYPE = "cancelled"
    SENDER = "server"
    FIELDS = {"re": RE, "job": ID}
    re: int | None  # the cancel request id (null when the server cancelled on its own)
    job: int


@dataclasses.dataclass(frozen=True)
class Error(Message):
    TYPE = "error"
    SENDER = "server"
    FIELDS = {"re": RE, "request": Opt(Str(32)), "code": Str(32), "message": Str(1000),
              "job": Opt(ID), "queue": Opt(Int(0, 100000))}
    re: int | None  # the request id it answers, if any
    request: str | None  # the request's type, if known
    code: str
    message: str
    job: int | None = None  # the job it ends, if any
    queue: int | None = None  # with busy: jobs in the queue


@dataclasses.dataclass(frozen=True)
class Shutdown(Message):
    TYPE = "shutdown"
    SENDER = "server"
    FIELDS = {"reason": Str(200), "grace": SECONDS}
    reason: str
    grace: float  # seconds running jobs have to finish before the connection closes


MESSAGES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Hello, Upload, UploadEnd, Clip, Preview, Convert, Cancel, Welcome,
                              UploadProgress, Track, Exemplar, Window, PreviewAudio, Accepted, Progress, Result,
                              Cancelled, Error, Shutdown)
}
CLIENT_MESSAGES = {k: v for k, v in MESSAGES.items() if v.SENDER == "client"}
SERVER_MESSAGES = {k: v for k, v in MESSAGES.items() if v.SENDER == "server"}


def _build(cls: type[Message], obj: dict, request: str, re: int | None) -> Message:
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in obj:
            try:
                kwargs[f.name] = cls.FIELDS[f.name](obj[f.name], f"{request}.{f.name}")
            except ProtocolError as err:
                raise ProtocolError(err.code, err.message, request=request, re=re) from None
        elif f.default is dataclasses.MISSING:
            raise ProtocolError("bad_message", f"{request}.{f.name} is missing", request=request, re=re)
    return cls(**kwargs)


def parse_text(text: str, *, sender: str | None = None, max_bytes: int = MAX_TEXT_BYTES) -> Message:
    """A text frame → its message dataclass, every field checked.

    sender: "client" to accept only client messages (what the server does), "server" for
    the client's side, None for any. Raises ProtocolError: too_large, bad_message,
    unknown_type (with ``request`` and ``re`` set where they could be read).
    """
    if not isinstance(text, str):
        raise ProtocolError("bad_message", "a control message must be a text frame")
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("too_large", f"a control message may have at most {max_bytes} bytes")
    try:
        # NaN and Infinity parse (as 1e400 does), so that the field's check refuses them with the request's id
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ProtocolError("bad_message", f"not valid JSON: {str(err)[:100]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "a control message must be a JSON object")
    kind = obj.get("type")
    rid = obj.get("id")
    re = rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= MAX_ID else None
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", 'a control message needs a "type" string', re=re)
    cls = MESSAGES.get(kind)
    if cls is None or (sender is not None and cls.SENDER != sender):
        raise ProtocolError("unknown_type", f"unknown message type {kind[:32]!r}", re=re)
    return _build(cls, obj, kind, re)


def encode(msg: Message) -> str:
    """A message dataclass → the text of its frame. Checks every field (a bug on the
    sending side raises ProtocolError rather than sending a malformed message)."""
    if not isinstance(msg, Message) or type(msg).TYPE not in MESSAGES:
        raise ProtocolError("bad_message", f"not a protocol message: {type(msg).__name__}")
    obj = msg.to_dict()
    checked = _build(type(msg), obj, msg.TYPE, None).to_dict()
    try:
        return json.dumps(checked, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise ProtocolError("bad_message", f"cannot encode {msg.TYPE}: {err}") from None


def parse(data: str | bytes, *, sender: str | None = None):
    """Either kind of frame: text → Message, bytes → frames.BinaryFrame."""
    from .frames import parse_binary

    if isinstance(data, str):
        return parse_text(data, sender=sender)
    return parse_binary(data)


def peaks_to_bytes(peaks) -> bytes:
    """(2, columns) float array → the PEAKS payload: float32 little-endian, the minima row
    then the maxima row."""
    rows = [list(map(float, row)) for row in peaks]
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        raise ProtocolError("bad_binary", "peaks must be 2 rows of equal length")
    flat = rows[0] + rows[1]
    return struct.pack(f"<{len(flat)}f", *flat)


def peaks_from_bytes(data: bytes, columns: int) -> tuple[list[float], list[float]]:
    """The PEAKS payload → (minima, maxima), each ``columns`` floats."""
    if not isinstance(columns, int) or isinstance(columns, bool) or not 0 <= columns <= MAX_COLUMNS:
        raise ProtocolError("bad_binary", f"peaks have 0..{MAX_COLUMNS} columns")
    if not isinstance(data, (bytes, bytearray)) or len(data) != 8 * columns:
        raise ProtocolError("bad_binary", f"peaks of {columns} columns are {8 * columns} bytes")
    flat = struct.unpack(f"<{2 * columns}f", data)
    return list(flat[:columns]), list(flat[columns:])
