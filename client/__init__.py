"""The MusiCoder client library: an asyncio :class:`Client` over the WebSocket protocol
(used by the GUI, scripts and tests), and :func:`convert_file`, the blocking one-call
conversion that ``musicoder convert --server URL`` uses (:func:`convert_files`: many
files in one session). Both take one server address or
several (:func:`parse_servers`, shared with the CLI and the GUI) and move on to the next
when one cannot be reached or the connection is lost."""
from .connection import (
    RETRY_DELAYS,
    AccessDenied,
    Client,
    ConnectionFailed,
    Exemplar,
    JobCancelled,
    Result,
    ServerError,
    Track,
    Window,
    parse_servers,
)
from .convert import ConvertInfo, convert_file, convert_files

__all__ = ["RETRY_DELAYS", "AccessDenied", "Client", "ConnectionFailed", "Exemplar", "JobCancelled", "Result",
           "ServerError", "Track", "Window", "parse_servers", "ConvertInfo", "convert_file",
           "convert_files"]
