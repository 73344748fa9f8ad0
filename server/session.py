"""One client's session: the state machine of one WebSocket connection.

A Session owns everything of its client: its upload under ``receive/<session>/`` (the
part being received under ``temp/<session>/``), its decoded window, its own exemplar
(decoded, under ``temp/<session>/``: never another session's), its jobs. When the
connection ends, at any moment and however it ends, :meth:`Session.close` cancels the
jobs (which frees their workers), closes the upload and deletes both folders.

States: connected → (hello) → greeted; a track exists after a complete upload.
Requests are handled in order; conversions run as tasks that forward the pool's
events, so that cancel and other requests are served while they run.

What a session needs of the server it belongs to is :class:`Services` (the settings,
the pool, decoding, the texture catalogue, the welcome); ``app.App`` provides it. The
dependency points one way: app imports session, never the reverse.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import shutil
import unicodedata
import uuid
from typing import Protocol

import aiofiles
import numpy as np
from websockets.exceptions import ConnectionClosed

import protocol
from musicoder import audio, reconstruct
from musicoder.errors import InputError

from . import pool as pool_mod
from .config import Settings
from .worker import JobSpec

logger = logging.getLogger("musicoder.server")
PEAK_COLUMNS = 800
PROGRESS_STEP = 1024 * 1024  # upload progress every MiB (and at 0 and at the end)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a file size limit


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def _copy_whole(src: str, dst: str) -> None:
    """dst becomes a copy of src, whole or absent (a full disk leaves no partial copy)."""
    try:
        shutil.copyfile(src, dst)
    except BaseException:
        _remove(dst)
        raise


def _move(src: str, dst: str) -> None:
    """os.replace, or a copy where data/temp is another file system (a tmpfs): either
    way src is gone after, and dst is whole or absent."""
    try:
        os.replace(src, dst)
        return
    except OSError as err:
        if err.errno != errno.EXDEV:
            _remove(src)
            raise
    try:
        _copy_whole(src, dst)
    finally:
        _remove(src)


def _channels(samples) -> int:
    """Channels of decoded samples: (n,) is 1, (channels, n) its first dimension."""
    return 1 if samples.ndim == 1 else samples.shape[0]


WRITE_BLOCK_FRAMES = 30 * audio.SAMPLE_RATE  # a whole track is rewritten this much at a time


def _write_planar(decoded: audio.DecodedFile, path: str) -> None:
    """A track decoded to a raw file (interleaved, DC not yet removed) → ``path`` as the
    workers read a window: float32, one channel after the other, DC removed; a block at a
    time, so memory does not grow with the song. Written aside and renamed: whole or
    absent (a full disk leaves no partial file)."""
    part = path + ".part"
    try:
        with open(part, "wb") as f:
            for channel in range(decoded.channels):
                for a in range(0, decoded.frames, WRITE_BLOCK_FRAMES):
                    f.write(np.ascontiguousarray(decoded.read(a, a + WRITE_BLOCK_FRAMES)[channel]).data)
        os.replace(part, path)
    except BaseException:
        _remove(part)
        raise


def _strength_label(strength: float) -> str:
    """What the result's title says of the strength: nothing at full strength."""
    return "" if strength >= 1.0 else f" at {strength:.0%}"


class SessionLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"session={self.extra['session']} {msg}", kwargs


