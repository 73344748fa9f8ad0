"""The ``musicoder`` command (a shell over the compute package, the models and the
client library): the engine in-process, or a server with ``--server``.

    musicoder convert IN [IN...] [-o OUT | --output-dir DIR [--format F]] [-y]
                      (--texture {laser,water,future} | --exemplar FILE) [--strength S]
                      [--quality {lofi,standard,hifi}] [--start S] [--duration D] [--spectrogram OUT.png]
                      [--no-normalize] [--jobs N] [--server URL[,URL...]]... [--token TOKEN] [--cafile CA.pem]
    musicoder textures [--json]
    musicoder reconstruct IN [IN...] [-o OUT] [-y] [--quality Q] [...]   (no texture: a round trip)

Without --start/--duration the whole track is converted (any length up to 30 min, in
blocks, streamed from file to file: memory does not grow with the song), in stereo when
the song is. Several inputs are converted in one process, spread over the cores (--jobs),
with one progress bar; a bad file is reported by name and the others go on, and the exit
status is that of the first failure, after a summary line.

A texture's name is read in any case (--texture Water). An output file (or --spectrogram
file) that exists is refused before any work unless -y/--overwrite is given; files are
written whole or not at all (a failure or Ctrl-C mid-way leaves none behind).

--server takes ws://host:port or wss://host:port; several (comma-separated, or the option
given again) are front ends of one service: one that cannot be reached is passed over, and
when the connection is lost mid-way the song, the window and the exemplar go to the next
one (client.convert_file).

Every error is one line on stderr, never a traceback, with an exit status that says
what kind it is (:data:`EXIT_STATUSES`, printed by --help): 2 bad input, 3 the output
cannot be written, 4 a broken installation (a hung ffmpeg too: every ffmpeg run is
killed past ``musicoder.audio.ffmpeg_timeout``), 5 and 6 no server, 130 Ctrl-C.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator

from musicoder import audio, convert, reconstruct
from musicoder.errors import InputError

EXIT_INPUT = 2  # the user's input was bad
EXIT_IO = 3  # we could not write the output (disk full, permissions)
EXIT_MODEL = 4  # a shipped model or ffmpeg is missing, corrupt or hangs: the installation is broken
EXIT_CONNECT = 5  # --server: no server could be reached, or the connection was lost and no retry got through
EXIT_ACCESS = 6  # --server: every server refused us at the handshake (no or wrong token, an Origin it does not allow)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


EXIT_STATUSES = (f"Exit status: 0 done; {EXIT_INPUT} bad input (a file that is not audio, a bad window, an "
                 f"unknown texture, an output that exists: see -y); {EXIT_IO} the output cannot be written; "
                 f"{EXIT_MODEL} a broken installation (a texture's settings missing or corrupt, no usable ffmpeg, "
                 f"or an ffmpeg that hangs: it is stopped after ${audio.FFMPEG_TIMEOUT_ENV} s, default "
                 f"{audio.FFMPEG_TIMEOUT_S:g}, plus a second per second of audio); {EXIT_CONNECT} no server "
                 f"reached; {EXIT_ACCESS} refused by every server; {EXIT_INTERRUPTED} interrupted (Ctrl-C).")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2) like every other error."""

    def error(self, message: str):
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _strength(text: str) -> float:
    """argparse type: a strength within 0..1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a number from 0 to 1, not {text!r}")
    return value


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="+", help="audio file(s): wav, mp3, mp4/m4a, flac, ogg, opus, ...")
    p.add_argument("-o", "--output", help="output file (one input only); its extension picks the format "
                                          f"({', '.join(audio.OUTPUT_FORMATS)}; default: IN_TEXTURE_QUALITY.wav "
                                          "in the current folder)")
    p.add_argument("--output-dir", metavar="DIR", help="write each output here, named IN_TEXTURE_QUALITY.FORMAT")
    p.add_argument("--format", choices=audio.OUTPUT_FORMATS, default="wav",
                   help="format of the outputs named for their input (default: wav)")
    p.add_argument("--quality", default="standard", help="lofi, standard or hifi (default: standard)")
    p.add_argument("--start", type=float, default=0.0, help="window start in seconds (default 0)")
    p.add_argument("--duration", type=float, default=None,
                   help=f"window length in seconds (default: the whole track, up to "
                        f"{audio.Limits.max_track_seconds / 60:g} min)")
    p.add_argument("--spectrogram", metavar="PNG", help="also write the output's spectrogram here (one input only)")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep the raw level, only guard against clipping (default: -16 LUFS, or lower where "
                        "a peak would pass -1 dBFS)")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace the output (and --spectrogram) file if it exists (default: refuse, before any work)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help=f"files converted at once (default: the number of cores, {os.cpu_count() or 1} here)")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="musicoder", description="Give music a new texture.", epilog=EXIT_STATUSES)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    conv = sub.add_parser("convert", help="give a song (or a window of it) a texture")
    _window_args(conv)
    kind = conv.add_mutually_exclusive_group(required=True)
    kind.add_argument("--texture", help="laser, water or future, in any case (see `musicoder textures`)")
    kind.add_argument("--exemplar", metavar="FILE", help="your own texture: an audio file of it, 2 to 30 s "
                                                         "(a longer one is cut to its first 30 s)")
    conv.add_argument("--strength", type=_strength, default=1.0, metavar="S",
                      help="how much texture, from 0 (the music unchanged) to 1 (the texture as tuned; the default)")
    conv.add_argument("--server", metavar="URL", action="append",
                      help="convert on a MusiCoder server (ws://host:port, or wss://host:port with TLS) instead of "
                           "in this process, the files one after another in one session; several, comma-separated "
                           "or --server again: one that cannot be reached is passed over, and if the connection is "
                           "lost mid-way the song, window and exemplar are sent again to the next one")
    conv.add_argument("--token", default=os.environ.get("MUSICODER_TOKEN") or None,
                      help="the server's shared token (default: $MUSICODER_TOKEN, which `ps` does not show)")
    conv.add_argument("--cafile", metavar="PEM", help="trust this CA (or self-signed) certificate for a wss:// "
                                                      "server (default: the system's CAs)")
    tex = sub.add_parser("textures", help="list the textures")
    tex.add_argument("--json", action="store_true", help="a JSON list of {name, description, exemplar}")
    what = ("re-render a song (or a window) through the same STFT, phase retrieval and level as convert, with no "
            "texture, phase retrieval starting from the music's own phase: the result is nearly the input, a check "
            "of decoding, the pipeline and encoding (not of phase retrieval from the magnitude alone)")
    rec = sub.add_parser("reconstruct", help=what, description=what[0].upper() + what[1:] + ".")
    _window_args(rec)
    return parser


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, float], None]]:
    """A tqdm bar fed by the engine's (stage, fraction) callback; silent off a terminal."""
    from tqdm import tqdm

    with tqdm(total=100, disable=not enabled, unit="%", file=sys.stderr,
              bar_format="{desc:<15} {bar} {percentage:3.0f}% {elapsed}") as bar:
        def update(stage: str, fraction: float) -> None:
            bar.set_description_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        yield update
        update("done", 1.0)


