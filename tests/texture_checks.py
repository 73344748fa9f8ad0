"""What a texture conversion must do, as small checks with the measures that say so.

A :class:`Conversion` holds one song's music, its plain re-render (the same engine, no
texture), the converted output and the exemplar, all at ``models.metrics.SR``. Each
``check_*`` raises AssertionError, with the numbers, when the output fails one claim:

* check_moves_toward_the_exemplar: closer to the exemplar (models.metrics.style_distance)
  than the plain re-render, by a margin (not merely "changed");
* check_moves_toward_this_exemplar: toward the exemplar it was given more than toward
  the built-in textures' exemplars (a user's exemplar that the path ignored fails);
* check_keeps_the_music: the music's chroma kept where the texture keeps the music;
* check_keeps_the_rhythm: the music's onsets kept (onset-strength correlation);
* check_not_the_exemplar_pasted_in: not as near the exemplar as the exemplar itself is.

The thresholds sit between what the real engine reaches and what the wrong engines of
``tests.broken_engines`` reach, measured on two 4 s songs at Standard quality: the
synthetic song below (nothing was tuned on it) and the bundled demo clip from 2 s
(conftest's demo_samples; SONG_WINDOW_S). Each threshold's comment gives both sides.
``tests.test_broken_engines`` keeps them honest: every wrong engine must fail its check.
"""
from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import librosa
import numpy as np
import soundfile

import cli
import client
import models
import protocol
from models.metrics import HOP, SR, chroma_similarity, style_distance
from musicoder import audio, engine

from .conftest import DEMO_CLIP, REPO

QUALITY = "standard"  # every measured number below is at this quality
SONG_WINDOW_S = (2.0, 4.0)  # (start, duration) of the demo clip: conftest's demo_samples
# a user's own exemplar: a real file passed as a user's (any.json gives its sound the
# settings of the tuning recording "tractor_beam": a 1 kHz crossover, not future's)
USER_EXEMPLAR = REPO / "models" / "exemplars" / "future.flac"

# dB closer to the exemplar than the plain re-render. The real engine: synthetic song
# laser 13.5, water 8.0, future 10.9, USER_EXEMPLAR 10.9 (least 8.0); demo laser 3.7,
# water 0.9, future 3.5, USER_EXEMPLAR 3.3 (least 0.9). Wrong engines: the identity 0.0 on
# both; noise under the music's envelopes 2.7 / 0.05 at most; a fixed hiss in place of the
# exemplar -3.7 at most on the demo (up to 6.8 on the synthetic song, whose bare highs any
# noise fills); textures only above 6 kHz 3.0 at most on the synthetic song (up to 2.2 on
# the demo). So each song's bar sits in its gap, and each wrong engine fails on one song.
MOVED_MIN_DB = {"synthetic": 5.0, "demo": 0.5}
# dB more toward the exemplar given than toward any other built-in exemplar, on the demo
# (on the bare synthetic song any texture with highs moves toward every exemplar). The
# real engine with USER_EXEMPLAR: 4.6 (with laser.flac as a user's: 1.5). A path that used
# a built-in texture in its place: water -0.4, laser -4.7; the identity 0.0; a fixed hiss -2.6.
SPECIFIC_MIN_DB = {"demo": 1.0}
# chroma correlation with the music below a band's width under the crossover, where the
# texture keeps the music's fine structure. The real engine: synthetic at least 0.86
# (laser), demo at least 0.93 (laser, water). Noise under the music's envelopes: 0.50 /
# 0.70 at most; the exemplar pasted in: 0.28 / 0.13 at most.
CHROMA_MIN = {"synthetic": 0.7, "demo": 0.8}
# onset-strength correlation with the music. The real engine: at least 0.85 (future on the
# demo, USER_EXEMPLAR on the synthetic song); the exemplar pasted in: 0.51 at most.
ONSETS_MIN = 0.65
# style distance (dB) from the exemplar. A 4 s window of an exemplar is 1.9 to 2.7 dB
# from the whole of it, and the exemplar pasted in 1.8 to 2.4; the real engine keeps the
# music's own sound below its crossover: at least 4.5 (future on the demo).
PASTED_MAX_DB = 3.5