def display_name(name: str) -> str:
    """A client's file name, for display only: no control characters, no folders."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return name.strip()[:255] or "upload"


class _Upload:
    def __init__(self, upload_id: int, name: str, size: int, path: str, purpose: str = "track"):
        self.id = upload_id
        self.purpose = purpose  # "track" or protocol.EXEMPLAR
        self.name = name
        self.size = size
        self.path = path
        self.received = 0
        self.next_seq = 0
        self.next_report = PROGRESS_STEP
        self.file = None


class _Track:
    """The uploaded file and its current window. The window's samples wait on disk
    (``temp/<session>/window.f32``, its ``channels`` one after the other), not in memory:
    an idle session costs the server nothing however long its window. The whole track's
    samples (``whole.f32``) are decoded at the first conversion of the whole track."""

    def __init__(self, path: str, name: str, window_path: str, channels: int, duration: float):
        self.path = path
        self.name = name
        self.window_path = window_path
        self.channels = channels  # of the window's samples: 1, or 2 (stereo, protocol 3)
        self.window_start = 0.0  # s
        self.duration = duration  # s, the whole track
        self.whole_path: str | None = None
        self.whole_channels = channels


class _Exemplar:
    """The session's own exemplar: its decoded samples on disk (``temp/<session>/
    exemplar.f32``, float32 like a window) and its file's display name."""

    def __init__(self, samples_path: str, name: str):
        self.samples_path = samples_path
        self.name = name


class Services(Protocol):
    """What the sessions share, provided by the server (``app.App``)."""

    settings: Settings
    pool: pool_mod.WorkerPool
    shutting_down: bool  # the whole server is stopping: no new uploads or conversions

    def welcome(self, re: int, session_id: str) -> protocol.Welcome:
        """The answer to hello: limits, textures, qualities, formats."""

    def texture(self, name: str):
        """The texture called name; InputError("unknown_texture") if none."""

    async def decode(self, path: str, start: float, duration: float, stereo: bool = False) -> audio.Clip:
        """A window of the file at path (s), decoded off the event loop: mono, or with
        stereo its channels ((channels, n), channels 1 or 2)."""

    async def decode_to_file(self, path: str, folder: str, duration: float) -> audio.DecodedFile:
        """The file at path from 0 for duration s, in stereo, decoded into a raw file in
        folder (memory does not grow with the song), off the event loop."""

    async def decode_exemplar(self, path: str) -> audio.Clip:
        """The exemplar file at path as ``audio.load_exemplar`` decodes it, off the loop."""

    def peaks(self, samples, columns: int) -> bytes:
        """The protocol's PEAKS payload of samples, in columns."""

    async def exemplar(self, texture) -> tuple[str, bytes]:
        """(format, bytes) of the texture's exemplar clip."""


