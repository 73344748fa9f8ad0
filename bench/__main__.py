"""Benchmark on the bundled demo clip.

    python -m bench [--json] [--quick] [--clip FILE] [--start S] [--duration D]
                    [--texture NAME] [--no-engine] [--no-conversion] [--no-network] [--no-songs]

Reconstruction: for each quality level, our reconstruction's time and spectral
convergence (SC, dB, lower is better) against its reference: plain Griffin-Lim as the
original system ran it (``librosa.griffinlim(momentum=0, init="random")`` with 100, 150
and 250 iterations) on the same magnitude and STFT settings, timed in the same run
(ours: the median of three runs).
Targets: every level's SC at or below its reference's, in at most 1/8 of its time.

Conversion: the same per level for phase retrieval as a conversion runs it, from the
music's own phase (``engine.render``) on the magnitude a texture transfer made of the
clip (``models.load(texture).transform``); SC against that magnitude, beside plain
Griffin-Lim's from random phase on the same magnitude; the same targets.

Engine: the whole conversion of the window, decode → transfer → reconstruct → encode
(wav), per level, against the original system's 20/30/45 s per 10 s clip; goals HIFI at
most 1.5 s and LOFI at most 0.4 s. Beside it, the same conversion with a user's own
exemplar (a recording decoded with ``audio.load_exemplar`` and analysed by
``models.from_exemplar`` inside the timing), against the built-in texture: at most 1.5×. The one-time start-up (importing the engine, loading the three
textures: their settings and exemplar analyses) is reported apart: a server pays it once.

Network: the learned engine (``models.load(texture, engine="learned")``, the texture
network of :mod:`musicoder.control` moving the transfer's controls) beside the tuned one,
in the same run: the network alone (``Transfer.controls`` on the clip's band envelopes and
exemplar placement, the median of several runs), target at most 60 ms per 10 s; and the
whole conversion (decode → transfer → reconstruct → encode, in stereo where the clip is,
as the command line converts it) with each engine at LOFI and HIFI, the two interleaved
(medians of three), their ratio beside them; target the learned engine's HIFI at most
1.0 s per 10 s. Times are given per 10 s of music. Without the shipped weights
(``models/learned/``) it says that the learned engine is not installed and goes on.

Songs: a whole 3-minute and 10-minute stereo song at HIFI against a 10 s window of the
same file, time and peak RSS, each in a fresh process (:mod:`bench.songs`); targets:
at most 1.15 x (length / 10 s) x the window's time, at most 500 MB for 10 minutes.

``--json`` prints one JSON object as the last line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from musicoder import audio, engine, reconstruct, spectral

DEMO_CLIP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "demo.ogg")
TIME_TARGET = 1 / 8
ORIGINAL_SECONDS = {"lofi": 20.0, "standard": 30.0, "hifi": 45.0}  # the 2018 server, per 10 s clip
ENGINE_GOALS = {"lofi": 0.4, "hifi": 1.5}
# a user's exemplar: any recording; the brook of the water texture, 12 s, as a file a user would bring
OWN_EXEMPLAR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "exemplars",
                            "water.flac")
OWN_EXEMPLAR_RATIO = 1.5  # the goal: at most 1.5x a built-in texture's time, the exemplar's analysis included
REPEATS = 3  # our reconstructions are timed this many times (median): the machine is shared
NETWORK_GOAL = 0.060  # the texture network alone, seconds per 10 s of music
LEARNED_HIFI_GOAL = 1.0  # a whole HIFI conversion with the learned engine, seconds per 10 s
NETWORK_REPEATS = 9  # the network alone is a few ms: more runs for a steady median
NETWORK_LEVELS = ("lofi", "hifi")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _timed_median(fn, repeats: int = REPEATS):
    """fn's result and its median wall time in seconds over ``repeats`` runs (fn deterministic)."""
    runs = [_timed(fn) for _ in range(repeats)]
    return runs[0][0], float(np.median([seconds for _, seconds in runs]))


def reference_gla(mag: np.ndarray, iterations: int, length: int) -> np.ndarray:
    """The original system's reconstruction: plain Griffin-Lim from random phase."""
    import librosa

    return librosa.griffinlim(mag, n_iter=iterations, hop_length=spectral.HOP, n_fft=spectral.N_FFT,
                              window="hann", center=True, momentum=0.0, init="random",
                              random_state=0, length=length)