def synthetic_song(seconds: float = 4.0, rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Music no texture was tuned on: a I-vi-IV-V progression of harmonic notes with a
    kick and hi-hat pattern at 120 BPM. (n,) float32 at ``rate``."""
    t = np.arange(int(seconds * rate)) / rate
    y = np.zeros_like(t)
    chords = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    beat = 0.5
    for i in range(int(seconds / beat)):
        start = int(i * beat * rate)
        seg = t[: int(beat * rate)]
        env = np.exp(-3 * seg)
        for note in chords[(i // 2) % 4]:
            f = 440 * 2 ** ((note - 69) / 12)
            tone = sum(np.sin(2 * np.pi * f * h * seg) / h for h in range(1, 6))
            y[start:start + len(seg)] += 0.15 * env * tone
        kick = np.sin(2 * np.pi * 60 * seg * np.exp(-8 * seg)) * np.exp(-20 * seg)
        y[start:start + len(seg)] += 0.5 * kick
        hat = np.random.default_rng(i).standard_normal(len(seg)) * np.exp(-60 * seg)
        y[start + len(seg) // 2:start + len(seg)] += 0.08 * hat[: len(seg) - len(seg) // 2]
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def at_metric_rate(y: np.ndarray) -> np.ndarray:
    """(n,) float at the engine's rate → the same sound at ``models.metrics.SR``."""
    return audio.resample(np.asarray(y, np.float32), audio.SAMPLE_RATE, SR)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """One song through one texture: ``song`` ("synthetic" or "demo": the thresholds are
    per song), then (n,) float arrays at ``models.metrics.SR``: the ``music``, its ``plain``
    re-render, the ``output``, the ``exemplar``; ``kept_below_hz``: where the texture keeps
    the music's fine structure (a band's width under its crossover: bands are 1.14 apart)."""

    song: str
    music: np.ndarray
    plain: np.ndarray
    output: np.ndarray
    exemplar: np.ndarray
    kept_below_hz: float

    def __repr__(self) -> str:
        return f"Conversion({self.song})"


def conversion(song: str, music: np.ndarray, output: np.ndarray, exemplar: np.ndarray,
               crossover_hz: float) -> Conversion:
    """A Conversion from (n,) float arrays at the engine's rate: the music, the output
    (made anywhere: in-process, a server, the CLI's file) and the exemplar; the plain
    re-render is made here at QUALITY."""
    plain = engine.render(music, QUALITY).samples
    return Conversion(song, at_metric_rate(music), at_metric_rate(plain), at_metric_rate(output),
                      at_metric_rate(exemplar), crossover_hz / 1.25)


def convert(song: str, music: np.ndarray, model, exemplar: np.ndarray) -> Conversion:
    """``music`` ((n,) float at the engine's rate) through ``model`` (a models.TextureModel)
    at QUALITY, in this process; ``exemplar`` the samples the model was made from."""
    output = engine.render(music, QUALITY, model.transform).samples
    return conversion(song, music, output, exemplar, model.settings.crossover_hz)


def songs(demo: np.ndarray) -> dict[str, np.ndarray]:
    """The songs the thresholds were measured on, by name: the synthetic song and
    ``demo`` (conftest's demo_samples: the demo clip's SONG_WINDOW_S)."""
    return {"synthetic": synthetic_song(), "demo": demo}


def exemplar_samples(path) -> np.ndarray:
    """A built-in texture's exemplar file, all of it, at the engine's rate."""
    return audio.load(path, duration=None).samples


def other_exemplars(path=USER_EXEMPLAR) -> dict[str, np.ndarray]:
    """The built-in textures' exemplars but the file at ``path``, at the metric's rate, by
    texture name: what a user's exemplar must move toward less than toward itself."""
    return {name: at_metric_rate(exemplar_samples(t.exemplar_path)) for name, t in models.TEXTURES.items()
            if Path(t.exemplar_path).resolve() != Path(path).resolve()}


def texture_conversions(name: str, music: dict[str, np.ndarray]) -> list[Conversion]:
    """Each of ``music`` ({song: samples}) through built-in texture ``name``, in-process."""
    exemplar = exemplar_samples(models.TEXTURES[name].exemplar_path)
    model = models.load(name)
    return [convert(song, x, model, exemplar) for song, x in music.items()]


def user_conversions(music: dict[str, np.ndarray], path=USER_EXEMPLAR) -> list[Conversion]:
    """Each of ``music`` through the user's exemplar at ``path`` (read as the CLI reads
    one), in-process."""
    exemplar = audio.load_exemplar(path).samples
    model = models.from_exemplar(exemplar)
    return [convert(song, x, model, exemplar) for song, x in music.items()]


def user_conversion(song: str, music: np.ndarray, output: np.ndarray, path=USER_EXEMPLAR) -> Conversion:
    """A Conversion of ``output`` (made anywhere: a server, the CLI's file) from ``music``
    through the user's exemplar at ``path``, with the crossover models gives its sound."""
    exemplar = audio.load_exemplar(path).samples
    return conversion(song, music, output, exemplar, models.from_exemplar(exemplar).settings.crossover_hz)


# ---- the same conversions through the shells -------------------------------------------

def decoded(data: bytes) -> np.ndarray:
    """A WAV's bytes (a server's output) as (n,) float32 at the engine's rate: a stereo
    one's mid, which is what converting the music's mid gives (the engine textures the mid)."""
    y, rate = soundfile.read(io.BytesIO(data), dtype="float32")
    assert rate == audio.SAMPLE_RATE and y.ndim in (1, 2)
    return y if y.ndim == 1 else y.mean(axis=1)


def served(url: str, song, start: float, texture: str | None = None, exemplar=None) -> np.ndarray:
    """A window (start s, SONG_WINDOW_S's duration) of the file ``song`` converted on the
    server at ``url`` with a built-in ``texture`` or a user's ``exemplar`` file, at QUALITY,
    through the client library: the output, (n,) float32 at the engine's rate."""
    async def main() -> bytes:
        async with client.Client(url, request_timeout=180) as c:
            if exemplar is not None:
                await c.upload_exemplar(exemplar)
            await c.upload(song)
            await c.clip(start, SONG_WINDOW_S[1])
            r = await c.convert(protocol.EXEMPLAR if exemplar is not None else texture, QUALITY, "wav")
            return r.audio

    return decoded(asyncio.run(asyncio.wait_for(main(), 300)))


def served_user_conversion(url: str, demo: np.ndarray) -> Conversion:
    """The demo window through USER_EXEMPLAR, uploaded as a user's own exemplar to the
    server at ``url``; ``demo``: conftest's demo_samples."""
    return user_conversion("demo", demo, served(url, DEMO_CLIP, SONG_WINDOW_S[0], exemplar=USER_EXEMPLAR))


def cli_user_conversion(out, demo: np.ndarray, *server: str) -> Conversion:
    """The demo window through ``musicoder convert --exemplar USER_EXEMPLAR`` (in this
    process; on a server with "--server", URL), written to ``out`` (a fresh path: the
    command refuses to overwrite) and read back."""
    start, duration = SONG_WINDOW_S
    code = cli.main(["convert", str(DEMO_CLIP), "-o", str(out), "--exemplar", str(USER_EXEMPLAR),
                     "--quality", QUALITY, "--start", str(start), "--duration", str(duration), *server])
    assert code == 0, f"musicoder convert exited with {code}"
    return user_conversion("demo", demo, audio.load(out, duration=None).samples)


# ---- measures ------------------------------------------------------------------------

def moved_db(c: Conversion, toward: np.ndarray | None = None) -> float:
    """dB by which the output is nearer than the plain re-render to ``toward`` (the
    exemplar by default), by style distance: > 0 moved toward it."""
    s = c.exemplar if toward is None else toward
    return style_distance(c.plain, s) - style_distance(c.output, s)


def lowpass(y: np.ndarray, hz: float) -> np.ndarray:
    """y (n,) at the metric's rate with nothing above ``hz`` (an FFT brick wall)."""
    spectrum = np.fft.rfft(y)
    spectrum[np.fft.rfftfreq(len(y), 1 / SR) > hz] = 0
    return np.fft.irfft(spectrum, len(y))


def chroma_kept(c: Conversion) -> float:
    """Chroma correlation of the output with the music where the texture keeps it."""
    return chroma_similarity(lowpass(c.music, c.kept_below_hz), lowpass(c.output, c.kept_below_hz))


def onsets_kept(c: Conversion) -> float:
    """Pearson correlation of the onset strengths (librosa) of the music and the output."""
    n = min(len(c.music), len(c.output))
    a, b = (librosa.onset.onset_strength(y=y[:n], sr=SR, hop_length=HOP) for y in (c.music, c.output))
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def exemplar_db(c: Conversion) -> float:
    """Style distance (dB) of the output from the exemplar."""
    return style_distance(c.output, c.exemplar)


# ---- checks --------------------------------------------------------------------------

def check_moves_toward_the_exemplar(c: Conversion) -> None:
    """The output is MOVED_MIN_DB nearer the exemplar than the plain re-render."""
    moved = moved_db(c)
    assert moved > MOVED_MIN_DB[c.song], \
        f"{c.song}: {moved:.2f} dB nearer the exemplar than a plain re-render, want > {MOVED_MIN_DB[c.song]}"


def check_moves_toward_this_exemplar(c: Conversion, others: dict[str, np.ndarray]) -> None:
    """The output moved SPECIFIC_MIN_DB more toward its exemplar than toward any of
    ``others`` (name: (n,) samples at the metric's rate). Measured on the demo only."""
    moved = moved_db(c)
    elsewhere = {name: moved_db(c, s) for name, s in others.items()}
    assert moved - max(elsewhere.values()) > SPECIFIC_MIN_DB[c.song], \
        f"{c.song}: {moved:.2f} dB toward the exemplar given, toward the others " \
        + ", ".join(f"{k} {v:.2f}" for k, v in elsewhere.items())


def check_keeps_the_music(c: Conversion) -> None:
    """The music's chroma is kept where the texture keeps the music (CHROMA_MIN)."""
    kept = chroma_kept(c)
    assert kept > CHROMA_MIN[c.song], \
        f"{c.song}: chroma below {c.kept_below_hz:.0f} Hz {kept:.2f}, want > {CHROMA_MIN[c.song]}"


def check_keeps_the_rhythm(c: Conversion) -> None:
    """The music's onsets are kept (ONSETS_MIN)."""
    kept = onsets_kept(c)
    assert kept > ONSETS_MIN, f"{c.song}: onset-strength correlation {kept:.2f}, want > {ONSETS_MIN}"


def check_not_the_exemplar_pasted_in(c: Conversion) -> None:
    """The output is farther from the exemplar than the exemplar's own windows are."""
    distance = exemplar_db(c)
    assert distance > PASTED_MAX_DB, \
        f"{c.song}: {distance:.2f} dB from the exemplar, as near as the exemplar itself (want > {PASTED_MAX_DB})"


CHECKS = {  # what each check catches, by name: tests.test_broken_engines runs them by these
    "moves toward the exemplar": check_moves_toward_the_exemplar,
    "keeps the music": check_keeps_the_music,
    "keeps the rhythm": check_keeps_the_rhythm,
    "not the exemplar pasted in": check_not_the_exemplar_pasted_in,
}


def check_all(c: Conversion) -> None:
    """Every check of CHECKS (those that need no other exemplars)."""
    for check in CHECKS.values():
        check(c)


def measures(c: Conversion) -> dict[str, float]:
    """Every check's measure of one conversion, by the check's name: what the thresholds
    are set from."""
    return {"moves toward the exemplar": moved_db(c), "keeps the music": chroma_kept(c),
            "keeps the rhythm": onsets_kept(c), "not the exemplar pasted in": exemplar_db(c)}


def report(demo: np.ndarray) -> None:
    """Print every measure for the real engine and each of tests.broken_engines, on each
    song, each built-in texture and USER_EXEMPLAR (``python -m tests.texture_checks``):
    what to look at before moving a threshold."""
    from musicoder import texture as transfer

    from . import broken_engines

    music = songs(demo)
    for name, make in {"real engine": broken_engines.REAL_MAKE_TRANSFORM, **broken_engines.ENGINES}.items():
        transfer.make_transform = make
        models._CACHE.clear()
        runs = {t: texture_conversions(t, music) for t in models.TEXTURES} | {"user": user_conversions(music)}
        for texture, conversions in runs.items():
            for c in conversions:
                print(f"{name:22s} {texture:7s} {c.song:9s} "
                      + "  ".join(f"{k} {v:6.2f}" for k, v in measures(c).items()), flush=True)
    transfer.make_transform = broken_engines.REAL_MAKE_TRANSFORM
    models._CACHE.clear()


if __name__ == "__main__":
    report(audio.load(DEMO_CLIP, start=SONG_WINDOW_S[0], duration=SONG_WINDOW_S[1]).samples)
