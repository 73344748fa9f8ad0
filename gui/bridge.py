"""The GUI's network side: one asyncio loop in a background thread, one
:class:`client.Client`, and a queue of :mod:`gui.model` events for the UI thread.

The UI thread never waits: its calls schedule coroutines on the loop and return; what
happens comes back as events, drained once per frame. The server may be several
addresses (front ends of one service; the server field takes them comma-separated, read
by :func:`client.parse_servers`): each try goes through them from the current one. The
connection is watched and re-made with back-off (:data:`client.RETRY_DELAYS`), each retry
starting with the next address; after a reconnect the song, its window and the user's
own exemplar are sent again (the server starts every connection as a new session with
nothing of ours). A conversion answered ``busy`` (that front end at capacity) moves the
connection on to the next address the same way; the user converts again there. An
address that refuses the token or the Origin is not tried again;
when every one has, retrying stops and the state says why, as it does for a bad address.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import queue
import threading
from collections.abc import Sequence

import client
from musicoder import audio
from musicoder.errors import InputError

from . import model as m

WATCH_INTERVAL = 0.5  # seconds between connection checks


class Bridge:
    """url: the server's address, several comma-separated, or a list of them."""

    def __init__(self, url: str | Sequence[str], retry_delays: tuple[float, ...] = client.RETRY_DELAYS,
                 token: str | None = None, cafile: str | None = None):
        self.model = m.Model(url=url if isinstance(url, str) else ", ".join(url))
        self.retry_delays = retry_delays
        self.token, self.cafile = token, cafile
        self._events: queue.Queue = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="musicoder-net", daemon=True)
        self._client: client.Client | None = None
        self._connector: asyncio.Task | None = None
        self._path: str | None = None  # the song, to send again after a reconnect
        self._window: tuple[float, float] | None = None
        self._exemplar_path: str | None = None  # the user's own exemplar, to send again
        self._job: int | None = None

    # ---- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.connect(self.model.url)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout=5)
        except Exception:  # a timeout or a loop already gone: we are leaving anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _shutdown(self) -> None:
        if self._client is not None:
            await self._client.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def drain(self) -> list:
        """The events that arrived since the last call (UI thread)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def _post(self, event) -> None:
        self._events.put(event)

    def _submit(self, coro) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    # ---- calls from the UI thread -------------------------------------------------------------

    def connect(self, url: str | Sequence[str]) -> None:
        """(Re)connect now, to ``url`` (one address, several comma-separated, or a list);
        keeps retrying with back-off, moving on to the next address, while it fails."""
        self._submit(self._start_connector(url))

    def open_file(self, path: str) -> None:
        self._submit(self._open(path))

    def open_exemplar(self, path: str) -> None:
        self._submit(self._open_exemplar(path))

    def clip(self, start: float, duration: float) -> None:
        self._submit(self._guard("clip", self._clip(start, duration)))

    def preview(self, texture: str) -> None:
        self._submit(self._guard("preview", self._preview(texture)))

    def convert(self, texture: str, quality: str, normalize: bool, fmt: str = "wav", *, strength: float = 1.0,
                whole: bool = False) -> None:
        """Convert the window, or with whole the whole track, at strength (0..1)."""
        self.model.start_job()
        self._submit(self._guard("convert", self._convert(texture, quality, normalize, fmt, strength, whole)))

    def cancel(self) -> None:
        if self._job is not None:
            self._submit(self._guard("cancel", self._client.cancel(self._job)))

    def save_result(self, path: str) -> None:
        result = self.model.result
        if result is not None:
            self._submit(self._guard("save", asyncio.to_thread(save_result, result, path)))

    # ---- coroutines (network thread) ---------------------------------------------------------

    async def _guard(self, request: str, coro) -> None:
        """Run a request; its failure becomes a RequestFailed event, never a crash."""
        try:
            await coro
        except client.JobCancelled as err:
            self._job = None
            self._post(m.JobCancelled(err.job))
        except InputError as err:  # the server's error frames (ServerError) and local ones
            self._post(m.RequestFailed(request, err.code, err.message))
            if request == "convert" and err.code == "busy" and self._client is not None and len(self._client.urls) > 1:
                await self._client.close()  # at capacity there: the watcher connects to the next address
        except client.ConnectionFailed as err:
            self._post(m.RequestFailed(request, "connection", str(err)))
        except OSError as err:
            self._post(m.RequestFailed(request, "io", f"{err.strerror or err}"))
        finally:
            if request == "convert":
                self._job = None

    async def _start_connector(self, url: str | Sequence[str]) -> None:
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None
        try:
            servers = client.parse_servers(url)
        except InputError as err:  # the server field is not a list of addresses: say so, try nothing
            if self._client is not None:
                await self._client.close()
            self._post(m.Disconnected(err.message, None))
            return
        self._connector = asyncio.create_task(self._keep_connected(servers))

    async def _keep_connected(self, servers: list[str]) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = c = client.Client(
            servers, name="musicoder-gui", token=self.token, cafile=self.cafile,
            on_shutdown=lambda s: self._post(m.ServerShutdown(s.reason)),
            on_connecting=lambda url: self._post(m.Connecting(url, tuple(servers))))
        several = len(servers) > 1
        attempt = 0
        while True:
            try:
                welcome = await c.connect()  # each address once, from the current one
            except client.AccessDenied as err:  # every address refused the token or the Origin
                self._post(m.Disconnected(str(err), None))
                return
            except client.ConnectionFailed as err:
                delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)]
                attempt += 1
                self._post(m.Disconnected(str(err), delay, c.next_server() if several else None))
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._post(m.Connected(welcome))
            await self._restore()
            while c.connected:
                await asyncio.sleep(WATCH_INTERVAL)
            lost = c.url
            await c.close()
            self._post(m.Disconnected(f"The connection to {lost} was lost." if several else "The connection was lost.",
                                      self.retry_delays[0], c.next_server() if several else None))
            await asyncio.sleep(self.retry_delays[0])

    async def _restore(self) -> None:
        """After a (re)connect: send the exemplar, the song and its window again."""
        if self._exemplar_path is not None:
            await self._guard("exemplar", self._upload_exemplar(self._exemplar_path))
        if self._path is None:
            return
        await self._guard("upload", self._upload(self._path))
        if self._window is not None:
            await self._guard("clip", self._clip(*self._window))

    async def _open(self, path: str) -> None:
        name = os.path.basename(path)
        try:
            clip = await asyncio.to_thread(functools.partial(audio.load, path, 0.0, None, stereo=True))
        except InputError as err:
            self._post(m.RequestFailed("open", err.code, err.message))
            return
        self._path, self._window = path, None
        self._post(m.FileLoaded(path, name, clip.samples, audio.SAMPLE_RATE))
        await self._guard("upload", self._upload(path))

    async def _open_exemplar(self, path: str) -> None:
        """Decode and check the exemplar here first (a bad one is refused before any
        upload, with the server's own words), then send it."""
        name = os.path.basename(path)
        try:
            clip = await asyncio.to_thread(audio.load_exemplar, path)
        except InputError as err:
            self._post(m.RequestFailed("open_exemplar", err.code, f"{name}: {err.message}"))
            return
        self._exemplar_path = path
        self._post(m.ExemplarLoaded(path, name, clip.samples, audio.SAMPLE_RATE))
        await self._guard("exemplar", self._upload_exemplar(path))

    async def _upload_exemplar(self, path: str) -> None:
        self._post(m.ExemplarReady(await self._client.upload_exemplar(path)))

    async def _upload(self, path: str) -> None:
        track = await self._client.upload(path, on_progress=lambda got, size: self._post(m.UploadProgressed(got, size)))
        self._post(m.TrackReady(track))

    async def _clip(self, start: float, duration: float) -> None:
        window = await self._client.clip(start, duration)
        self._window = (window.start, window.duration)
        self._post(m.WindowReady(window))

    async def _preview(self, texture: str) -> None:
        fmt, data = await self._client.preview(texture)
        self._post(m.PreviewReady(texture, fmt, data))

    async def _convert(self, texture: str, quality: str, normalize: bool, fmt: str, strength: float,
                       whole: bool) -> None:
        def accepted(job: int, position: int) -> None:
            self._job = job
            self._post(m.JobAccepted(job, position))

        result = await self._client.convert(
            texture, quality, fmt, normalize, on_accepted=accepted, strength=strength, whole=whole,
            on_progress=lambda stage, fraction, eta, position: self._post(m.JobProgress(stage, fraction, eta, position)),
            on_download=lambda got, size: self._post(m.DownloadProgressed(got, size)))
        self._post(m.ResultReady(result))


def save_result(result: client.Result, path: str) -> str:
    """Write a result where the user chose: its own bytes when the extension matches
    its format, else decoded and encoded again, its channels kept. Returns the format
    written."""
    fmt = audio.output_format(path)
    if fmt == result.format:
        audio.write_file(path, result.audio)
        return fmt
    return audio.save(audio.decode_bytes(result.audio, stereo=True), path)
