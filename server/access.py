"""Who may open a session, decided at the WebSocket handshake (all off by default):

* a shared token, sent as ``Authorization: Bearer TOKEN`` (else HTTP 401);
* a cap on connections at once per client address (else HTTP 429);
* the allowed browser Origins: websockets' own ``origins=`` check (else HTTP 403);
* TLS: wss:// (and https://.../healthz) on the same port.
"""
from __future__ import annotations

import asyncio
import collections
import hmac
import http
import ipaddress
import logging
import ssl

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from .config import Settings

log = logging.getLogger("musicoder.server")


class Gate:
    """The token and the per-address cap, for ``process_request``."""

    def __init__(self, settings: Settings):
        self.token = settings.token
        self.per_ip = settings.max_connections_per_ip
        self.open: collections.Counter[str] = collections.Counter()  # client address -> connections open
        self._watchers: set[asyncio.Task] = set()

    def admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """None: go on with the handshake; else the HTTP refusal to send."""
        peer = connection.remote_address[0] if connection.remote_address else "?"
        if self.token and not _bearer_matches(request.headers.get_all("Authorization"), self.token):
            sent = "Authorization" in request.headers
            log.info("refused %s: %s token", peer, "wrong" if sent else "no")
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "MusiCoder: wrong token\n" if sent else
                                          "MusiCoder: this server needs a token (Authorization: Bearer TOKEN)\n")
            response.headers["WWW-Authenticate"] = 'Bearer realm="musicoder"'
            return response
        if not self.per_ip:
            return None
        if self.open[peer] >= self.per_ip:
            log.info("refused %s: already %d connections from it", peer, self.open[peer])
            return connection.respond(http.HTTPStatus.TOO_MANY_REQUESTS,
                                      f"MusiCoder: too many connections from {peer} (at most {self.per_ip}); "
                                      f"close one and try again\n")
        # counted from here to the socket's end, whether or not the handshake then succeeds
        self.open[peer] += 1
        watcher = asyncio.create_task(self._release(peer, connection))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return None

    async def _release(self, peer: str, connection: ServerConnection) -> None:
        try:
            await connection.wait_closed()
        finally:
            self.open[peer] -= 1
            if self.open[peer] <= 0:
                del self.open[peer]


def _bearer_matches(values: list[str], token: str) -> bool:
    if len(values) != 1:
        return False
    scheme, _, credentials = values[0].strip().partition(" ")
    # constant time: the comparison does not tell how much of a guess was right
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


def origins(settings: Settings) -> list[str | None] | None:
    """websockets' ``origins=``: None lets every Origin in. A request with no Origin is
    always let in: only browsers send one, and anything else could send any Origin it
    liked, so refusing it would keep no one out (the token does that)."""
    return [*settings.allowed_origin, None] if settings.allowed_origin else None


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or later), or None to serve plain ws://."""
    if not settings.certfile:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.certfile, settings.keyfile or None)
    except OSError as err:  # ssl.SSLError too: not PEM, a key that does not match
        raise SystemExit(f"musicoder-server: error: cannot load the TLS certificate {settings.certfile}: "
                         f"{err.strerror or err}")
    return context


def warn_if_exposed(settings: Settings, addresses: list[str]) -> None:
    """A warning, not a refusal: serving other machines with no token is allowed."""
    exposed = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
    if exposed and not settings.token:
        log.warning("listening on %s with no token: anyone who can reach this address can use the server "
                    "(set MUSICODER_TOKEN or --token-file; see deploy/README.md)", ", ".join(exposed))
