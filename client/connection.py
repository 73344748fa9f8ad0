"""An asyncio client for a MusiCoder server, over the sans-I/O :mod:`protocol`.

    async with Client("ws://host:8765") as c:          # connect (with timeout) + hello
    async with Client(["ws://a:8765", "ws://b:8765"]) as c:   # several front ends (or "ws://a:8765,ws://b:8765")
        track = await c.upload("song.mp3", on_progress=lambda got, size: ...)
        window = await c.clip(42.5, 10.0)
        fmt, exemplar = await c.preview("laser")
        mine = await c.upload_exemplar("brook.wav")     # the session's own texture (protocol 2)
        result3 = await c.convert(protocol.EXEMPLAR)    # ... converted with it
        result = await c.convert("laser", "hifi", "flac", on_progress=lambda stage, fraction, eta, pos: ...)
        result2 = await c.convert("water", strength=0.5, whole=True)   # the whole song, half way (protocol 3)
        await c.reconnect()                             # a new session (the next address), track and window restored

One reader task takes every frame off the socket: control messages go to the request
that they answer (``re``) or to the job they are about (``job``); binary chunks are
reassembled and handed to the same place. Errors the server reports raise
:class:`ServerError` (an ``InputError`` with the server's code); a server that cannot be
reached or a lost connection raise :class:`ConnectionFailed`; a server that refuses the
token or the Origin at the handshake raises :class:`AccessDenied` (no use retrying).
``wss://`` URLs are verified against the system's CAs, or ``cafile`` where given.

Several addresses (front ends of one service; :func:`parse_servers` reads them): ``connect``
tries each once, from the current one, and stays on the first that answers; an address
that refused the token or the Origin (``AccessDenied``) is not tried again, the others
are. After a lost connection, ``reconnect`` (or ``next_server`` and ``connect``) moves on
to the next address, cycling through the list. When none answers the error names every
address tried. :data:`RETRY_DELAYS` is the back-off of the GUI (after each round in which
no address answered) and of ``convert_file`` (between its retries after a lost
connection, the first of them at once).
"""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import os
import ssl
import urllib.parse
from collections.abc import Callable, Iterable, Sequence

import websockets
from websockets.asyncio.client import connect as ws_connect

import protocol
from musicoder.errors import InputError

DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 120.0  # seconds without any answer to a request
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)  # seconds between rounds of reconnecting (GUI, convert_file)


def parse_servers(value: str | Iterable[str]) -> list[str]:
    """The server addresses in ``value``: a string of comma-separated addresses, or several
    such strings (``--server`` given more than once, a JSON list). Whitespace around an
    address, empty items and repeats are dropped. Each must be ``ws://HOST[:PORT][/PATH]``
    or ``wss://...``. Raises InputError ("bad_server", one sentence naming the bad one)
    for one that is not, and for none at all."""
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InputError("bad_server", f"Bad server address {item!r}: give ws://HOST:PORT or wss://HOST:PORT.")
        for url in (part.strip() for part in item.split(",")):
            if url and url not in out:
                _check_server(url)
                out.append(url)
    if not out:
        raise InputError("bad_server", "No server address given: give ws://HOST:PORT or wss://HOST:PORT.")
    return out


def _check_server(url: str) -> None:
    """InputError ("bad_server") unless url is ws://HOST[:PORT][/PATH] or wss://..."""
    why = None
    if any(c.isspace() for c in url):
        why = "it has a space in it (separate addresses with commas)"
    else:
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port  # ValueError for one that is not a number in 0-65535
        except ValueError as err:
            port, why = None, ("its port is not a number from 1 to 65535" if "port" in str(err).lower()
                               else "it is not a URL (an unclosed [ of an IPv6 address?)")
        if why is None:
            if parts.scheme.lower() not in ("ws", "wss"):
                why = "it must start with ws:// or wss://"
            elif not parts.hostname:
                why = "it names no host"
            elif port == 0:
                why = "its port is not a number from 1 to 65535"
            elif "#" in url:
                why = "it has a #fragment"
    if why:
        raise InputError("bad_server", f"Bad server address {url!r}: {why} (e.g. ws://host:8765).")


