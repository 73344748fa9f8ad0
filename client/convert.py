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
    channels: int = 1  # of the audio written
    strength: float = 1.0


def convert_file(url: str | Sequence[str], path: str | os.PathLike, out_path: str | os.PathLike,
                 texture: str | None, quality: str = "standard", start: float = 0.0,
                 duration: float | None = audio.DEFAULT_WINDOW_SECONDS, normalize: bool = True,
                 spectrogram_path: str | os.PathLike | None = None,
                 on_progress: Callable[[str, float], None] | None = None, *, timeout: float = 10.0,
                 token: str | None = None, cafile: str | None = None, exemplar: str | os.PathLike | None = None,
                 retry_delays: Sequence[float] = RETRY_DELAYS, strength: float = 1.0) -> ConvertInfo:
    """Upload ``path`` to the server at ``url``, convert the window (start, duration in
    seconds; duration None: the rest of the track from start, up to the server's limit) and write
    the audio to ``out_path`` (its extension picks the format; a stereo song stays
    stereo) and optionally the spectrogram PNG. url: one address, several
    comma-separated, or a list (failover: see the module's docstring; retry_delays,
    seconds, bounds the retries after a lost connection). texture: a built-in texture's
    name, in any case, or None with ``exemplar``: an audio file uploaded as the session's
    own texture. strength: 0 (the music unchanged) to 1 (the texture as tuned). token:
    the server's shared token; cafile: a CA file to trust for a wss:// server.

    on_progress(stage, fraction of the job) as the engine's callback: stages uploading,
    queued, analysing, transferring, reconstructing, encoding, downloading; fractions
    never go back. Raises InputError (a ServerError with the server's code, or a local one
    such as bad_server / bad_format / not_found / bad_window before connecting; one about
    the song or the exemplar file begins with its name) and ConnectionFailed or
    AccessDenied (one line, naming the addresses tried).
    """
    (outcome,) = convert_files(url, [(path, out_path, spectrogram_path)], texture, quality, start, duration,
                               normalize, lambda i, stage, fraction: on_progress and on_progress(stage, fraction),
                               timeout=timeout, token=token, cafile=cafile, exemplar=exemplar,
                               retry_delays=retry_delays, strength=strength, keep_going=False)
    return outcome


def convert_files(url: str | Sequence[str],
                  files: Sequence[tuple[str | os.PathLike, str | os.PathLike, str | os.PathLike | None]],
                  texture: str | None, quality: str = "standard", start: float = 0.0,
                  duration: float | None = audio.DEFAULT_WINDOW_SECONDS, normalize: bool = True,
                  on_progress: Callable[[int, str, float], None] | None = None, *, timeout: float = 10.0,
                  token: str | None = None, cafile: str | None = None, exemplar: str | os.PathLike | None = None,
                  retry_delays: Sequence[float] = RETRY_DELAYS, strength: float = 1.0,
                  keep_going: bool = True) -> list[ConvertInfo | InputError]:
    """:func:`convert_file` for several files in one session, one after another: files
    are (song, output, spectrogram PNG or None); the exemplar, if any, is uploaded once.
    on_progress(index of the file, stage, fraction). Returns, per file, its ConvertInfo,
    or with ``keep_going`` the InputError that file met (a bad file, a window past its
    end: the next file goes on); without it the first such error is raised. A lost
    connection is retried as convert_file's; ConnectionFailed and AccessDenied end it all."""
    servers = parse_servers(url)
    if (texture is None) == (exemplar is None):
        raise ValueError("give a texture or an exemplar, not both")
    jobs = []
    for song, out_path, png in files:
        out_path = os.fspath(out_path)
        jobs.append((os.fspath(song), out_path, audio.output_format(out_path), None if png is None else os.fspath(png)))
    for p in [song for song, *_ in jobs] + ([os.fspath(exemplar)] if exemplar is not None else []):
        if not os.path.isfile(p):
            raise InputError("not_found", f"{os.path.basename(p)}: no such file.")
    if texture is not None:
        texture = texture.strip().lower()  # as the server and models.texture read it
    if not (isinstance(strength, (int, float)) and 0.0 <= strength <= 1.0):
        raise InputError("bad_strength", f"The strength must be from 0 to 1 (got {strength!r}).")
    # NaN, infinite or negative: bad_window here (the track's length and the server's limit are the server's)
    audio.check_window(start, audio.MIN_WINDOW_SECONDS if duration is None else duration, math.nan,
                       max_seconds=math.inf)
    return asyncio.run(_convert(servers, jobs, texture, quality, start, duration, normalize, on_progress, timeout,
                                token, cafile, None if exemplar is None else os.fspath(exemplar),
                                tuple(retry_delays), float(strength), keep_going))


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


