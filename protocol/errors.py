"""The protocol's one exception type, and every error code an error frame can carry."""
from __future__ import annotations

# code -> when it is sent. The input codes are those of musicoder.errors.InputError.
ERROR_CODES: dict[str, str] = {
    # the message itself
    "bad_message": "not JSON, not an object, a missing field or a field of the wrong type or range",
    "unknown_type": "a message type this protocol version does not have",
    "bad_binary": "a binary frame with a bad header, or for no upload in progress",
    "too_large": "a message, or an upload, larger than the limit",
    "bad_version": "hello asked for a protocol version the server does not speak",
    "not_ready": "a request out of order: before hello, clip/convert before a track, or a convert with the "
                 "session's exemplar before one was uploaded",
    # the upload and the window (musicoder.errors.InputError codes)
    "empty": "the upload has 0 bytes",
    "not_audio": "the upload is not audio that can be read",
    "truncated": "the upload is cut short, or fewer bytes came than announced",
    "no_audio_stream": "the upload has no audio stream",
    "too_long": "the track lasts longer than the limit (an exemplar: longer than its file limit)",
    "too_short": "an exemplar shorter than its minimum",
    "silent": "an exemplar with no sound in it",
    "bad_window": "a window outside the track, too short or too long",
    "bad_format": "an output format the server does not write",
    "unknown_quality": "a quality level that does not exist",
    "unknown_texture": "a texture that does not exist",
    # jobs
    "unknown_job": "cancel of a job this session does not have (finished or never existed)",
    "busy": "the conversion queue, or this session's share of it, is full",
    "worker_failed": "the worker running the job died or timed out; the job is lost, retry",
    # the session
    "too_many_clients": "the server has its maximum of connections (then it closes)",
    "idle_timeout": "nothing came from the client for too long (then it closes)",
    "shutting_down": "the server is stopping and takes no new work",
    "disk_full": "the server's disk is full: the upload or window was not kept; the session goes on",
    "internal": "a bug on the server; the session goes on",
}


class ProtocolError(Exception):
    """A frame that breaks the protocol. ``code`` is one of :data:`ERROR_CODES`;
    ``request`` the message type and ``re`` the request id it answers, where known."""

    def __init__(self, code: str, message: str, *, request: str | None = None, re: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request = request
        self.re = re