class ConnectionFailed(Exception):
    """The server could not be reached, or the connection was lost. One line."""


class AccessDenied(ConnectionFailed):
    """The server refused the handshake with HTTP 401 (no or wrong token) or 403 (an
    Origin it does not allow): retrying the same way cannot help. One line."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class ServerError(InputError):
    """An error frame: ``code`` (see protocol.ERROR_CODES), ``message``, and the request
    (``request`` type, ``re`` id, ``job``) it answers."""

    def __init__(self, code: str, message: str, request: str | None = None, re: int | None = None,
                 job: int | None = None, queue: int | None = None):
        super().__init__(code, message)
        self.request, self.re, self.job, self.queue = request, re, job, queue


class JobCancelled(Exception):
    """The conversion was cancelled (by :meth:`Client.cancel` or by the server)."""

    def __init__(self, job: int):
        super().__init__(f"conversion {job} was cancelled")
        self.job = job


@dataclasses.dataclass(frozen=True)
class Window:
    start: float  # s
    duration: float  # s
    peaks_min: list[float]
    peaks_max: list[float]
    warnings: list[str]


@dataclasses.dataclass(frozen=True)
class Track:
    name: str
    duration: float  # s, the whole track
    sample_rate: int  # Hz, the source's
    channels: int
    codec: str
    window: Window


@dataclasses.dataclass(frozen=True)
class Exemplar:
    name: str
    duration: float  # s, the file's
    used: float  # s of it the texture is taken from
    peaks_min: list[float]
    peaks_max: list[float]
    warnings: list[str]


@dataclasses.dataclass(frozen=True)
class Result:
    job: int
    texture: str
    quality: str
    format: str
    duration: float  # s
    audio: bytes
    spectrogram: bytes  # PNG
    peaks_min: list[float]
    peaks_max: list[float]
    timings: dict[str, float]  # stage -> s, with "queued"
    channels: int = 1  # of the audio: 2 for a stereo song (protocol 3)
    strength: float = 1.0  # 0 the music unchanged .. 1 the texture as tuned
    start: float = 0.0  # s: where in the track the converted audio starts


_CLOSED = object()


class Client:
    """``url``: one server address, several comma-separated in one string, or a list of
    them (see :func:`parse_servers`; InputError "bad_server" for a bad one). ``url`` then
    reads the address in use (or being tried), ``urls`` all of them. on_connecting(url) is
    called before each address is tried."""

    def __init__(self, url: str | Sequence[str], *, name: str = "musicoder-client",
                 open_timeout: float = DEFAULT_OPEN_TIMEOUT, request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
                 chunk_bytes: int = protocol.CHUNK_BYTES,
                 on_shutdown: Callable[[protocol.Shutdown], None] | None = None, token: str | None = None,
                 cafile: str | None = None, on_connecting: Callable[[str], None] | None = None):
        self.urls = parse_servers(url)
        self._index = 0  # urls[_index] is the address in use, or the next tried
        self._denied: dict[str, AccessDenied] = {}  # addresses that refused us: not tried again
        self.on_connecting = on_connecting
        self.token = token  # sent as "Authorization: Bearer TOKEN" where the server asks for one
        self.cafile = cafile  # a CA (or self-signed certificate) file to trust for wss://
        self.name = name
        self.open_timeout = open_timeout
        self.request_timeout = request_timeout
        self.chunk_bytes = chunk_bytes
        self.on_shutdown = on_shutdown
        self.welcome: protocol.Welcome | None = None
        self.shutdown: protocol.Shutdown | None = None
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Queue] = {}
        self._jobs: dict[int, asyncio.Queue] = {}
        self._downloads: dict[int, Callable[[int], None]] = {}  # job -> called with each AUDIO chunk's bytes
        self._blobs = protocol.Reassembler()
        self._broken: str | None = None
        self._source: tuple[str | bytes, str] | None = None  # what was uploaded, for reconnect
        self._exemplar: tuple[str | bytes, str] | None = None  # the exemplar uploaded, for reconnect
        self._window: tuple[float, float] | None = None

    # ---- connection -----------------------------------------------------------------------

    async def __aenter__(self) -> "Client":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The address in use, or the one the next connect tries first."""
        return self.urls[self._index]

    def next_server(self) -> str:
        """Make the next address (cycling; past those that refused access) the one connect
        tries first; returns it. With one address, that one."""
        for step in range(1, len(self.urls) + 1):
            i = (self._index + step) % len(self.urls)
            if self.urls[i] not in self._denied:
                self._index = i
                break
        return self.url

    async def connect(self) -> protocol.Welcome:
        """Open the connection and say hello; returns the server's welcome. Tries each
        address once, from the current one, and stays on the first that answers.
        Raises ConnectionFailed (unreachable, timeout, not a MusiCoder server, refused
        with HTTP 429 or full; with several addresses, naming each and why) or
        AccessDenied (HTTP 401/403, from every address)."""
        if self._ws is not None:
            await self.close()
        start = self._index
        failures: list[tuple[str, ConnectionFailed]] = []
        for step in range(len(self.urls)):
            self._index = (start + step) % len(self.urls)
            url = self.url
            if url in self._denied:  # the same token or Origin would be refused again
                failures.append((url, self._denied[url]))
                continue
            if self.on_connecting is not None:
                self.on_connecting(url)
            try:
                return await self._connect_one(url)
            except AccessDenied as err:
                self._denied[url] = err
                failures.append((url, err))
            except ConnectionFailed as err:
                failures.append((url, err))
        self._index = start
        raise _all_failed(failures)

    async def _connect_one(self, url: str) -> protocol.Welcome:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self._ws = await asyncio.wait_for(
                ws_connect(url, open_timeout=self.open_timeout, max_size=2 * 2**20, compression=None,
                           close_timeout=5, user_agent_header=f"{self.name} (musicoder client)",
                           additional_headers=headers, ssl=self._tls_context(url)),
                timeout=self.open_timeout + 1)
        except websockets.exceptions.InvalidStatus as err:
            raise _refusal(url, err.response) from None
        except (OSError, TimeoutError, websockets.exceptions.InvalidURI, websockets.exceptions.InvalidHandshake,
                websockets.exceptions.ConnectionClosed) as err:
            raise ConnectionFailed(f"cannot connect to {url}: {_reason(err)}") from None
        self._broken = None
        self.shutdown = None
        self._blobs = protocol.Reassembler()
        self._reader = asyncio.create_task(self._read())
        try:
            msg = await self._request(protocol.Hello(id=self._next_id(), version=protocol.PROTOCOL_VERSION,
                                                     client=self.name[:100]), timeout=self.open_timeout)
        except (ConnectionFailed, ServerError) as err:  # no welcome (full, stopping, not MusiCoder): the next one
            await self.close()
            why = f"{err.message} ({err.code})" if isinstance(err, ServerError) else str(err)
            raise ConnectionFailed(f"cannot connect to {url}: {why}") from None
        self.welcome = msg
        return msg

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        self._ws = self._reader = None

    async def reconnect(self) -> protocol.Welcome:
        """A fresh connection (a new session), to the next address first (the same one
        when there is one); the last upload, window and exemplar are sent again so that
        convert works as before."""
        await self.close()
        self.next_server()
        welcome = await self.connect()
        if self._exemplar is not None:
            await self.upload_exemplar(*self._exemplar)
        if self._source is not None:
            source, name = self._source
            window = self._window
            await self.upload(source, name=name)
            if window is not None:
                await self.clip(*window)
        return welcome

    def _tls_context(self, url: str) -> ssl.SSLContext | None:
        """For wss://, the system's CAs or cafile; None for ws://."""
        if not url.lower().startswith("wss:"):
            return None
        try:
            return ssl.create_default_context(cafile=self.cafile)
        except OSError as err:  # ssl.SSLError too: not a PEM file
            raise ConnectionFailed(f"cannot read the CA file {self.cafile}: {err.strerror or err}") from None

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._broken is None

    # ---- requests -------------------------------------------------------------------------

    async def upload(self, source: str | os.PathLike | bytes, name: str | None = None,
                     on_progress: Callable[[int, int], None] | None = None) -> Track:
        """Send a file (a path, or its bytes); returns the track with its default window.
        on_progress(received bytes, size) as the server confirms them."""
        msg, lo, hi, name = await self._send_file(source, name, "track", on_progress)
        self._source = (source if isinstance(source, (bytes, bytearray)) else os.fspath(source), name)
        self._window = None
        return Track(name=msg.name, duration=msg.duration, sample_rate=msg.sample_rate, channels=msg.channels,
                     codec=msg.codec, window=Window(msg.window["start"], msg.window["duration"], lo, hi, msg.warnings))

    async def upload_exemplar(self, source: str | os.PathLike | bytes, name: str | None = None,
                              on_progress: Callable[[int, int], None] | None = None) -> Exemplar:
        """Send an exemplar file (a path, or its bytes) as the session's own texture;
        ``convert(protocol.EXEMPLAR)`` then uses it. ServerError for a bad one (not_audio,
        too_short, too_long, silent...); the session's previous exemplar then stays."""
        msg, lo, hi, name = await self._send_file(source, name, protocol.EXEMPLAR, on_progress)
        self._exemplar = (source if isinstance(source, (bytes, bytearray)) else os.fspath(source), name)
        return Exemplar(name=msg.name, duration=msg.duration, used=msg.used, peaks_min=lo, peaks_max=hi,
                        warnings=msg.warnings)

    async def _send_file(self, source: str | os.PathLike | bytes, name: str | None, purpose: str,
                         on_progress: Callable[[int, int], None] | None):
        """One upload: (the server's track or exemplar message, peak minima, maxima, name)."""
        if isinstance(source, (bytes, bytearray)):
            data = bytes(source)
            name = name or "upload"
        else:
            path = os.fspath(source)
            data = await asyncio.to_thread(_read_file, path)
            name = name or os.path.basename(path)
        upload_id, end_id = self._next_id(), self._next_id()
        queue = self._register(upload_id)
        self._waiters[end_id] = queue  # an error about the file (not_audio, too_long...) answers upload_end
        try:
            await self._send(protocol.encode(protocol.Upload(id=upload_id, name=name[:255], size=len(data),
                                                             purpose=purpose)))
            first = await self._next(queue, upload_id)  # upload_progress 0, or an error (too_large...)
            if on_progress:
                on_progress(first.received, first.size)
            for frame in protocol.chunks(protocol.Kind.UPLOAD, upload_id, data, self.chunk_bytes):
                await self._send(frame)
                while not queue.empty():  # progress confirmations, without waiting
                    msg = await self._next(queue, upload_id)
                    if isinstance(msg, protocol.UploadProgress) and on_progress:
                        on_progress(msg.received, msg.size)
            await self._send(protocol.encode(protocol.UploadEnd(id=end_id, upload=upload_id)))
            while True:
                msg = await self._next(queue, upload_id)
                if isinstance(msg, protocol.UploadProgress):
                    if on_progress:
                        on_progress(msg.received, msg.size)
                elif isinstance(msg, (protocol.Track, protocol.Exemplar)):
                    peaks = await self._next(queue, upload_id)
                    lo, hi = protocol.peaks_from_bytes(peaks[2], msg.peaks)
                    return msg, lo, hi, name
        finally:
            self._waiters.pop(upload_id, None)
            self._waiters.pop(end_id, None)

    async def clip(self, start: float, duration: float) -> Window:
        """Choose the window (seconds) that convert uses; returns it with its peaks."""
        rid = self._next_id()
        queue = self._register(rid)
        try:
            await self._send(protocol.encode(protocol.Clip(id=rid, start=start, duration=duration)))
            msg = await self._next(queue, rid)
            peaks = await self._next(queue, rid)
            lo, hi = protocol.peaks_from_bytes(peaks[2], msg.peaks)
            self._window = (msg.start, msg.duration)
            return Window(msg.start, msg.duration, lo, hi, msg.warnings)
        finally:
            self._waiters.pop(rid, None)

    async def preview(self, texture: str) -> tuple[str, bytes]:
        """A texture's exemplar: (format, the audio file's bytes)."""
        rid = self._next_id()
        queue = self._register(rid)
        try:
            await self._send(protocol.encode(protocol.Preview(id=rid, texture=texture)))
            msg = await self._next(queue, rid)
            blob = await self._next(queue, rid)
            return msg.format, blob[2]
        finally:
            self._waiters.pop(rid, None)

    async def convert(self, texture: str, quality: str = "standard", format: str = "wav", normalize: bool = True,
                      on_progress: Callable[[str, float, float, int], None] | None = None,
                      on_accepted: Callable[[int, int], None] | None = None, *, strength: float = 1.0,
                      whole: bool = False, on_download: Callable[[int, int], None] | None = None) -> Result:
        """Convert the current window, or with ``whole`` the whole track (up to the
        server's limits.window_seconds), at ``strength`` (0 the music unchanged .. 1 the
        texture as tuned). on_accepted(job, queue position); on_progress(stage, fraction
        of the job, eta s, queue position); on_download(bytes of the audio received, its
        size) as its chunks come. Raises ServerError, JobCancelled, ConnectionFailed."""
        rid = self._next_id()
        queue = self._register(rid)
        job = None
        got = [0, 0]  # audio bytes received, announced

        def chunk(size: int) -> None:
            got[0] += size
            if on_download:
                on_download(got[0], got[1])

        try:
            await self._send(protocol.encode(protocol.Convert(id=rid, texture=texture, quality=quality, format=format,
                                                              normalize=normalize, strength=strength, whole=whole)))
            accepted = await self._next(queue, rid)
            job = accepted.job
            self._downloads[job] = chunk
            if on_accepted:
                on_accepted(job, accepted.position)
            blobs: dict[protocol.Kind, bytes] = {}
            result = None
            while True:
                msg = await self._next(queue, rid, math.inf)
                if isinstance(msg, protocol.Progress):
                    if on_progress:
                        on_progress(msg.stage, msg.fraction, msg.eta, msg.position)
                elif isinstance(msg, protocol.Cancelled):
                    raise JobCancelled(job)
                elif isinstance(msg, protocol.Result):
                    result, got[1] = msg, msg.audio_bytes
                elif isinstance(msg, tuple):
                    blobs[msg[0]] = msg[2]
                    if result is not None and len(blobs) == 3:
                        lo, hi = protocol.peaks_from_bytes(blobs[protocol.Kind.RESULT_PEAKS], result.peaks)
                        return Result(job=job, texture=result.texture, quality=result.quality, format=result.format,
                                      duration=result.duration, audio=blobs[protocol.Kind.AUDIO],
                                      spectrogram=blobs[protocol.Kind.SPECTROGRAM], peaks_min=lo, peaks_max=hi,
                                      timings=result.timings, channels=result.channels, strength=result.strength,
                                      start=result.start)
        finally:
            self._waiters.pop(rid, None)
            if job is not None:
                self._jobs.pop(job, None)
                self._downloads.pop(job, None)

    async def cancel(self, job: int) -> None:
        """Cancel a conversion; its convert() call raises JobCancelled. ServerError
        ("unknown_job") if it has already ended."""
        rid = self._next_id()
        queue = self._register(rid)
        try:
            await self._send(protocol.encode(protocol.Cancel(id=rid, job=job)))
            await self._next(queue, rid)
        finally:
            self._waiters.pop(rid, None)

    # ---- plumbing -------------------------------------------------------------------------

    def _next_id(self) -> int:
        return next(self._ids)

    def _register(self, rid: int) -> asyncio.Queue:
        if self._ws is None:
            raise ConnectionFailed(f"not connected to {self.url}")
        queue: asyncio.Queue = asyncio.Queue()
        self._waiters[rid] = queue
        return queue

    async def _request(self, msg: protocol.Message, timeout: float | None = None):
        queue = self._register(msg.id)
        try:
            await self._send(protocol.encode(msg))
            return await self._next(queue, msg.id, timeout)
        finally:
            self._waiters.pop(msg.id, None)

    async def _send(self, data: str | bytes) -> None:
        if self._broken is not None or self._ws is None:
            raise ConnectionFailed(self._broken or f"not connected to {self.url}")
        try:
            await self._ws.send(data)
        except websockets.ConnectionClosed as err:
            raise ConnectionFailed(f"the connection to {self.url} was lost: {_reason(err)}") from None

    async def _next(self, queue: asyncio.Queue, rid: int, timeout: float | None = None):
        """The next message for a request. timeout None: request_timeout; math.inf: none
        (a queued job may wait long; keepalive pings detect a dead connection)."""
        limit = self.request_timeout if timeout is None else timeout
        try:
            msg = await asyncio.wait_for(queue.get(), None if math.isinf(limit) else limit)
        except TimeoutError:
            raise ConnectionFailed(f"no answer from {self.url} in {limit:g} s") from None
        if msg is _CLOSED:
            raise ConnectionFailed(self._broken or f"the connection to {self.url} was lost")
        if isinstance(msg, protocol.Error):
            raise ServerError(msg.code, msg.message, msg.request, msg.re, msg.job, msg.queue)
        return msg

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                try:
                    self._route(data)
                except protocol.ProtocolError as err:  # a server that breaks the protocol: drop the frame
                    self._broadcast(protocol.Error(re=None, request=None, code=err.code,
                                                   message=f"bad frame from the server: {err.message}"))
            reason = f"the server closed the connection ({self._ws.close_code} {self._ws.close_reason})".strip()
        except websockets.ConnectionClosed as err:
            reason = f"the connection to {self.url} was lost: {_reason(err)}"
        except Exception as err:  # pragma: no cover - a bug: do not leave waiters hanging
            reason = f"client error: {err}"
        self._broken = reason
        for q in list(self._waiters.values()) + list(self._jobs.values()):
            q.put_nowait(_CLOSED)

    def _route(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            frame = protocol.parse_binary(data)
            done = self._blobs.feed(frame)
            if frame.kind == protocol.Kind.AUDIO and frame.ref in self._downloads:
                self._downloads[frame.ref](len(frame.payload))
            if done is not None:
                kind, ref, _ = done
                job_kinds = (protocol.Kind.AUDIO, protocol.Kind.SPECTROGRAM, protocol.Kind.RESULT_PEAKS)
                target = self._jobs.get(ref) if kind in job_kinds else self._waiters.get(ref)
                if target is not None:
                    target.put_nowait(done)
            return
        msg = protocol.parse_text(data, sender="server")
        handle = _HANDLERS.get(type(msg))
        if handle is None:  # a message of the protocol that this client was not taught
            raise protocol.ProtocolError("bad_message", f"{msg.TYPE} is not a message this client handles")
        handle(self, msg)

    def _deliver(self, msg: protocol.Message) -> None:
        """An answer to the request waiting on its ``re``, and to the job it is about
        (once when both are the same queue); an error about neither fails every request
        (idle_timeout, too_many_clients). One that no request or job waits for any more
        (a progress after a cancel) is dropped."""
        job = getattr(msg, "job", None)
        re = getattr(msg, "re", None)
        delivered = False
        if job is not None and job in self._jobs:
            self._jobs[job].put_nowait(msg)
            delivered = True
        if re is not None and re in self._waiters and (not delivered or self._waiters[re] is not self._jobs.get(job)):
            self._waiters[re].put_nowait(msg)
            delivered = True
        if not delivered and isinstance(msg, protocol.Error) and re is None and job is None:
            self._broadcast(msg)

    def _with_peaks(self, msg: protocol.Track | protocol.Exemplar | protocol.Window) -> None:
        """A track, exemplar or window: its PEAKS payload follows, to the same request."""
        self._blobs.expect(protocol.Kind.PEAKS, msg.re, 8 * msg.peaks)
        self._deliver(msg)

    def _with_preview(self, msg: protocol.PreviewAudio) -> None:
        self._blobs.expect(protocol.Kind.PREVIEW, msg.re, msg.bytes)
        self._deliver(msg)

    def _with_result(self, msg: protocol.Result) -> None:
        """A result: its audio, spectrogram and peaks payloads follow, to the job."""
        self._blobs.expect(protocol.Kind.AUDIO, msg.job, msg.audio_bytes)
        self._blobs.expect(protocol.Kind.SPECTROGRAM, msg.job, msg.spectrogram_bytes)
        self._blobs.expect(protocol.Kind.RESULT_PEAKS, msg.job, 8 * msg.peaks)
        self._deliver(msg)

    def _on_accepted(self, msg: protocol.Accepted) -> None:
        if msg.re in self._waiters:
            self._jobs[msg.job] = self._waiters[msg.re]  # its progress must not be lost
        self._deliver(msg)

    def _on_shutdown(self, msg: protocol.Shutdown) -> None:
        self.shutdown = msg
        if self.on_shutdown:
            self.on_shutdown(msg)

    def _broadcast(self, msg) -> None:
        for q in list(self._waiters.values()):
            q.put_nowait(msg)


# How the client takes each message the server sends (tests/test_client_messages.py
# feeds it every one that protocol.SERVER_MESSAGES has: a new one must be added here).
_HANDLERS: dict[type[protocol.Message], Callable[[Client, protocol.Message], None]] = {
    protocol.Welcome: Client._deliver,
    protocol.UploadProgress: Client._deliver,
    protocol.Track: Client._with_peaks,
    protocol.Exemplar: Client._with_peaks,
    protocol.Window: Client._with_peaks,
    protocol.PreviewAudio: Client._with_preview,
    protocol.Accepted: Client._on_accepted,
    protocol.Progress: Client._deliver,
    protocol.Result: Client._with_result,
    protocol.Cancelled: Client._deliver,
    protocol.Error: Client._deliver,
    protocol.Shutdown: Client._on_shutdown,
}


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError("not_found", f"{os.path.basename(path)}: no such file.") from None


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({err.verify_message}): give its CA file (--cafile)"
    return text[:200]


def _all_failed(failures: list[tuple[str, ConnectionFailed]]) -> ConnectionFailed:
    """One address: its own error. Several: one line naming each and why; AccessDenied
    when every one refused access."""
    if len(failures) == 1:
        return failures[0][1]
    parts = "; ".join(f"{url}: {str(err).removeprefix(f'cannot connect to {url}: ')}" for url, err in failures)
    message = f"cannot connect to any of {len(failures)} servers ({parts})"
    denied = [err for _, err in failures if isinstance(err, AccessDenied)]
    if len(denied) == len(failures):
        return AccessDenied(message, denied[-1].status)
    return ConnectionFailed(message)


def _refusal(url: str, response) -> ConnectionFailed:
    """A handshake answered with an HTTP error: the server's one-line reason."""
    lines = response.body.decode("utf-8", "replace").strip().splitlines() if response.body else []
    why = lines[0] if lines else response.reason_phrase
    why = why.removeprefix("MusiCoder: ").removeprefix("Failed to open a WebSocket connection: ")[:200]
    if response.status_code in (401, 403):
        return AccessDenied(f"cannot connect to {url}: access refused (HTTP {response.status_code}): {why}",
                            response.status_code)
    return ConnectionFailed(f"cannot connect to {url}: refused (HTTP {response.status_code}): {why}")