def check_output_path(path: str, fmt: str | None = None, overwrite: bool = False) -> None:
    """Fail before the work, not after it: a bad extension, a missing folder, or (unless
    ``overwrite``) a file that is there already: InputError ("bad_format", "bad_output",
    "exists")."""
    if fmt is None:
        audio.output_format(path)
    elif not path.lower().endswith("." + fmt):
        raise InputError("bad_format", f"{path}: the spectrogram is written as .{fmt}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("bad_output", f"Cannot write {path}: the folder {folder} does not exist.")
    if not overwrite and os.path.lexists(path):
        raise InputError("exists", f"{path} exists: use -y (--overwrite) to replace it.")


def _output_name(args: argparse.Namespace, song: str, suffix: str) -> str:
    """Where the output of ``song`` goes: -o, else IN_SUFFIX.FORMAT in --output-dir or here."""
    if args.output:
        return args.output
    name = f"{os.path.splitext(os.path.basename(song))[0]}_{suffix}.{args.format}"
    return os.path.join(args.output_dir, name) if args.output_dir else name


def _check_inputs(args: argparse.Namespace) -> None:
    """Usage errors of the file options, before any work: -o and --spectrogram name one
    file, so they take one input; --output-dir must be a folder."""
    if len(args.input) > 1 and (args.output or args.spectrogram):
        raise InputError("bad_output", f"{len(args.input)} inputs: give --output-dir DIR (or none: the current "
                                       f"folder) rather than -o or --spectrogram, which name one file.")
    if args.output and args.output_dir:
        raise InputError("bad_output", "give -o FILE or --output-dir DIR, not both.")
    if args.output_dir and not os.path.isdir(args.output_dir):
        raise InputError("bad_output", f"--output-dir {args.output_dir}: no such folder.")


def _named(path: str, err: InputError) -> InputError:
    """``err`` about the file at ``path``, its message beginning with the file's name."""
    name = os.path.basename(path)
    if err.message.startswith(f"{name}: "):  # not_found names it already
        return err
    return InputError(err.code, f"{name}: {err.message}")


def _load_named(load: Callable[..., audio.Clip], path: str, **window: float) -> audio.Clip:
    """``load(path, **window)`` (audio.load or audio.load_exemplar), its InputError
    prefixed with the file's name: which of the song and the exemplar is bad."""
    try:
        return load(path, **window)
    except InputError as err:
        raise _named(path, err) from None


def _texture_name(args: argparse.Namespace) -> str | None:
    """What the output is named after: the texture, the exemplar file's name, or None."""
    if getattr(args, "exemplar", None):
        return os.path.splitext(os.path.basename(args.exemplar))[0]
    return getattr(args, "texture", None)


@dataclasses.dataclass(frozen=True)
class Job:
    """One local conversion: the song, its output (and spectrogram PNG or None), the texture
    (a built-in name, or an exemplar file; neither: a round trip) and how."""

    song: str
    output: str
    spectrogram: str | None
    texture: str | None
    exemplar: str | None
    quality: str
    start: float
    duration: float | None
    normalize: bool
    strength: float
    title: str


def _transform(texture: str | None, exemplar: str | None):
    """The transfer for a built-in texture's name or an exemplar file (None for neither):
    the model's :class:`musicoder.texture.Transfer`, which the engine plans over a whole song."""
    import models

    samples = None if exemplar is None else _load_named(audio.load_exemplar, exemplar).samples
    model = models.resolve(texture, samples)
    return None if model is None else model.transfer


def _run_job(job: Job, transform, on_progress: Callable[[str, float], None] | None = None) -> convert.FileConverted:
    """Convert one song to its files with ``transform`` (:func:`_transform` of the job's
    texture; streaming: :func:`musicoder.convert.convert_file`); an InputError about the
    song begins with its name."""
    try:
        return convert.convert_file(job.song, job.output, reconstruct.quality(job.quality), transform,
                                    strength=job.strength, normalize=job.normalize, start=job.start,
                                    duration=job.duration, spectrogram_path=job.spectrogram, title=job.title,
                                    on_progress=on_progress)
    except InputError as err:
        raise _named(job.song, err) from None


def _jobs(args: argparse.Namespace) -> list[Job]:
    """The local conversions that the command line asks for, each output checked."""
    quality = reconstruct.quality(args.quality)
    texture = _texture_name(args)
    strength = getattr(args, "strength", 1.0)
    label = f"{texture or 'no texture'}" + (f" at {strength:g}" if texture and strength != 1.0 else "")
    jobs = [Job(song=song, output=_output_name(args, song, f"{texture or 'plain'}_{quality.name}"),
                spectrogram=args.spectrogram, texture=getattr(args, "texture", None),
                exemplar=getattr(args, "exemplar", None), quality=quality.name, start=args.start,
                duration=args.duration, normalize=not args.no_normalize, strength=strength,
                title=f"{os.path.basename(song)} · {label} · {quality.label}") for song in args.input]
    _check_unique([j.output for j in jobs])
    return jobs


def _check_unique(outputs: list[str]) -> None:
    """InputError("bad_output") when two inputs would write the same output file."""
    seen: dict[str, str] = {}
    for out in outputs:
        key = os.path.abspath(out)
        if key in seen:
            raise InputError("bad_output", f"two inputs would both be written to {out}: rename one, or convert "
                                           f"them in separate folders.")
        seen[key] = out


def _render_to_files(args: argparse.Namespace) -> int:
    """The shared body of convert and reconstruct: check the outputs, resolve the texture
    (a bad exemplar stops everything before any work), convert each song to its files."""
    _check_inputs(args)
    jobs = _jobs(args)
    if len(jobs) == 1:
        _check_outputs(jobs[0].output, jobs[0].spectrogram, args.overwrite)
    notes = []
    if getattr(args, "exemplar", None):
        exemplar = _load_named(audio.load_exemplar, args.exemplar)
        notes += [f"{os.path.basename(args.exemplar)}: {n}" for n in exemplar.warnings]
    transform = _transform(jobs[0].texture, jobs[0].exemplar)  # a broken texture or exemplar fails here, once
    for note in notes:
        print(f"musicoder: warning: {note}", file=sys.stderr)
    if len(jobs) > 1:
        return _run_many(jobs, args)
    with _progress_bar(sys.stderr.isatty()) as progress:
        result = _run_job(jobs[0], transform, progress)
    for note in result.warnings:
        print(f"musicoder: warning: {note}", file=sys.stderr)
    print(result.output)
    return 0


def _check_outputs(output: str, spectrogram: str | None, overwrite: bool) -> None:
    """One song's output and spectrogram paths, checked before any work."""
    check_output_path(output, overwrite=overwrite)
    if spectrogram:
        check_output_path(spectrogram, "png", overwrite=overwrite)


_PROGRESS = None  # a worker's queue for (job index, fraction done)


def _init_worker(queue) -> None:
    """In each worker process: where progress goes; Ctrl-C is the parent's to handle."""
    import signal

    global _PROGRESS
    _PROGRESS = queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_in_worker(index: int, job: Job) -> tuple[str, tuple[str, ...]] | tuple[int, str]:
    """:func:`_run_job` in a worker: (output, warnings), or (exit status, message) for a
    file that failed (the others go on)."""
    last = [0.0]

    def report(stage: str, fraction: float) -> None:
        if fraction - last[0] >= 0.01 or fraction >= 1.0:
            last[0] = fraction
            _PROGRESS.put((index, fraction))

    try:
        result = _run_job(job, _transform(job.texture, job.exemplar), report)
        return result.output, result.warnings
    except Exception as err:  # noqa: BLE001 - each kind becomes its exit status, as main() gives
        status, message = _failure(err)
        if status is None:
            raise
        return status, message


def _run_many(jobs: list[Job], args: argparse.Namespace) -> int:
    """Convert the songs of ``jobs`` over --jobs worker processes (default: the cores), with
    one progress bar for all; print each output, each failure (naming the file) and a
    summary line. The exit status is the first failed file's, 0 when none failed."""
    import concurrent.futures
    import multiprocessing
    import queue as queues

    from tqdm import tqdm

    results: dict[int, tuple] = {}
    todo = []
    for i, job in enumerate(jobs):  # an output that is there already fails that file alone, before any work
        try:
            _check_outputs(job.output, job.spectrogram, args.overwrite)
            todo.append(i)
        except InputError as err:
            results[i] = (EXIT_INPUT, f"{os.path.basename(job.song)}: {err.message}")
            print(f"musicoder: error: {results[i][1]}", file=sys.stderr)
    workers = max(1, min(args.jobs or os.cpu_count() or 1, len(todo) or 1))
    # spawned, not forked: the parent has used OpenMP (numpy's BLAS), which a fork breaks
    context = multiprocessing.get_context("spawn")
    progress = context.Queue()
    done = {i: 0.0 for i in todo}
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                                initargs=(progress,)) as pool:
        futures = {pool.submit(_run_in_worker, i, jobs[i]): i for i in todo}
        with tqdm(total=len(todo) * 100, disable=not sys.stderr.isatty(), file=sys.stderr, unit="%",
                  bar_format=f"{len(todo)} files {{bar}} {{percentage:3.0f}}% {{elapsed}}") as bar:
            pending = set(futures)
            while pending:
                finished, pending = concurrent.futures.wait(pending, timeout=0.2)
                with contextlib.suppress(queues.Empty):
                    while True:
                        i, fraction = progress.get_nowait()
                        done[i] = max(done[i], fraction)
                for future in finished:
                    i = futures[future]
                    done[i] = 1.0
                    results[i] = future.result()
                    if isinstance(results[i][0], int):
                        bar.write(f"musicoder: error: {results[i][1]}", file=sys.stderr)
                    else:
                        for note in results[i][1]:
                            bar.write(f"musicoder: warning: {os.path.basename(jobs[i].song)}: {note}", file=sys.stderr)
                        print(results[i][0], flush=True)
                bar.update(round(sum(done.values()) * 100) - bar.n)
    failed = [i for i in sorted(results) if isinstance(results[i][0], int)]
    names = ", ".join(os.path.basename(jobs[i].song) for i in failed)
    print(f"musicoder: {len(jobs) - len(failed)} of {len(jobs)} files converted"
          + (f"; {len(failed)} failed: {names}" if failed else ""), file=sys.stderr)
    return results[failed[0]][0] if failed else 0