class Session:
    def __init__(self, services: Services, ws):
        self.services = services
        self.ws = ws
        self.id = uuid.uuid4().hex
        self.log = SessionLog(logger, {"session": self.id})
        s = services.settings
        self.receive_dir = os.path.join(s.receive_dir, self.id)
        self.temp_dir = os.path.join(s.temp_dir, self.id)
        self.greeted = False
        self.version = protocol.PROTOCOL_VERSION  # the client's, from hello
        self.upload: _Upload | None = None
        self.rejected_uploads: list[int] = []
        self.track: _Track | None = None
        self.exemplar: _Exemplar | None = None
        self.jobs: dict[int, pool_mod.JobHandle] = {}
        self.tasks: set[asyncio.Task] = set()
        self.cancel_requests: dict[int, int] = {}
        self.snapshots = 0  # window snapshots made, for their names
        self.closed = False
        self.shutting_down = False

    # ---- sending --------------------------------------------------------------------------

    async def send(self, msg: protocol.Message) -> None:
        await self.ws.send(protocol.encode(msg))

    async def send_blob(self, kind: protocol.Kind, ref: int, data: bytes) -> None:
        for frame in protocol.chunks(kind, ref, data, self.services.settings.chunk_kb * 1024):
            await self.ws.send(frame)

    async def error(self, code: str, message: str, re: int | None = None, request: str | None = None,
                    **extra) -> None:
        self.log.info("error %s re=%s request=%s: %s", code, re, request, message)
        await self.send(protocol.Error(re=re, request=request, code=code, message=message, **extra))

    # ---- the connection's life --------------------------------------------------------------

    async def run(self) -> None:
        """Read and handle frames until the connection ends or goes idle."""
        idle = self.services.settings.idle_timeout
        while True:
            try:
                data = await asyncio.wait_for(self.ws.recv(), timeout=idle)
            except TimeoutError:
                if self.jobs:
                    continue  # waiting for a result is not idleness
                await self.error("idle_timeout", f"Nothing came for {idle:g} s; closing the connection.")
                await self.ws.close(1000, "idle timeout")
                return
            except ConnectionClosed:
                return
            await self.handle(data)

    async def handle(self, data: str | bytes) -> None:
        re = request = None
        try:
            if isinstance(data, str):
                msg = protocol.parse_text(data, sender="client")
                re, request = msg.id, msg.TYPE
                await self.dispatch(msg)
            else:
                frame = protocol.parse_binary(data)
                if self.upload is not None and frame.ref == self.upload.id:
                    re, request = frame.ref, "upload"  # what goes wrong with a chunk answers its upload
                await self.on_chunk(frame)
        except protocol.ProtocolError as err:
            if err.code == "bad_binary" and self.upload is not None:
                await self._abort_upload()
            await self.error(err.code, err.message, err.re if re is None else re, err.request or request)
        except InputError as err:
            await self.error(err.code, err.message, re, request)
        except ConnectionClosed:
            raise
        except Exception as err:
            if isinstance(err, OSError) and err.errno in DISK_FULL:
                self.log.warning("disk full handling %s: %s", request or "a binary frame", err)
                await self.error("disk_full", "The server's disk is full: nothing of this request was kept; "
                                              "try again later.", re, request)
                return
            self.log.exception("internal error handling %s", request or "a binary frame")
            await self.error("internal", "The server failed on this request; the session goes on.", re, request)

    async def dispatch(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Hello):
            return await self.on_hello(msg)
        if not self.greeted:
            raise protocol.ProtocolError("not_ready", "Send hello first.")
        handler = {
            protocol.Upload: self.on_upload, protocol.UploadEnd: self.on_upload_end, protocol.Clip: self.on_clip,
            protocol.Preview: self.on_preview, protocol.Convert: self.on_convert, protocol.Cancel: self.on_cancel,
        }[type(msg)]
        await handler(msg)

    async def close(self) -> None:
        """Cancel the jobs, close the upload, delete the files. Idempotent."""
        if self.closed:
            return
        self.closed = True
        cancelled = sum(1 for handle in self.jobs.values() if not handle.done)
        for handle in list(self.jobs.values()):
            handle.cancel()
        for task in list(self.tasks):
            task.cancel()
        if self.upload is not None and self.upload.file is not None:
            try:
                await self.upload.file.close()
            except OSError:
                pass
        self.upload = None
        self.track = None
        self.exemplar = None
        await asyncio.to_thread(self.remove_files)
        self.log.info("closed: %d job(s) cancelled, files removed", cancelled)

    def remove_files(self) -> None:
        for folder in (self.receive_dir, self.temp_dir):
            shutil.rmtree(folder, ignore_errors=True)

    async def notify_shutdown(self, grace: float) -> None:
        self.shutting_down = True
        try:
            await self.send(protocol.Shutdown(reason="The server is stopping.", grace=grace))
        except ConnectionClosed:
            pass

    # ---- requests ---------------------------------------------------------------------------

    async def on_hello(self, msg: protocol.Hello) -> None:
        if msg.version not in protocol.SUPPORTED_VERSIONS:
            raise protocol.ProtocolError("bad_version", f"This server speaks protocol versions "
                                                        f"{', '.join(map(str, protocol.SUPPORTED_VERSIONS))}, "
                                                        f"not {msg.version}.")
        self.greeted, self.version = True, msg.version
        self.log.info("hello from %r, protocol %d", msg.client[:100], msg.version)
        await self.send(self.services.welcome(msg.id, self.id))

    async def on_upload(self, msg: protocol.Upload) -> None:
        if self.shutting_down:
            raise InputError("shutting_down", "The server is stopping; it takes no uploads.")
        await self._abort_upload()
        limit = self.services.settings.max_upload_bytes
        if msg.size > limit:
            self._reject(msg.id)
            raise InputError("too_large", f"The file is {msg.size / 2**20:.1f} MB; the limit is {limit / 2**20:g} MB.")
        os.makedirs(self.temp_dir, exist_ok=True)
        up = _Upload(msg.id, display_name(msg.name), msg.size, os.path.join(self.temp_dir, "upload.part"),
                     msg.purpose)
        up.file = await aiofiles.open(up.path, "wb")
        self.upload = up
        self.log.info("upload %d started (%s): %d bytes, %r", msg.id, up.purpose, msg.size, up.name)
        await self.send(protocol.UploadProgress(re=msg.id, received=0, size=msg.size))

    def _reject(self, upload_id: int) -> None:
        self.rejected_uploads = (self.rejected_uploads + [upload_id])[-16:]

    async def _abort_upload(self) -> None:
        up, self.upload = self.upload, None
        if up is None:
            return
        self._reject(up.id)
        if up.file is not None:
            with contextlib.suppress(OSError):  # its last bytes may not fit on a full disk: dropped anyway
                await up.file.close()
        _remove(up.path)
        self.log.info("upload %d abandoned at %d of %d bytes", up.id, up.received, up.size)

    async def on_chunk(self, frame: protocol.BinaryFrame) -> None:
        up = self.upload
        if frame.kind != protocol.Kind.UPLOAD:
            raise protocol.ProtocolError("bad_binary", f"a client sends only UPLOAD frames, not {frame.kind.name}")
        if up is None or frame.ref != up.id:
            if frame.ref in self.rejected_uploads:
                return  # the rest of an upload already refused: dropped quietly
            self._reject(frame.ref)  # one error per stray upload, not one per chunk
            raise protocol.ProtocolError("bad_binary", f"no upload {frame.ref} is in progress")
        if frame.seq != up.next_seq:
            raise protocol.ProtocolError("bad_binary", f"upload chunk {frame.seq} came, {up.next_seq} was due")
        if up.received + len(frame.payload) > up.size:
            await self._abort_upload()
            raise InputError("too_large", f"More than the {up.size} bytes announced came; the upload is dropped.")
        try:
            await up.file.write(frame.payload)
        except OSError:  # a full disk: no partial file left, the rest of its chunks dropped
            await self._abort_upload()
            raise
        up.received += len(frame.payload)
        up.next_seq += 1
        if up.received >= up.next_report or up.received == up.size:
            up.next_report = up.received + max(PROGRESS_STEP, up.size // 20)
            await self.send(protocol.UploadProgress(re=up.id, received=up.received, size=up.size))

    async def on_upload_end(self, msg: protocol.UploadEnd) -> None:
        up = self.upload
        if up is None or up.id != msg.upload:
            raise protocol.ProtocolError("not_ready", f"No upload {msg.upload} is in progress.")
        self.upload = None
        try:
            await up.file.close()
        except OSError:
            _remove(up.path)
            raise
        up.file = None
        if up.received != up.size:
            os.remove(up.path)
            raise InputError("truncated", f"{up.received} of the {up.size} bytes announced came; send the file again.")
        os.makedirs(self.receive_dir, exist_ok=True)
        if up.purpose == protocol.EXEMPLAR:
            return await self._take_exemplar(up)
        path = os.path.join(self.receive_dir, "upload")
        await asyncio.to_thread(_move, up.path, path)
        self.track = None
        _remove(os.path.join(self.temp_dir, "whole.f32"))  # the last track's, if it was converted whole
        window_path = os.path.join(self.temp_dir, "window.f32")
        try:
            clip = await self.services.decode(path, 0.0, audio.DEFAULT_WINDOW_SECONDS, self.stereo)
            await self._keep_samples(clip, window_path)
        except (InputError, OSError):
            os.remove(path)
            raise
        info = clip.source
        duration = info.duration if math.isfinite(info.duration) else clip.start + clip.duration
        self.track = _Track(path, up.name, window_path, _channels(clip.samples), duration)
        self.log.info("track %r: %.2f s, %s, %d Hz, %d ch", up.name, duration, info.codec, info.sample_rate,
                      clip.channels)
        await self.send(protocol.Track(
            re=up.id, name=up.name, duration=duration, sample_rate=max(info.sample_rate, 0), channels=clip.channels,
            codec=info.codec[:64], window={"start": clip.start, "duration": clip.duration}, peaks=PEAK_COLUMNS,
            warnings=list(clip.warnings)))
        await self.send_blob(protocol.Kind.PEAKS, up.id, self.services.peaks(clip.samples, PEAK_COLUMNS))

    async def _take_exemplar(self, up: _Upload) -> None:
        """A complete exemplar upload: decoded and checked (a bad one is refused and the
        session's last good exemplar stays), kept as samples; the file itself is deleted."""
        path = os.path.join(self.receive_dir, "exemplar")
        await asyncio.to_thread(_move, up.path, path)
        try:
            clip = await self.services.decode_exemplar(path)
            samples_path = os.path.join(self.temp_dir, "exemplar.f32")
            await self._keep_samples(clip, samples_path)
        finally:
            _remove(path)
        self.exemplar = _Exemplar(samples_path, up.name)
        duration = clip.source.duration if math.isfinite(clip.source.duration) else clip.duration
        self.log.info("exemplar %r: %.2f s, %.2f s used", up.name, duration, clip.duration)
        await self.send(protocol.Exemplar(re=up.id, name=up.name, duration=duration, used=clip.duration,
                                          peaks=PEAK_COLUMNS, warnings=list(clip.warnings)))
        await self.send_blob(protocol.Kind.PEAKS, up.id, self.services.peaks(clip.samples, PEAK_COLUMNS))

    async def on_clip(self, msg: protocol.Clip) -> None:
        if self.track is None:
            raise protocol.ProtocolError("not_ready", "Upload a track before choosing a window.")
        clip = await self.services.decode(self.track.path, msg.start, msg.duration, self.stereo)
        await self._keep_samples(clip, self.track.window_path)
        self.track.channels, self.track.window_start = _channels(clip.samples), clip.start
        self.log.info("window %.2f s + %.2f s", clip.start, clip.duration)
        await self.send(protocol.Window(re=msg.id, start=clip.start, duration=clip.duration, peaks=PEAK_COLUMNS,
                                        warnings=list(clip.warnings)))
        await self.send_blob(protocol.Kind.PEAKS, msg.id, self.services.peaks(clip.samples, PEAK_COLUMNS))

    async def _keep_samples(self, clip: audio.Clip, path: str) -> None:
        """A clip's samples (the window, or the exemplar) to disk (float32, little-endian),
        for the next convert: written aside, then renamed over the last one, so that a
        failed write (a full disk) leaves the last one whole and no partial file, and a
        job's snapshot (a hard link, :meth:`_snapshot`) is never rewritten."""
        def write() -> None:
            os.makedirs(self.temp_dir, exist_ok=True)
            part = path + ".part"
            try:
                with open(part, "wb") as f:  # (numpy's tofile loses the errno of a full disk)
                    f.write(np.ascontiguousarray(clip.samples, dtype="<f4").data)  # no copy of a long window
                os.replace(part, path)
            except BaseException:
                _remove(part)
                raise

        await asyncio.to_thread(write)

    @property
    def stereo(self) -> bool:
        """Whether this client takes stereo (protocol 3): older ones get mono as before."""
        return self.version >= 3

    async def _whole_track(self) -> None:
        """The whole track's samples on disk (``whole.f32``), decoded at its first use;
        bad_window when the track is longer than the server converts at once."""
        t = self.track
        limit = self.services.settings.max_window
        if t.duration > limit:
            raise InputError("bad_window", f"The track lasts {t.duration / 60:.1f} min; this server converts at most "
                                           f"{limit / 60:g} min at once: choose a window.")
        if t.whole_path is None:
            folder, path = os.path.join(self.temp_dir, "decoding"), os.path.join(self.temp_dir, "whole.f32")
            os.makedirs(folder, exist_ok=True)
            try:
                decoded = await self.services.decode_to_file(t.path, folder, limit)
                await asyncio.to_thread(_write_planar, decoded, path)
            finally:
                await asyncio.to_thread(shutil.rmtree, folder, True)
            t.whole_path, t.whole_channels = path, decoded.channels

    def _snapshot(self, source: str, kind: str = "job") -> str:
        """The current window (or exemplar) for one job, as a hard link (a copy where links
        fail): the job converts what was there when it was asked for, and waits in the
        queue on disk, not in the server's memory (32 queued 60 s windows would be 340 MB)."""
        self.snapshots += 1
        path = os.path.abspath(os.path.join(self.temp_dir, f"{kind}-{self.snapshots}.f32"))  # the worker's cwd may differ
        try:
            os.link(source, path)
        except OSError:
            _copy_whole(source, path)
        return path

    async def on_preview(self, msg: protocol.Preview) -> None:
        texture = self.services.texture(msg.texture)
        fmt, data = await self.services.exemplar(texture)
        self.log.info("preview %s: %d bytes", texture.name, len(data))
        await self.send(protocol.PreviewAudio(re=msg.id, texture=texture.name, format=fmt, bytes=len(data)))
        await self.send_blob(protocol.Kind.PREVIEW, msg.id, data)

    async def on_convert(self, msg: protocol.Convert) -> None:
        if self.shutting_down or self.services.shutting_down:
            raise InputError("shutting_down", "The server is stopping; it takes no new conversions.")
        if self.track is None:
            raise protocol.ProtocolError("not_ready", "Upload a track before converting.")
        own = msg.texture == protocol.EXEMPLAR
        if own and self.exemplar is None:
            raise protocol.ProtocolError("not_ready", "Upload an exemplar (upload with purpose \"exemplar\") before "
                                                      "converting with it.")
        texture = None if own else self.services.texture(msg.texture)
        quality = reconstruct.quality(msg.quality)
        if msg.format not in audio.OUTPUT_FORMATS:
            raise InputError("bad_format", f"Unknown output format {msg.format!r}: use one of "
                                           f"{', '.join(audio.OUTPUT_FORMATS)}.")
        limit = self.services.settings.jobs_per_session
        if len(self.jobs) >= limit:
            raise InputError("busy", f"This session already has {len(self.jobs)} conversion(s) under way "
                                     f"(the limit is {limit}); wait for one or cancel it.")
        whole = msg.whole and self.stereo  # (the fields of protocol 3 mean nothing from an older client)
        strength = msg.strength if self.stereo else 1.0
        if whole:
            await self._whole_track()
        source, channels, start = ((self.track.whole_path, self.track.whole_channels, 0.0) if whole else
                                   (self.track.window_path, self.track.channels, self.track.window_start))
        window = await asyncio.to_thread(self._snapshot, source)
        exemplar = await asyncio.to_thread(self._snapshot, self.exemplar.samples_path, "exemplar") if own else None
        name = self.exemplar.name if own else texture.label
        spec = JobSpec(window_path=window, seconds=os.path.getsize(window) / 4 / channels / audio.SAMPLE_RATE,
                       texture=protocol.EXEMPLAR if own else texture.name, quality=quality.name, format=msg.format,
                       normalize=msg.normalize, exemplar_path=exemplar, peaks_columns=PEAK_COLUMNS,
                       channels=channels, strength=strength, start=start,
                       title=f"{self.track.name} · {name}{_strength_label(strength)} · {quality.label}")
        try:
            handle = self.services.pool.submit(spec)
        except pool_mod.PoolBusy as busy:
            _remove(window)
            if exemplar:
                _remove(exemplar)
            self.log.info("busy: %d queued", busy.queued)
            await self.send(protocol.Error(re=msg.id, request=msg.TYPE, code="busy", message=str(busy),
                                           queue=busy.queued))
            return
        self.jobs[handle.id] = handle
        self.log.info("job %d accepted: %s %s %s normalize=%s strength=%g, %.1f s × %d ch, position %d", handle.id,
                      spec.texture, quality.name, msg.format, msg.normalize, strength, spec.seconds, channels,
                      handle.position)
        await self.send(protocol.Accepted(re=msg.id, job=handle.id, position=handle.position, eta=handle.eta))
        task = asyncio.create_task(self._follow(msg, handle))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _follow(self, msg: protocol.Convert, handle: pool_mod.JobHandle) -> None:
        """Forward one job's events to the client until its final event."""
        try:
            while True:
                ev = await handle.events.get()
                if isinstance(ev, pool_mod.Queued):
                    await self.send(protocol.Progress(job=handle.id, stage="queued", fraction=0.0, eta=ev.eta,
                                                      position=ev.position))
                elif isinstance(ev, pool_mod.Started):
                    await self.send(protocol.Progress(job=handle.id, stage="analysing", fraction=0.0, eta=ev.eta,
                                                      position=0))
                elif isinstance(ev, pool_mod.Progress):
                    await self.send(protocol.Progress(job=handle.id, stage=ev.stage, fraction=ev.fraction,
                                                      eta=ev.eta, position=0))
                elif isinstance(ev, pool_mod.Done):
                    out = ev.output
                    timings = {"queued": ev.queued_seconds, **out.timings}
                    self.log.info("job %d done: %d bytes %s in %.2f s (queued %.2f s)", handle.id, len(out.audio),
                                  msg.format, sum(out.timings.values()), ev.queued_seconds)
                    await self.send(protocol.Result(
                        re=msg.id, job=handle.id, texture=handle.spec.texture, quality=handle.spec.quality,
                        format=msg.format, duration=out.duration, audio_bytes=len(out.audio),
                        spectrogram_bytes=len(out.spectrogram), peaks=handle.spec.peaks_columns,
                        timings={k: round(v, 4) for k, v in timings.items()}, channels=out.channels,
                        strength=handle.spec.strength, start=handle.spec.start))
                    await self.send_blob(protocol.Kind.AUDIO, handle.id, out.audio)
                    await self.send_blob(protocol.Kind.SPECTROGRAM, handle.id, out.spectrogram)
                    await self.send_blob(protocol.Kind.RESULT_PEAKS, handle.id, out.peaks)
                    return
                elif isinstance(ev, pool_mod.Failed):
                    self.log.info("job %d failed: %s", handle.id, ev.code)
                    await self.send(protocol.Error(re=msg.id, request=msg.TYPE, code=ev.code, message=ev.message,
                                                   job=handle.id))
                    return
                elif isinstance(ev, pool_mod.JobCancelled):
                    self.log.info("job %d cancelled", handle.id)
                    await self.send(protocol.Cancelled(re=self.cancel_requests.pop(handle.id, None), job=handle.id))
                    return
        except ConnectionClosed:
            handle.cancel()
        except Exception:  # a bug here must not leave the client waiting for ever
            self.log.exception("job %d: internal error forwarding its events", handle.id)
            handle.cancel()
            try:
                await self.send(protocol.Error(re=msg.id, request=msg.TYPE, code="internal", job=handle.id,
                                               message="The server failed while sending this conversion."))
            except Exception:
                pass
        finally:
            self.jobs.pop(handle.id, None)
            _remove(handle.spec.window_path)
            if handle.spec.exemplar_path:
                _remove(handle.spec.exemplar_path)

    async def on_cancel(self, msg: protocol.Cancel) -> None:
        handle = self.jobs.get(msg.job)
        if handle is None or handle.done:
            raise InputError("unknown_job", f"This session has no conversion {msg.job} under way.")
        self.cancel_requests[msg.job] = msg.id
        self.log.info("job %d: cancel requested", msg.job)
        handle.cancel()

