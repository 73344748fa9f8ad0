"""One conversion through a server, as one blocking call (for the CLI and scripts).

Given several server addresses (front ends of one service), a server that cannot be
reached is passed over for the next, and when the connection is lost mid-way (mid-upload,
mid-conversion, or a server that stops and cancels the job), or the server answers
``busy`` (at capacity: no converter free in time), the whole flow — the user's
exemplar, the song, the window, the conversion — runs again on the next address,
cycling through the list: at once the first time, then after each of ``retry_delays``.
If no address can be reached at the start it fails at once."""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
from collections.abc import Callable, Sequence

import protocol
from musicoder import audio
from musicoder.errors import InputError

from .connection import (
    RETRY_DELAYS,
    AccessDenied,
    Client,
    ConnectionFailed,
    JobCancelled,
    ServerError,
    parse_servers,
)


@dataclasses.dataclass(frozen=True)
class ConvertInfo:
    output: str  # the audio file written
    spectrogram: str | None  # the PNG written, if asked
    format: str
    bytes: int
    duration: float  # s of audio
    start: float  # s, the window actually used
    job: int
    texture: str
    quality: str
    timings: dict[str, float]  # stage -> s, with "queued"
    warnings: tuple[str, ...]
    server: str  # the server's name and version
    url: str  # the address of the server that made the result


def convert_file(url: str | Sequence[str], path: str | os.PathLike, out_path: str | os.PathLike,
                 texture: str | None, quality: str = "standard", start: float = 0.0,
                 duration: float = audio.DEFAULT_WINDOW_SECONDS, normalize: bool = True,
                 spectrogram_path: str | os.PathLike | None = None,
                 on_progress: Callable[[str, float], None] | None = None, *, timeout: float = 10.0,
                 token: str | None = None, cafile: str | None = None, exemplar: str | os.PathLike | None = None,
                 retry_delays: Sequence[float] = RETRY_DELAYS) -> ConvertInfo:
    """Upload ``path`` to the server at ``url``, convert the window (start, duration in
    seconds) and write the audio to ``out_path`` (its extension picks the format) and
    optionally the spectrogram PNG. url: one address, several comma-separated, or a list
    (failover: see the module's docstring; retry_delays, seconds, bounds the retries after
    a lost connection). texture: a built-in texture's name, in any case, or None with
    ``exemplar``: an audio file uploaded as the session's own texture. token: the server's shared token; cafile:
    a CA file to trust for a wss:// server.

    on_progress(stage, fraction of the job) as the engine's callback: stages uploading,
    queued, analysing, transferring, reconstructing, encoding; fractions never go back.
    Raises InputError (a ServerError with the server's code, or a local one such as
    bad_server / bad_format / not_found / bad_window before connecting; one about the song
    or the exemplar file begins with its name) and ConnectionFailed or AccessDenied (one
    line, naming the addresses tried).
    """
    servers = parse_servers(url)
    out_path = os.fspath(out_path)
    fmt = audio.output_format(out_path)
    for p in (path, exemplar):
        if p is not None and not os.path.isfile(p):
            raise InputError("not_found", f"{os.path.basename(os.fspath(p))}: no such file.")
    if (texture is None) == (exemplar is None):
        raise ValueError("give a texture or an exemplar, not both")
    if texture is not None:
        texture = texture.strip().lower()  # as the server and models.texture read it
    # NaN, infinite or negative: bad_window here (the track's length and the server's limit are the server's to check)
    audio.check_window(start, duration, math.nan, max_seconds=math.inf)
    return asyncio.run(_convert(servers, os.fspath(path), out_path, fmt, texture, quality, start, duration, normalize,
                                None if spectrogram_path is None else os.fspath(spectrogram_path), on_progress,
                                timeout, token, cafile, None if exemplar is None else os.fspath(exemplar),
                                tuple(retry_delays)))