def run(clip_path: str, start: float, duration: float) -> dict:
    clip = audio.load(clip_path, start=start, duration=duration)
    mag = spectral.magnitude(clip.samples)
    n = len(clip.samples)
    reconstruct.griffin_lim(mag, 2, length=n)  # warm up at full size: compiled kernels, FFT plans, buffers
    levels, reference = {}, {}
    for q in reconstruct.QUALITIES.values():
        y, seconds = _timed_median(lambda: reconstruct.reconstruct(mag, q, length=n))
        levels[q.name] = {"seconds": round(seconds, 4), "sc_db": round(spectral.spectral_convergence_db(y, mag), 3)}
        y, seconds = _timed(lambda: reference_gla(mag, q.reference_iterations, n))
        reference[f"gla{q.reference_iterations}"] = {
            "seconds": round(seconds, 4), "sc_db": round(spectral.spectral_convergence_db(y, mag), 3)}
    return {"clip": {"path": os.path.relpath(clip_path), "start": start, "seconds": round(n / spectral.SAMPLE_RATE, 3)},
            "levels": levels, "reference": reference}


def run_conversion(clip_path: str, start: float, duration: float, texture: str) -> dict:
    """Each level's phase retrieval as a conversion runs it, against plain Griffin-Lim.

    The target is the texture transfer's magnitude of the clip; ours starts from the
    music's own (complex) phase, with the engine's layout (frame-major STFT, viewed
    bin-major), the reference from random phase. SC in dB against the target.
    """
    import models

    clip = audio.load(clip_path, start=start, duration=duration)
    n = len(clip.samples)
    spec = spectral.stft_frames(clip.samples).T  # as engine.render analyses
    target = spectral.from_log(models.load(texture).transform(spectral.to_log(np.abs(spec))))
    reconstruct.griffin_lim(target, 2, length=n, init=spec)  # warm up this start's kernels
    levels, reference = {}, {}
    for q in reconstruct.QUALITIES.values():
        y, seconds = _timed_median(lambda: reconstruct.reconstruct(target, q, length=n, phase=spec))
        levels[q.name] = {"seconds": round(seconds, 4),
                          "sc_db": round(spectral.spectral_convergence_db(y, target), 3)}
        y, seconds = _timed(lambda: reference_gla(target, q.reference_iterations, n))
        reference[f"gla{q.reference_iterations}"] = {
            "seconds": round(seconds, 4), "sc_db": round(spectral.spectral_convergence_db(y, target), 3)}
    return {"texture": texture, "levels": levels, "reference": reference}


def run_engine(clip_path: str, start: float, duration: float, texture: str) -> dict:
    """Time the whole conversion per level; the start-up costs apart."""
    # the one-time cost of importing the engine, its kernels and the textures, in a fresh
    # process (this one has imported them already for the tables above)
    timer = ("import time; t = time.perf_counter(); from musicoder import engine, kernels; "
             "import models; print(time.perf_counter() - t)")
    import_seconds = float(subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True,
                                          check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))).stdout)
    import models

    t0 = time.perf_counter()
    loaded = {name: models.load(name) for name in models.TEXTURES}
    load_seconds = time.perf_counter() - t0
    model = loaded[texture]
    clip = audio.load(clip_path, start=start, duration=duration)
    engine.render(clip.samples[:44100], "lofi", model.transform)  # warm: the kernels' first calls
    rows = {}
    for q in reconstruct.QUALITIES.values():
        t_start = time.perf_counter()
        samples = audio.load(clip_path, start=start, duration=duration).samples
        t_decoded = time.perf_counter()
        result = engine.render(samples, q, model.transform)
        t_rendered = time.perf_counter()
        audio.encode(result.samples, "wav")
        t_end = time.perf_counter()
        t_own = time.perf_counter()
        mine = models.from_exemplar(audio.load_exemplar(OWN_EXEMPLAR).samples)
        own = engine.render(audio.load(clip_path, start=start, duration=duration).samples, q, mine.transform)
        audio.encode(own.samples, "wav")
        own_seconds = time.perf_counter() - t_own
        rows[q.name] = {"seconds": round(t_end - t_start, 4), "decode": round(t_decoded - t_start, 4),
                        "own_exemplar_seconds": round(own_seconds, 4),
                        "transfer": round(result.timings["transferring"], 4),
                        "reconstruct": round(result.timings["reconstructing"], 4),
                        "encode": round(t_end - t_rendered + result.timings["encoding"] + result.timings["analysing"], 4),
                        "original_seconds": ORIGINAL_SECONDS[q.name]}
    return {"texture": texture, "levels": rows,
            "startup": {"import_engine": round(import_seconds, 3), "load_models": round(load_seconds, 3)}}


