"""The body of one conversion worker process (started with the spawn method).

By default the pool runs one such process per core, each converting one job at a time
(``slots`` 1): jobs share no GIL (the encoders, matplotlib's PNG and the engine's Python
glue hold it), a crash or a kill takes one job down, and each process's numeric
libraries run one thread, so that N processes on N cores do not oversubscribe them.
With ``slots`` > 1 (``--processes`` below ``--workers``) a process runs that many jobs
in threads, sharing its memory: the engine's compiled kernels and FFTs release the GIL.
What a process holds at start (numpy, scipy, numba's compiled kernels, matplotlib, the
textures' exemplar analyses: a few MB each) is ~0.3 GB resident.

Pipe messages, parent → worker: ``(job_id, JobSpec)`` to start a job,
``("cancel", job_id)``, ``None`` to stop. Worker → parent: ``("ready", pid, info)``
(info: :func:`ready_info`), then per job ``("progress", id, stage, fraction)``
messages and one final ``("done", id, JobOutput)``, ``("cancelled", id)`` or
``("failed", id, code, message)``.

Only this process imports the engine's heavy parts (numba, scipy, matplotlib); the
event loop's process never does.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import os
import signal
import sys
import threading
import time
import traceback

STREAM_SECONDS = 60.0  # a job longer than this is streamed through files, not held in memory
PROGRESS_INTERVAL = 0.1  # seconds between progress messages (a stage change is always sent)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What one conversion needs: its window, float32 samples at 44.1 kHz in a file (the
    session's snapshot: queued jobs wait on disk, not in memory), and the choices."""

    window_path: str  # raw little-endian float32, one channel after the other (planar)
    seconds: float  # of audio in it: what the job's memory and time grow with
    texture: str | None  # a built-in texture, or protocol.EXEMPLAR with exemplar_path
    quality: str
    format: str
    normalize: bool
    title: str = ""
    peaks_columns: int = 800
    exemplar_path: str | None = None  # the session's own exemplar (its snapshot), raw mono float32
    channels: int = 1  # of the window: 1, or 2 (stereo: all of the left channel, then all of the right)
    strength: float = 1.0  # 0 the music unchanged .. 1 the texture as tuned
    start: float = 0.0  # s: where in the track the window starts (told back with the result)


def read_samples(spec: JobSpec):
    """The job's window ((n,) float32 mono, or (channels, n)) and exemplar ((n,), None
    for a built-in texture) from their files. FileNotFoundError when the session ended
    and deleted them first."""
    import numpy as np

    if spec.seconds > STREAM_SECONDS:  # mapped: the engine reads a song a block at a time
        window = np.memmap(spec.window_path, dtype="<f4", mode="r")
    else:
        window = np.fromfile(spec.window_path, dtype="<f4")
    if spec.channels > 1:
        window = window.reshape(spec.channels, -1)
    return window, None if spec.exemplar_path is None else np.fromfile(spec.exemplar_path, dtype="<f4")


@dataclasses.dataclass(frozen=True)
class JobOutput:
    audio: bytes  # the file in ``format``
    spectrogram: bytes  # PNG
    peaks: bytes  # the protocol's PEAKS payload
    duration: float  # seconds of audio
    timings: dict  # stage -> seconds
    channels: int = 1  # of the audio


def limit_threads(threads: int) -> None:
    """Compute threads of numba (the engine's kernels) and of the BLAS under numpy (the
    textures' filterbank products), per job. Read when those libraries load, so this
    runs before the engine is imported (a spawned process starts without them)."""
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def _limit_fft_threads(threads: int) -> None:
    """scipy.fft threads per transform. The engine's ``spectral.WORKERS`` (2: the whole
    2-core machine) would have N single-job processes run 2N FFT threads on N cores
    (measured: a few per cent slower, and more CPU). It is read at each call, so it is
    set on the module here, after import (musicoder/ is not the server's to change)."""
    from musicoder import spectral

    if hasattr(spectral, "WORKERS"):
        spectral.WORKERS = threads