# what the server answers about a file itself (not about itself, the session or the window)
FILE_ERRORS = frozenset({"empty", "not_audio", "truncated", "no_audio_stream", "too_large", "too_long",
                         "too_short", "silent"})


@contextlib.contextmanager
def _naming(path: str):
    """A ServerError about the file at ``path`` (a FILE_ERRORS code) raised again with the
    file's name in front, as the CLI says which of the song and the exemplar is bad."""
    try:
        yield
    except ServerError as err:
        if err.code not in FILE_ERRORS:
            raise
        raise ServerError(err.code, f"{os.path.basename(path)}: {err.message}", err.request, err.re, err.job,
                          err.queue) from None


async def _convert(servers, path, out_path, fmt, texture, quality, start, duration, normalize, png_path, on_progress,
                   timeout, token, cafile, exemplar, retry_delays) -> ConvertInfo:
    done = [0.0]

    def report(stage: str, fraction: float) -> None:
        if on_progress is not None:
            done[0] = max(done[0], fraction)
            on_progress(stage, done[0])

    notes: list[str] = []

    async def flow(client: Client):
        """The whole flow on the connection at hand: (result, window, the exemplar's notes)."""
        texture_name, mine = texture, []
        if exemplar is not None:
            with _naming(exemplar):
                ex = await client.upload_exemplar(exemplar, on_progress=lambda got, size: report("uploading", 0.0))
            mine = [f"{ex.name}: {n}" for n in ex.warnings]
            texture_name = protocol.EXEMPLAR
        with _naming(path):
            track = await client.upload(path, on_progress=lambda got, size: report("uploading", 0.0))
        window = track.window
        if (start, duration) != (window.start, window.duration):
            window = await client.clip(start, duration)
        result = await client.convert(texture_name, quality, fmt, normalize,
                                      on_progress=lambda stage, fraction, eta, pos: report(stage, fraction))
        return result, window, mine

    async with Client(servers, name="musicoder-cli", open_timeout=timeout, token=token, cafile=cafile) as client:
        waits = (0.0, *retry_delays)  # before each retry after a loss: at once, then backing off
        retries, why = 0, None  # why: the loss since the last good connection
        while True:
            try:
                if retries:
                    client.next_server()
                    await client.connect()
                    notes.append(f"{why}; carried on with {client.url}")
                    why = None
                result, window, mine = await flow(client)
                break
            except AccessDenied:
                raise
            except (ConnectionFailed, JobCancelled, ServerError) as err:
                busy = isinstance(err, ServerError) and err.code == "busy"  # at capacity there, maybe not elsewhere
                if isinstance(err, (JobCancelled, ServerError)) and not busy and not (
                        client.shutdown is not None and getattr(err, "code", "shutting_down") == "shutting_down"):
                    raise  # the server's answer (bad input...), not its going away or its load: the same anywhere
                if retries == len(waits):
                    if busy:
                        raise
                    tried = "" if len(servers) == 1 else f" (tried {', '.join(servers)})"
                    raise ConnectionFailed(f"{err}; gave up after {retries} retries{tried}") from None
                why = why or (str(err) if isinstance(err, ConnectionFailed) else
                              f"{client.url} was busy ({err.message})" if busy else
                              f"{client.url} stopped ({client.shutdown.reason}) before the result")
                await client.close()
                await asyncio.sleep(waits[retries])
                retries += 1
    notes += mine
    await asyncio.to_thread(audio.write_file, out_path, result.audio)
    if png_path is not None:
        await asyncio.to_thread(audio.write_file, png_path, result.spectrogram)
    report("done", 1.0)
    return ConvertInfo(output=out_path, spectrogram=png_path, format=result.format, bytes=len(result.audio),
                       duration=result.duration, start=window.start, job=result.job, texture=result.texture,
                       quality=result.quality, timings=result.timings, warnings=(*window.warnings, *notes),
                       server=client.welcome.server if client.welcome else "", url=client.url)
