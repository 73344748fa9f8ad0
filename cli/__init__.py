"""The ``musicoder`` command (a shell over the compute package, the models and the
client library): the engine in-process, or a server with ``--server``.

    musicoder convert IN [-o OUT] [-y] (--texture {laser,water,future} | --exemplar FILE)
                      [--quality {lofi,standard,hifi}] [--start S] [--duration D] [--spectrogram OUT.png]
                      [--no-normalize] [--server URL[,URL...]]... [--token TOKEN] [--cafile CA.pem]
    musicoder textures [--json]
    musicoder reconstruct IN [-o OUT] [-y] [--quality Q] [...]   (no texture: a round trip)

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


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="audio file: wav, mp3, mp4/m4a, flac, ogg, opus, ...")
    p.add_argument("-o", "--output", help="output file; its extension picks the format "
                                          f"({', '.join(audio.OUTPUT_FORMATS)}; default: IN_TEXTURE_QUALITY.wav)")
    p.add_argument("--quality", default="standard", help="lofi, standard or hifi (default: standard)")
    p.add_argument("--start", type=float, default=0.0, help="window start in seconds (default 0)")
    p.add_argument("--duration", type=float, default=audio.DEFAULT_WINDOW_SECONDS,
                   help=f"window length in seconds (default {audio.DEFAULT_WINDOW_SECONDS:g})")
    p.add_argument("--spectrogram", metavar="PNG", help="also write the output's spectrogram here")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep the raw level, only guard against clipping (default: -16 LUFS, or lower where "
                        "a peak would pass -1 dBFS)")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace the output (and --spectrogram) file if it exists (default: refuse, before any work)")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="musicoder", description="Give music a new texture.", epilog=EXIT_STATUSES)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    conv = sub.add_parser("convert", help="give a window of a song a texture")
    _window_args(conv)
    kind = conv.add_mutually_exclusive_group(required=True)
    kind.add_argument("--texture", help="laser, water or future, in any case (see `musicoder textures`)")
    kind.add_argument("--exemplar", metavar="FILE", help="your own texture: an audio file of it, 2 to 30 s "
                                                         "(a longer one is cut to its first 30 s)")
    conv.add_argument("--server", metavar="URL", action="append",
                      help="convert on a MusiCoder server (ws://host:port, or wss://host:port with TLS) instead of "
                           "in this process; several, comma-separated or --server again: one that cannot be reached "
                           "is passed over, and if the connection is lost mid-way the song, window and exemplar "
                           "are sent again to the next one")
    conv.add_argument("--token", default=os.environ.get("MUSICODER_TOKEN") or None,
                      help="the server's shared token (default: $MUSICODER_TOKEN, which `ps` does not show)")
    conv.add_argument("--cafile", metavar="PEM", help="trust this CA (or self-signed) certificate for a wss:// "
                                                      "server (default: the system's CAs)")
    tex = sub.add_parser("textures", help="list the textures")
    tex.add_argument("--json", action="store_true", help="a JSON list of {name, description, exemplar}")
    what = ("re-render a window through the same STFT, phase retrieval and level as convert, with no texture, "
            "phase retrieval starting from the music's own phase: the result is nearly the input, a check of "
            "decoding, the pipeline and encoding (not of phase retrieval from the magnitude alone)")
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


def _checked_output(args: argparse.Namespace, suffix: str) -> str:
    """The output path (given, or IN_SUFFIX.wav in the current folder), checked with the
    spectrogram's before any work."""
    output = args.output or f"{os.path.splitext(os.path.basename(args.input))[0]}_{suffix}.wav"
    check_output_path(output, overwrite=args.overwrite)
    if args.spectrogram:
        check_output_path(args.spectrogram, "png", overwrite=args.overwrite)
    return output