def engine_table(result: dict) -> str:
    rows = [f"engine ({result['texture']}): decode → transfer → reconstruct → encode, per 10 s clip; "
            f"own: the same with a user's exemplar, its decoding and analysis included",
            f"{'level':10s} {'total s':>8s} {'decode':>7s} {'transfer':>8s} {'recon':>7s} {'encode':>7s} | "
            f"{'original s':>10s} {'speed-up':>8s} {'goal s':>7s} | {'own s':>6s} {'own/built-in':>12s}"]
    for q in reconstruct.QUALITIES.values():
        r = result["levels"][q.name]
        goal = ENGINE_GOALS.get(q.name)
        rows.append(f"{q.label:10s} {r['seconds']:8.3f} {r['decode']:7.3f} {r['transfer']:8.3f} "
                    f"{r['reconstruct']:7.3f} {r['encode']:7.3f} | {r['original_seconds']:10.0f} "
                    f"{r['original_seconds'] / r['seconds']:7.0f}x {goal if goal else '-':>7} | "
                    f"{r['own_exemplar_seconds']:6.3f} {r['own_exemplar_seconds'] / r['seconds']:11.2f}x")
    rows.append(f"goal: own/built-in <= {OWN_EXEMPLAR_RATIO:g}x at every level")
    st = result["startup"]
    rows.append(f"one-time start-up: import the engine {st['import_engine']:.2f} s, "
                f"load the three textures {st['load_models']:.2f} s")
    return "\n".join(rows)


def _per_10s(seconds: float, clip_seconds: float) -> float:
    """Seconds for a clip of ``clip_seconds`` scaled to 10 s of music."""
    return seconds * 10.0 / clip_seconds


def run_network(clip_path: str, start: float, duration: float, texture_name: str) -> dict:
    """The learned engine beside the tuned one on one window: ``{"installed": False,
    "reason": ...}`` without the shipped weights; else the network alone (seconds, median
    of NETWORK_REPEATS) and, per level of NETWORK_LEVELS, each engine's whole conversion
    (seconds, medians of REPEATS, the two engines interleaved), all per 10 s of music."""
    import models
    from musicoder import texture

    try:
        learned = models.load(texture_name, engine="learned")
    except models.ModelError as e:
        return {"installed": False, "reason": str(e)}
    tuned = models.load(texture_name, engine="tuned")
    clip = audio.load(clip_path, start=start, duration=duration, stereo=True)
    clip_seconds = clip.samples.shape[-1] / spectral.SAMPLE_RATE
    mid = clip.samples.mean(axis=0)  # what the engine plans from
    env_x = texture.band_envelopes(spectral.to_log(np.abs(spectral.stft_frames(mid).T)))
    index = texture.placement(env_x.shape[1], texture.onsets(env_x), learned.exemplar)
    learned.transfer.controls(env_x, index)  # warm: the first call's allocations
    _, network_seconds = _timed_median(lambda: learned.transfer.controls(env_x, index), NETWORK_REPEATS)

    def convert(model, level: str) -> float:
        t0 = time.perf_counter()
        samples = audio.load(clip_path, start=start, duration=duration, stereo=True).samples
        audio.encode(engine.render(samples, level, model.transfer).samples, "wav")
        return time.perf_counter() - t0

    for model in (tuned, learned):  # warm: the kernels' first calls on this layout
        engine.render(clip.samples[:, :44100], "lofi", model.transfer)
    levels = {}
    for level in NETWORK_LEVELS:
        runs = {"tuned": [], "learned": []}
        for _ in range(REPEATS):
            runs["tuned"].append(convert(tuned, level))
            runs["learned"].append(convert(learned, level))
        levels[level] = {name: round(_per_10s(float(np.median(r)), clip_seconds), 4) for name, r in runs.items()}
    return {"installed": True, "texture": texture_name, "clip_seconds": round(clip_seconds, 3),
            "channels": int(clip.samples.shape[0]),
            "network_seconds": round(_per_10s(network_seconds, clip_seconds), 5), "levels": levels}