def tune_malloc() -> None:
    """glibc: two malloc arenas rather than one per job thread (less fragmentation),
    and the heap trimmed after each job (:func:`trim_heap`)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        # (a fixed M_MMAP_THRESHOLD was tried: -70 MB peak, but a third slower)
    except (OSError, AttributeError):  # not glibc
        pass


def trim_heap() -> None:
    # A job's matplotlib figure is a reference cycle holding ~1.6 MB (its image and Agg
    # buffer): collected now, not at some rare full collection (+5 MB per job otherwise).
    # Cheap (~15 ms) because serve() froze the start-up objects (the libraries') out of the GC.
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _warm_up(engine, audio, render) -> None:
    """One tiny job before taking real ones: compiled kernels loaded, FFT plans, the
    encoders and matplotlib imported, so that the first user does not wait for them."""
    import numpy as np

    y = (0.1 * np.sin(np.arange(22050) * 0.06)).astype(np.float32)
    out = engine.render(y, "lofi").samples
    audio.encode(out, "wav")
    render.spectrogram_png(out, "warm-up", width_px=200, height_px=100)


class Converter:
    """The engine, the encoders and the texture models, loaded once: what one worker
    process (here) or one Ray actor (``ray_pool``) holds between jobs."""

    def __init__(self, models_module: str, threads: int = 1):
        import importlib

        import numpy as np

        from musicoder import audio, engine, reconstruct, render
        from musicoder import convert as conversion
        from musicoder.errors import InputError
        from protocol import peaks_to_bytes

        _limit_fft_threads(threads)
        self.audio, self.engine, self.reconstruct, self.render, self.np = audio, engine, reconstruct, render, np
        self.conversion = conversion
        self.InputError, self.Cancelled, self.peaks_to_bytes = InputError, reconstruct.Cancelled, peaks_to_bytes
        self.models = importlib.import_module(models_module)  # its load() keeps each texture once

    def start(self, preload: bool, phases: dict[str, float]) -> dict:
        """Warm up and (with preload) load every model; returns :func:`ready_info` with
        phases plus the seconds of these two steps."""
        t0 = time.monotonic()
        _warm_up(self.engine, self.audio, self.render)
        t1 = time.monotonic()
        if preload:
            self.preload()
        return ready_info({**phases, "warm_up": t1 - t0, "models": time.monotonic() - t1})

    def preload(self) -> None:
        """Every texture's model loaded (~30 ms each) and run once now: a broken or missing
        model shows in the log at start, not at some user's first job. A model that fails
        to load is logged; its jobs fail later."""
        for name in self.models.TEXTURES:
            try:
                self.models.resolve(name).transform(self.np.zeros((1025, 8), dtype=self.np.float32))
            except Exception as err:
                print(f"musicoder worker {os.getpid()}: cannot preload the {name} model: {err}", file=sys.stderr)

    def convert(self, spec: JobSpec, samples, exemplar, on_progress, should_cancel) -> JobOutput:
        """One job: samples ((n,) or (channels, n)) and exemplar ((n,) or None) float32 at
        44.1 kHz, in memory, or streamed through files when the job is over STREAM_SECONDS
        (:meth:`_streamed`); on_progress (stage, fraction) is called at most every
        PROGRESS_INTERVAL s (and at each new stage). Raises reconstruct.Cancelled,
        InputError, or whatever the engine raises."""
        last = [0.0, ""]

        def progress(stage: str, fraction: float) -> None:
            now = time.monotonic()
            if stage != last[1] or now - last[0] >= PROGRESS_INTERVAL:
                last[0], last[1] = now, stage
                on_progress(stage, min(max(float(fraction), 0.0), 1.0))

        transform = self.transfer(spec, exemplar)
        channels = 1 if samples.ndim == 1 else samples.shape[0]
        if spec.seconds > STREAM_SECONDS:
            x = samples if samples.ndim == 2 else samples[None, :]
            return self._streamed(spec, x.shape[1], x.shape[0], lambda out_path, folder: self.conversion.convert_stream(
                lambda a, b: self.np.array(x[:, a:b], dtype=self.np.float32), x.shape[1], x.shape[0], out_path,
                spec.quality, transform, strength=spec.strength, normalize=spec.normalize, folder=folder,
                title=spec.title, peaks_columns=spec.peaks_columns, on_progress=progress,
                should_cancel=should_cancel))
        out = self.conversion.convert(samples, spec.quality, transform,
                                      strength=spec.strength, normalize=spec.normalize, format=spec.format,
                                      title=spec.title, on_progress=progress, should_cancel=should_cancel)
        peaks = self.peaks_to_bytes(self.render.waveform_peaks(out.samples, spec.peaks_columns))
        return JobOutput(audio=out.audio, spectrogram=out.spectrogram, peaks=peaks,
                         duration=samples.shape[-1] / self.audio.SAMPLE_RATE, timings=out.timings, channels=channels)

    def transfer(self, spec: JobSpec, exemplar):
        """The job's transfer (None for no texture): the session sends protocol.EXEMPLAR
        with the exemplar's samples, resolved by those; else the texture's name."""
        model = self.models.resolve(None if exemplar is not None else spec.texture, exemplar)
        return None if model is None else model.transfer

    def render_part(self, spec: JobSpec, samples, exemplar, part: int, parts: int, on_progress, should_cancel):
        """Part ``part`` of ``parts`` of a long song ((channels, n) float32), rendered before
        any level is set (``engine.render_unleveled`` of its share of the engine's blocks,
        the texture's plan made from the whole song): (channels, m) float32 and its
        timings. Parts joined in order are what one whole render gives."""
        timings: dict[str, float] = {}
        n = samples.shape[-1]
        out = self.engine.render_unleveled(samples, spec.quality, self.transfer(spec, exemplar),
                                           strength=spec.strength, on_progress=on_progress,
                                           should_cancel=should_cancel, timings=timings,
                                           blocks=self.engine.part_blocks(n, part, parts))
        return out, timings

    def finish_parts(self, spec: JobSpec, parts: list, timings: dict, on_progress, should_cancel) -> JobOutput:
        """The parts :meth:`render_part` made, in order, finished as one whole song is
        (streamed: ``musicoder.convert.finish_stream``, as a long job's :meth:`convert`)."""
        frames, channels = sum(p.shape[-1] for p in parts), parts[0].shape[0]
        starts = self.np.cumsum([0] + [p.shape[-1] for p in parts[:-1]])
        return self._streamed(spec, frames, channels, lambda out_path, folder: self.conversion.finish_stream(
            zip(starts, parts), frames, channels, out_path, normalize=spec.normalize, folder=folder,
            title=spec.title, peaks_columns=spec.peaks_columns, on_progress=on_progress,
            should_cancel=should_cancel, timings=dict(timings)))

    def _streamed(self, spec: JobSpec, frames: int, channels: int, write) -> JobOutput:
        """A long job's output: ``write(out_path, folder)`` streams it to a file in a
        temporary folder (returning ``convert.Streamed``), read back whole. Streamed so that
        the worker's memory does not grow with the song (held in memory, a 10-minute
        stereo song peaked near 3 GB: the whole song's STFT for its spectrogram, levelled
        and encoded copies; streamed, 663 MB)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="musicoder-job-") as folder:
            out_path = os.path.join(folder, f"result.{spec.format}")
            streamed = write(out_path, folder)
            with open(out_path, "rb") as f:
                data = f.read()
        return JobOutput(audio=data, spectrogram=streamed.spectrogram, peaks=self.peaks_to_bytes(streamed.peaks),
                         duration=frames / self.audio.SAMPLE_RATE, timings=streamed.timings, channels=channels)


class _Worker:
    """One worker process: a Converter, the pipe to the parent, jobs in threads."""

    def __init__(self, conn, models_module: str, slots: int, threads: int = 1):
        self.converter = Converter(models_module, threads)
        self.conn = conn
        self.send_lock = threading.Lock()
        self.cancels: dict[int, threading.Event] = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="job")

    def send(self, msg) -> None:
        with self.send_lock:
            self.conn.send(msg)

    def serve(self, preload: bool, phases: dict[str, float]) -> None:
        """Warm up, load the models, say ready, then take jobs until told to stop.
        phases: seconds each start-up step took so far (the ready message carries them)."""
        info = self.converter.start(preload, phases)
        gc.freeze()  # what start-up made lives for ever: no collection walks it again
        self.send(("ready", os.getpid(), info))
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break
            if msg is None:
                break
            if msg[0] == "cancel":
                event = self.cancels.get(msg[1])
                if event is not None:
                    event.set()
                continue
            job_id, spec = msg
            self.cancels[job_id] = threading.Event()
            self.pool.submit(self.run_job, job_id, spec)
        for event in self.cancels.values():
            event.set()
        self.pool.shutdown(wait=True)

    def run_job(self, job_id: int, spec: JobSpec) -> None:
        c = self.converter
        cancel = self.cancels[job_id]
        try:
            try:
                samples, exemplar = read_samples(spec)
            except FileNotFoundError:  # its session ended, and deleted it, before the job started
                raise c.Cancelled() from None
            output = c.convert(spec, samples, exemplar,
                               lambda stage, fraction: self.send(("progress", job_id, stage, fraction)),
                               cancel.is_set)
            self.send(("done", job_id, output))
        except c.Cancelled:
            self.send(("cancelled", job_id))
        except c.InputError as err:
            self.send(("failed", job_id, err.code, err.message))
        except (BrokenPipeError, EOFError):  # the server is gone
            os._exit(1)
        except Exception as err:  # a model or engine failure: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            try:
                self.send(("failed", job_id, "internal", failure_message(err)))
            except OSError:
                os._exit(1)
        finally:
            self.cancels.pop(job_id, None)
            trim_heap()


def failure_message(err: Exception) -> str:
    """What the client is told of an engine or model failure (one line, bounded)."""
    return f"The conversion failed: {type(err).__name__}: {err}"[:900]


def ready_info(phases: dict[str, float]) -> dict:
    """What the ready message tells the parent (and its log): the seconds each start-up
    step took."""
    return {"phases": {name: round(seconds, 3) for name, seconds in phases.items()}}


def main(conn, models_module: str, slots: int, threads: int, nice: int, preload: bool = True) -> None:
    """Worker entry point: conn a duplex multiprocessing Connection; slots jobs at once,
    each with ``threads`` compute threads."""
    t0 = time.monotonic()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when workers stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    limit_threads(threads)
    tune_malloc()
    if nice:
        try:
            os.nice(nice)  # the event loop's process answers pings first
        except OSError:
            pass
    worker = _Worker(conn, models_module, slots, threads)
    worker.serve(preload, {"imports": time.monotonic() - t0})