def _load_named(load: Callable[..., audio.Clip], path: str, **window: float) -> audio.Clip:
    """``load(path, **window)`` (audio.load or audio.load_exemplar), its InputError
    prefixed with the file's name: which of the song and the exemplar is bad."""
    try:
        return load(path, **window)
    except InputError as err:
        name = os.path.basename(path)
        if err.message.startswith(f"{name}: "):  # not_found names it already
            raise
        raise InputError(err.code, f"{name}: {err.message}") from None


def _texture_name(args: argparse.Namespace) -> str | None:
    """What the output is named after: the texture, the exemplar file's name, or None."""
    if getattr(args, "exemplar", None):
        return os.path.splitext(os.path.basename(args.exemplar))[0]
    return getattr(args, "texture", None)


def _render_to_files(args: argparse.Namespace) -> int:
    """The shared body of convert and reconstruct: decode, resolve the texture, convert,
    write (each file whole or not at all)."""
    import models

    quality = reconstruct.quality(args.quality)
    texture = _texture_name(args)
    output = _checked_output(args, f"{texture or 'plain'}_{quality.name}")
    clip = _load_named(audio.load, args.input, start=args.start, duration=args.duration)
    notes = list(clip.warnings)
    exemplar = None
    if getattr(args, "exemplar", None):
        exemplar = _load_named(audio.load_exemplar, args.exemplar)
        notes += [f"{os.path.basename(args.exemplar)}: {n}" for n in exemplar.warnings]
    model = models.resolve(getattr(args, "texture", None), None if exemplar is None else exemplar.samples)
    for note in notes:
        print(f"musicoder: warning: {note}", file=sys.stderr)
    with _progress_bar(sys.stderr.isatty()) as progress:
        result = convert.convert(clip.samples, quality, None if model is None else model.transform,
                                 normalize=not args.no_normalize, format=audio.output_format(output),
                                 title=f"{os.path.basename(args.input)} · {texture or 'no texture'} · {quality.label}",
                                 spectrogram=bool(args.spectrogram), on_progress=progress)
        audio.write_file(output, result.audio)
        if args.spectrogram:
            audio.write_file(args.spectrogram, result.spectrogram)
    print(output)
    return 0


def _convert_on_server(args: argparse.Namespace) -> int:
    """convert --server URL[,URL...]: upload, convert and download through the client library."""
    import client

    servers = client.parse_servers(args.server)  # a bad address: InputError, before any work
    if args.texture is not None:  # the server reads any case; the output's name is the lower-case one
        args.texture = args.texture.strip().lower()
    output = _checked_output(args, f"{_texture_name(args)}_{args.quality}")
    with _progress_bar(sys.stderr.isatty()) as progress:
        info = client.convert_file(servers, args.input, output, args.texture, args.quality, start=args.start,
                                   duration=args.duration, normalize=not args.no_normalize,
                                   spectrogram_path=args.spectrogram, on_progress=progress, token=args.token,
                                   cafile=args.cafile, exemplar=args.exemplar)
    for note in info.warnings:
        print(f"musicoder: warning: {note}", file=sys.stderr)
    print(output)
    return 0


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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"convert": run_convert, "textures": run_textures, "reconstruct": run_reconstruct}
    try:
        return commands[args.command](args)
    except InputError as err:
        print(f"musicoder: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:
        where = f"cannot write {err.filename}" if err.filename else "cannot write the output"
        print(f"musicoder: error: {where}: {err.strerror or err}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("musicoder: interrupted (no partly written file is left)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        from client import AccessDenied, ConnectionFailed
        from models import ModelError

        if isinstance(err, AccessDenied):
            hint = " (give it with --token or MUSICODER_TOKEN)" if err.status == 401 and not args.token else ""
            print(f"musicoder: error: {err}{hint}", file=sys.stderr)
            return EXIT_ACCESS
        if isinstance(err, ConnectionFailed):
            print(f"musicoder: error: {err}", file=sys.stderr)
            return EXIT_CONNECT

        if isinstance(err, (ModelError, audio.NoFfmpeg)):
            print(f"musicoder: error: {err}", file=sys.stderr)
            return EXIT_MODEL
        raise