def network_table(result: dict) -> str:
    """:func:`run_network`'s result as rows of text (a line saying why when it was skipped)."""
    if not result["installed"]:
        return f"network: the learned engine is not installed ({result['reason']}); section skipped"
    ok = result["network_seconds"] <= NETWORK_GOAL
    rows = [f"network ({result['texture']}): the learned engine beside the tuned one, seconds per 10 s of music "
            f"({result['clip_seconds']:g} s measured, {result['channels']} channel(s))",
            f"network alone (Transfer.controls): {1000 * result['network_seconds']:.1f} ms "
            f"(target <= {1000 * NETWORK_GOAL:.0f} ms)  {'yes' if ok else 'NO'}",
            f"{'level':10s} {'tuned s':>8s} {'learned s':>9s} {'learned/tuned':>13s} {'goal s':>7s}  ok"]
    for name, r in result["levels"].items():
        goal = LEARNED_HIFI_GOAL if name == "hifi" else None
        ok = "-" if goal is None else "yes" if r["learned"] <= goal else "NO"
        rows.append(f"{reconstruct.QUALITIES[name].label:10s} {r['tuned']:8.3f} {r['learned']:9.3f} "
                    f"{r['learned'] / r['tuned']:12.2f}x {goal if goal else '-':>7}  {ok}")
    return "\n".join(rows)


def table(result: dict, title: str | None = None) -> str:
    rows = [title] if title else []
    rows += [f"{'level':10s} {'s':>7s} {'SC dB':>7s} | {'reference':9s} {'s':>7s} {'SC dB':>7s} | "
             f"{'time ratio':>10s} {'SC gain dB':>10s}  ok"]
    for q in reconstruct.QUALITIES.values():
        ours = result["levels"][q.name]
        ref_name = f"gla{q.reference_iterations}"
        ref = result["reference"][ref_name]
        ratio = ours["seconds"] / ref["seconds"]
        gain = ref["sc_db"] - ours["sc_db"]
        ok = ratio <= TIME_TARGET and gain >= 0
        rows.append(f"{q.label:10s} {ours['seconds']:7.3f} {ours['sc_db']:7.2f} | {ref_name:9s} "
                    f"{ref['seconds']:7.3f} {ref['sc_db']:7.2f} | {ratio:10.3f} {gain:10.2f}  {'yes' if ok else 'NO'}")
    rows.append(f"targets: time ratio <= {TIME_TARGET:.3f}, SC gain >= 0 dB")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    ap.add_argument("--quick", action="store_true", help="a 4 s window instead of 10 s")
    ap.add_argument("--clip", default=DEMO_CLIP)
    ap.add_argument("--start", type=float, default=0.0)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--texture", default="water", help="texture for the conversion, engine and network rows (default water)")
    ap.add_argument("--no-engine", action="store_true", help="no engine rows")
    ap.add_argument("--no-conversion", action="store_true", help="no conversion (music's phase) rows")
    ap.add_argument("--no-network", action="store_true",
                    help="no rows for the learned engine (the texture network) beside the tuned one")
    ap.add_argument("--no-songs", action="store_true", help="no whole-song rows (they take a few minutes)")
    a = ap.parse_args(argv)
    duration = a.duration or (4.0 if a.quick else 10.0)
    result = run(a.clip, a.start, duration)
    print(table(result))
    if not a.no_conversion:
        result["conversion"] = run_conversion(a.clip, a.start, duration, a.texture)
        print(table(result["conversion"], f"conversion ({a.texture}): from the music's phase, SC against "
                                          f"the transfer's magnitude"))
    if not a.no_engine:
        result["engine"] = run_engine(a.clip, a.start, duration, a.texture)
        print(engine_table(result["engine"]))
    if not a.no_network:
        result["network"] = run_network(a.clip, a.start, duration, a.texture)
        print(network_table(result["network"]))
    if not a.no_songs:
        from . import songs

        result["songs"] = songs.run(a.texture, "hifi", (3.0,) if a.quick else (3.0, 10.0))
        print(songs.table(result["songs"]))
    if a.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
