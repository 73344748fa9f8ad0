"""The ``musicoder`` command: the engine in-process, no server needed.

    musicoder reconstruct IN [-o OUT] [--quality Q] [--start S] [--duration D]
                          [--spectrogram PNG] [--no-normalize]

Bad input ends with one line on stderr and a non-zero exit, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from . import audio, engine, reconstruct, render
from .errors import InputError

EXIT_INPUT = 2  # the user's input was bad
EXIT_IO = 3  # we could not write the output (disk full, permissions)


def _window_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="audio file: wav, mp3, mp4/m4a, flac, ogg, opus, ...")
    p.add_argument("-o", "--output", help="output file; its extension picks the format "
                                          f"({', '.join(audio.OUTPUT_FORMATS)}; default wav)")
    p.add_argument("--quality", default="standard", type=str.lower, choices=list(reconstruct.QUALITIES),
                   help="reconstruction quality (default: standard)")
    p.add_argument("--start", type=float, default=0.0, help="window start in seconds (default 0)")
    p.add_argument("--duration", type=float, default=audio.DEFAULT_WINDOW_SECONDS,
                   help=f"window length in seconds (default {audio.DEFAULT_WINDOW_SECONDS:g})")
    p.add_argument("--spectrogram", metavar="PNG", help="also write the output's spectrogram here")
    p.add_argument("--no-normalize", action="store_true",
                   help="keep the raw level (only guard against clipping)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicoder", description="Give music a new texture.")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("reconstruct", help="re-render a window through the spectrogram, no texture "
                                             "(checks decoding and reconstruction quality)")
    _window_args(rec)
    return parser


@contextlib.contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, float], None]]:
    """A tqdm bar fed by the engine's (stage, fraction) callback; silent off a terminal."""
    from tqdm import tqdm

    with tqdm(total=100, disable=not enabled, unit="%", bar_format="{desc:<15} {bar} {percentage:3.0f}% {elapsed}",
              file=sys.stderr) as bar:
        def update(stage: str, fraction: float) -> None:
            bar.set_description_str(stage)
            bar.update(round(fraction * 100) - bar.n)

        yield update
        update("done", 1.0)


def default_output(input_path: str, suffix: str) -> str:
    stem = os.path.splitext(os.path.basename(input_path))[0]
    return f"{stem}_{suffix}.wav"


def check_output_path(path: str, fmt: str | None = None) -> None:
    """Fail before the work, not after it: a bad extension or a missing folder."""
    if fmt is None:
        audio.output_format(path)
    elif not path.lower().endswith("." + fmt):
        raise InputError("bad_format", f"{path}: the spectrogram is written as .{fmt}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("bad_output", f"Cannot write {path}: the folder {folder} does not exist.")


def run_reconstruct(args: argparse.Namespace) -> int:
    output = args.output or default_output(args.input, args.quality)
    check_output_path(output)
    if args.spectrogram:
        check_output_path(args.spectrogram, "png")
    clip = audio.load(args.input, start=args.start, duration=args.duration)
    for note in clip.warnings:
        print(f"musicoder: warning: {note}", file=sys.stderr)
    with _progress_bar(sys.stderr.isatty()) as progress:
        result = engine.render(clip.samples, args.quality, normalize=not args.no_normalize,
                               on_progress=progress)
        _write_outputs(result.samples, output, args.spectrogram,
                       f"{os.path.basename(args.input)} · {args.quality} · no texture")
    print(output)
    return 0


def _write_outputs(samples, output: str, spectrogram: str | None, title: str) -> None:
    audio.save(samples, output)
    if spectrogram:
        data = render.spectrogram_png(samples, title)
        with open(spectrogram, "wb") as f:
            f.write(data)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"reconstruct": run_reconstruct}
    try:
        return commands[args.command](args)
    except InputError as err:
        print(f"musicoder: error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:
        print(f"musicoder: error: cannot write the output: {err.strerror or err}", file=sys.stderr)
        return EXIT_IO
    except KeyboardInterrupt:
        print("musicoder: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
