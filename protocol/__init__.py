"""The MusiCoder WebSocket protocol, sans-I/O: plain data in, plain data out.

No sockets and no asyncio here (the split the websockets library makes between its
protocol layer and its I/O). The server and the client call these functions and know
no message layout themselves:

* control messages are JSON text frames: :func:`encode` turns a message dataclass into
  text, :func:`parse_text` turns text into a validated message dataclass;
* audio and images are binary frames with a 14-byte header that ties each chunk to its
  message (:func:`encode_chunk`, :func:`chunks`, :func:`parse_binary`), reassembled by
  :class:`Reassembler`; never base64 inside JSON.

Every function here raises :class:`ProtocolError` and nothing else on any input.
The whole protocol is documented in ``docs/protocol.md``.
"""
from .errors import ERROR_CODES, ProtocolError
from .frames import (
    CHUNK_BYTES,
    HEADER,
    KINDS,
    MAGIC,
    BinaryFrame,
    Kind,
    Reassembler,
    chunks,
    encode_chunk,
    parse_binary,
)
from .messages import (
    CLIENT_MESSAGES,
    EXEMPLAR,
    MAX_TEXT_BYTES,
    MESSAGES,
    PROTOCOL_VERSION,
    SERVER_MESSAGES,
    STAGES,
    SUPPORTED_VERSIONS,
    Accepted,
    Cancel,
    Cancelled,
    Clip,
    Convert,
    Error,
    Exemplar,
    Hello,
    Message,
    Preview,
    PreviewAudio,
    Progress,
    Result,
    Shutdown,
    Track,
    Upload,
    UploadEnd,
    UploadProgress,
    Welcome,
    Window,
    encode,
    parse,
    parse_text,
    peaks_from_bytes,
    peaks_to_bytes,
)

__all__ = [
    "ERROR_CODES", "ProtocolError", "CHUNK_BYTES", "HEADER", "KINDS", "MAGIC", "BinaryFrame", "Kind",
    "Reassembler", "chunks", "encode_chunk", "parse_binary", "CLIENT_MESSAGES", "EXEMPLAR", "MAX_TEXT_BYTES",
    "MESSAGES", "PROTOCOL_VERSION", "SERVER_MESSAGES", "STAGES", "SUPPORTED_VERSIONS", "Accepted", "Cancel",
    "Cancelled", "Clip", "Convert", "Error", "Exemplar", "Hello", "Message", "Preview", "PreviewAudio", "Progress", "Result", "Shutdown", "Track", "Upload",
    "UploadEnd", "UploadProgress", "Welcome", "Window", "encode", "parse", "parse_text", "peaks_from_bytes",
    "peaks_to_bytes",
]