async def _convert(servers, jobs, texture, quality, start, duration, normalize, on_progress, timeout, token, cafile,
                   exemplar, retry_delays, strength, keep_going) -> list:
    done = [0.0]
    index = [0]

    def report(stage: str, fraction: float) -> None:
        if on_progress is not None:
            done[0] = max(done[0], fraction)
            on_progress(index[0], stage, done[0])

    notes: list[str] = []
    mine: list[str] = []
    sent_exemplar: list = []  # the welcome of the connection that has the exemplar (each connection has its own)

    async def flow(client: Client, song: str, fmt: str):
        """One file's flow on the connection at hand: (result, window warnings)."""
        texture_name = texture
        if exemplar is not None:
            if not sent_exemplar or sent_exemplar[0] is not client.welcome:
                with _naming(exemplar):
                    ex = await client.upload_exemplar(exemplar, on_progress=lambda got, size: report("uploading", 0.0))
                mine[:] = [f"{ex.name}: {n}" for n in ex.warnings]
                sent_exemplar[:] = [client.welcome]
            texture_name = protocol.EXEMPLAR
        with _naming(song):
            track = await client.upload(song, on_progress=lambda got, size: report("uploading", 0.0))
        window = track.window
        whole = duration is None and start == 0
        if not whole:  # from start for duration, or to the end (the server shortens a window past it)
            length = client.welcome.limits["window_seconds"] if duration is None else duration
            if (start, length) != (window.start, window.duration):
                window = await client.clip(start, length)
        result = await client.convert(
            texture_name, quality, fmt, normalize, strength=strength, whole=whole,
            on_progress=lambda stage, fraction, eta, pos: report(stage, fraction),
            on_download=lambda got, size: report("downloading", 1.0 if not size else 0.99 + 0.01 * got / size))
        return result, window.warnings

    outcomes: list = []
    async with Client(servers, name="musicoder-cli", open_timeout=timeout, token=token, cafile=cafile) as client:
        waits = (0.0, *retry_delays)  # before each retry after a loss: at once, then backing off
        retries, why = 0, None  # why: the loss since the last good connection
        for i, (song, out_path, fmt, png_path) in enumerate(jobs):
            index[0], done[0], notes = i, 0.0, []
            while True:
                try:
                    if not client.connected:
                        client.next_server()
                        await client.connect()
                        notes.append(f"{why}; carried on with {client.url}")
                        why = None
                    result, warnings = await flow(client, song, fmt)
                    break
                except AccessDenied:
                    raise
                except (ConnectionFailed, JobCancelled, ServerError) as err:
                    busy = isinstance(err, ServerError) and err.code == "busy"  # at capacity there, maybe not elsewhere
                    gone = busy or isinstance(err, ConnectionFailed) or (
                        client.shutdown is not None and getattr(err, "code", "shutting_down") == "shutting_down")
                    if not gone:  # the server's answer (bad input...), not its going away or its load: the same anywhere
                        if keep_going and isinstance(err, ServerError):
                            result = err
                            break
                        raise
                    if retries == len(waits):
                        if busy and keep_going:
                            result = err
                            break
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
            if isinstance(result, InputError):
                outcomes.append(result)
                continue
            await asyncio.to_thread(audio.write_file, out_path, result.audio)
            if png_path is not None:
                await asyncio.to_thread(audio.write_file, png_path, result.spectrogram)
            report("done", 1.0)
            outcomes.append(ConvertInfo(
                output=out_path, spectrogram=png_path, format=result.format, bytes=len(result.audio),
                duration=result.duration, start=result.start, job=result.job, texture=result.texture,
                quality=result.quality, timings=result.timings, warnings=(*warnings, *notes, *mine),
                server=client.welcome.server if client.welcome else "", url=client.url, channels=result.channels,
                strength=result.strength))
    return outcomes
