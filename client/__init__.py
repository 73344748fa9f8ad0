"""The MusiCoder client library: an asyncio :class:`Client` over the WebSocket protocol
(used by the GUI, scripts and tests), and :func:`convert_file`, the blocking one-call
conversion that ``musicoder convert --server URL`` uses."""
from .connection import (
    AccessDenied,
    Client,
    ConnectionFailed,
    Exemplar,
    JobCancelled,
    Result,
    ServerError,
    Track,
    Window,
)
from .convert import ConvertInfo, convert_file

__all__ = ["AccessDenied", "Client", "ConnectionFailed", "Exemplar", "JobCancelled", "Result", "ServerError", "Track", "Window",
           "ConvertInfo", "convert_file"]