def _convert_on_server(args: argparse.Namespace) -> int:
    """convert --server URL[,URL...]: upload, convert and download through the client
    library, several files one after another in one session."""
    import client

    _check_inputs(args)
    servers = client.parse_servers(args.server)  # a bad address: InputError, before any work
    if args.texture is not None:  # the server reads any case; the output's name is the lower-case one
        args.texture = args.texture.strip().lower()
    suffix = f"{_texture_name(args)}_{args.quality}"
    options = dict(texture=args.texture, quality=args.quality, start=args.start, duration=args.duration,
                   normalize=not args.no_normalize, token=args.token, cafile=args.cafile, exemplar=args.exemplar,
                   strength=args.strength)
    if len(args.input) == 1:
        output = _output_name(args, args.input[0], suffix)
        _check_outputs(output, args.spectrogram, args.overwrite)
        with _progress_bar(sys.stderr.isatty()) as progress:
            info = client.convert_file(servers, args.input[0], output, spectrogram_path=args.spectrogram,
                                       on_progress=progress, **options)
        for note in info.warnings:
            print(f"musicoder: warning: {note}", file=sys.stderr)
        print(output)
        return 0
    outputs = [_output_name(args, song, suffix) for song in args.input]
    _check_unique(outputs)
    files, failed = [], {}
    for song, output in zip(args.input, outputs):
        try:
            _check_outputs(output, None, args.overwrite)
            files.append((song, output, None))
        except InputError as err:
            failed[song] = (EXIT_INPUT, f"{os.path.basename(song)}: {err.message}")
            print(f"musicoder: error: {failed[song][1]}", file=sys.stderr)
    from tqdm import tqdm

    with tqdm(total=len(files) * 100, disable=not sys.stderr.isatty(), file=sys.stderr, unit="%",
              bar_format=f"{len(files)} files {{bar}} {{percentage:3.0f}}% {{elapsed}}") as bar:
        def progress(index: int, stage: str, fraction: float) -> None:
            bar.update(round((index + fraction) * 100) - bar.n)

        outcomes = client.convert_files(servers, files, on_progress=progress, keep_going=True, **options) \
            if files else []
    for (song, output, _), outcome in zip(files, outcomes):
        if isinstance(outcome, InputError):
            failed[song] = (EXIT_INPUT, str(_named(song, outcome).message))
            print(f"musicoder: error: {failed[song][1]}", file=sys.stderr)
        else:
            for note in outcome.warnings:
                print(f"musicoder: warning: {os.path.basename(song)}: {note}", file=sys.stderr)
            print(output)
    names = [s for s in args.input if s in failed]
    print(f"musicoder: {len(args.input) - len(names)} of {len(args.input)} files converted"
          + (f"; {len(names)} failed: {', '.join(os.path.basename(s) for s in names)}" if names else ""),
          file=sys.stderr)
    return failed[names[0]][0] if names else 0


def run_convert(args: argparse.Namespace) -> int:
    if args.server is not None:
        return _convert_on_server(args)
    if args.texture is not None:
        import models

        args.texture = models.texture(args.texture).name  # an unknown name fails before any work
    return _render_to_files(args)


def run_reconstruct(args: argparse.Namespace) -> int:
    return _render_to_files(args)


def run_textures(args: argparse.Namespace) -> int:
    import models

    rows = [{"name": t.name, "description": t.description, "exemplar": os.path.abspath(t.exemplar_path)}
            for t in models.TEXTURES.values()]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['name']:8s} {row['description']}\n{'':8s} preview: {row['exemplar']}")
    return 0


def _failure(err: BaseException, token: str | None = None) -> tuple[int | None, str]:
    """The exit status and the one-line message for an error (status None: not one we
    expect, to be raised). ``token``: whether one was given, for an access hint."""
    if isinstance(err, InputError):
        return EXIT_INPUT, str(err)
    if isinstance(err, OSError):
        where = f"cannot write {err.filename}" if err.filename else "cannot write the output"
        return EXIT_IO, f"{where}: {err.strerror or err}"
    from client import AccessDenied, ConnectionFailed
    from models import ModelError

    if isinstance(err, AccessDenied):
        hint = " (give it with --token or MUSICODER_TOKEN)" if err.status == 401 and not token else ""
        return EXIT_ACCESS, f"{err}{hint}"
    if isinstance(err, ConnectionFailed):
        return EXIT_CONNECT, str(err)
    if isinstance(err, (ModelError, audio.NoFfmpeg)):
        return EXIT_MODEL, str(err)
    return None, str(err)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"convert": run_convert, "textures": run_textures, "reconstruct": run_reconstruct}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("musicoder: interrupted (no partly written file is left)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        status, message = _failure(err, getattr(args, "token", None))
        if status is None:
            raise
        print(f"musicoder: error: {message}", file=sys.stderr)
        return status
