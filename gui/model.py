"""The desktop client's state, as plain data: what the user has done, what the server
said, and so which step is possible now. No Dear PyGui and no networking here: the
window draws a :class:`Model`, and every event — a button, a server message, the
connection coming or going — goes through :meth:`Model.apply`.

The steps follow the original client's flow, each button lighting up when its step is
possible: connect (to one of the server field's addresses: several, comma-separated, are
tried in turn) → load a file (uploaded) → choose the window (clip), or "Whole track" →
choose a texture and its strength (Try previews it; "Your own…" opens a recording of the
user's own texture, uploaded as the session's exemplar, and Try plays it) → choose a
quality (starts the conversion) → result (play, A/B against the input from the same
place, save, convert again; a new strength converts again by itself).
"""
from __future__ import annotations

import dataclasses
import enum

import numpy as np

import client
import protocol


class Connection(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "not connected"


# ---- events: what the user did, and what the network (gui.bridge) reported ---------------

@dataclasses.dataclass(frozen=True)
class Connecting:
    url: str  # the address being tried
    servers: tuple[str, ...] = ()  # every address the bridge cycles through (default: just url)


@dataclasses.dataclass(frozen=True)
class Connected:
    welcome: protocol.Welcome


@dataclasses.dataclass(frozen=True)
class Disconnected:
    reason: str
    retry_in: float | None  # seconds until the next automatic try; None: no retry
    next_url: str | None = None  # where that try starts, when there are several addresses


@dataclasses.dataclass(frozen=True)
class ServerShutdown:
    reason: str


@dataclasses.dataclass(frozen=True)
class FileLoaded:
    """The user picked a file and it was decoded here, for the input player."""
    path: str
    name: str
    samples: np.ndarray  # (n,) or (channels, n) float32 at rate: the whole track
    rate: int


@dataclasses.dataclass(frozen=True)
class TrackCleared:
    pass


@dataclasses.dataclass(frozen=True)
class ExemplarLoaded:
    """The user picked an exemplar file and it was decoded here (the part the server uses),
    for Try and its waveform."""
    path: str
    name: str
    samples: np.ndarray  # (n,) float32 at rate
    rate: int


@dataclasses.dataclass(frozen=True)
class ExemplarReady:
    exemplar: client.Exemplar  # the server has it: conversions may use it


@dataclasses.dataclass(frozen=True)
class UploadProgressed:
    received: int  # bytes
    size: int


@dataclasses.dataclass(frozen=True)
class TrackReady:
    track: client.Track


@dataclasses.dataclass(frozen=True)
class WindowPicked:
    start: float  # s
    duration: float


@dataclasses.dataclass(frozen=True)
class WindowReady:
    window: client.Window


@dataclasses.dataclass(frozen=True)
class WholePicked:
    whole: bool  # convert the whole track, not the window


@dataclasses.dataclass(frozen=True)
class StrengthPicked:
    strength: float  # 0 the music unchanged .. 1 the texture as tuned


@dataclasses.dataclass(frozen=True)
class TexturePicked:
    name: str


@dataclasses.dataclass(frozen=True)
class QualityPicked:
    name: str


@dataclasses.dataclass(frozen=True)
class PreviewReady:
    texture: str
    format: str
    audio: bytes


@dataclasses.dataclass(frozen=True)
class JobAccepted:
    job: int
    position: int  # jobs ahead in the queue


@dataclasses.dataclass(frozen=True)
class JobProgress:
    stage: str
    fraction: float  # of the whole job
    eta: float  # s
    position: int


@dataclasses.dataclass(frozen=True)
class DownloadProgressed:
    received: int  # bytes of the result's audio
    size: int


@dataclasses.dataclass(frozen=True)
class ResultReady:
    result: client.Result


@dataclasses.dataclass(frozen=True)
class JobCancelled:
    job: int


@dataclasses.dataclass(frozen=True)
class RequestFailed:
    """A request failed: the server's error frame (code), or a local or network one."""
    request: str  # open, upload, open_exemplar, exemplar, clip, preview, convert, cancel, save
    code: str
    message: str


@dataclasses.dataclass
class JobState:
    job: int | None  # None until the server accepted it
    stage: str = "queued"
    fraction: float = 0.0
    eta: float = 0.0
    position: int = 0


@dataclasses.dataclass
class Model:
    """Everything the window shows. Mutated only by :meth:`apply`."""

    url: str  # the server field: one address, or several comma-separated
    server: str | None = None  # the address in use, or being tried
    connection: Connection = Connection.DISCONNECTED
    retry_in: float | None = None
    welcome: protocol.Welcome | None = None
    # the track
    local_path: str | None = None
    track_name: str | None = None
    track_samples: np.ndarray | None = None
    track_rate: int = 44100
    track: client.Track | None = None  # the server's facts once uploaded
    upload_fraction: float = 0.0
    window_start: float = 0.0
    window_duration: float = 10.0
    window_confirmed: bool = False
    window_peaks: np.ndarray | None = None
    # the user's own exemplar: decoded here (for Try), then the server's copy
    exemplar_path: str | None = None
    exemplar_name: str | None = None
    exemplar_samples: np.ndarray | None = None
    exemplar_rate: int = 44100
    exemplar: client.Exemplar | None = None
    # choices
    texture: str | None = None
    texture_confirmed: bool = False
    quality: str = "standard"
    normalize: bool = True
    whole: bool = False  # "Whole track": convert all of it, not the window
    strength: float = 1.0
    listening: str = "result"  # what the result's transport plays: "result", or "input" (A/B)
    # work
    job: JobState | None = None
    result: client.Result | None = None
    preview: PreviewReady | None = None
    status: str = ""
    error: str | None = None

    # ---- what is possible now ------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection is Connection.CONNECTED

    @property
    def busy(self) -> bool:
        return self.job is not None

    def enabled(self) -> dict[str, bool]:
        """Which controls are live, by name (the original's buttons that 'lit up')."""
        uploaded = self.connected and self.track is not None
        return {
            "open": self.connected and not self.busy,
            "delete": self.local_path is not None and not self.busy,
            "play_input": self.track_samples is not None,
            "pause_input": self.track_samples is not None,
            "stop_input": self.track_samples is not None,
            "clip_ok": uploaded and not self.busy and not self.whole,
            "whole": uploaded and not self.busy and self.whole_allowed,
            "try": (self.exemplar_samples is not None) if self.own_texture else
                   (self.connected and self.welcome is not None),
            "open_exemplar": self.own_texture and self.connected and not self.busy,
            "texture_ok": uploaded and (self.window_confirmed or self.whole) and self.texture is not None
                          and not self.busy
                          and (not self.own_texture or self.exemplar is not None),
            "convert": uploaded and (self.window_confirmed or self.whole) and self.texture_confirmed and not self.busy,
            "cancel": self.busy and self.job.job is not None,
            "play_output": self.result is not None,
            "pause_output": self.result is not None or self.preview is not None,
            "stop_output": self.result is not None or self.preview is not None,
            "save": self.result is not None,
            "ab": self.result is not None and self.track_samples is not None,
            "strength": self.welcome is not None and self.welcome.version >= 3,
            "retry": self.connection is Connection.DISCONNECTED,
        }

    @property
    def whole_allowed(self) -> bool:
        """The server converts whole tracks (protocol 3) and this one is within its limit."""
        w, t = self.welcome, self.track
        return w is not None and w.version >= 3 and t is not None and t.duration <= w.limits["window_seconds"]

    def result_span(self) -> tuple[float, float] | None:
        """(start, duration) in s of the track that the result was made from: what A/B
        plays as the input, from the same position as the result. None without a result."""
        r = self.result
        return None if r is None else (r.start, r.duration)

    def toggle_listening(self) -> str:
        """A/B: the result's transport plays the other one now; returns which."""
        self.listening = "input" if self.listening == "result" else "result"
        return self.listening

    def strength_released(self, strength: float) -> bool:
        """The strength slider was let go at ``strength``: True when the result on show
        should be converted again at it (there is one, of another strength, and a
        conversion may start)."""
        self.apply(StrengthPicked(strength))
        r = self.result
        return r is not None and abs(r.strength - self.strength) > 1e-6 and self.enabled()["convert"]

    @property
    def own_texture(self) -> bool:
        """The user's own exemplar is the chosen texture."""
        return self.texture == protocol.EXEMPLAR

    def textures(self) -> list[dict]:
        """The server's textures, then "Your own…" where the server takes exemplars."""
        if not self.welcome:
            return []
        out = list(self.welcome.textures)
        if self.welcome.version >= 2:
            what = (f"Your own texture, from {self.exemplar_name} ({self.exemplar.used:.1f} s used): its sound "
                    f"above the music's pitch, its events on the music's beats." if self.exemplar is not None else
                    "Your own texture: open a recording of it, 2 to 30 s (a longer one is cut to its start).")
            out.append({"name": protocol.EXEMPLAR, "label": "Your own…", "description": what})
        return out

    def qualities(self) -> list[dict]:
        return list(self.welcome.qualities) if self.welcome else []

    # ---- events ----------------------------------------------------------------------------

    def apply(self, event) -> None:
        """Update the state for one of the events above. Unknown events are a
        programming error."""
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is None:
            raise TypeError(f"no handler for {type(event).__name__}")
        handler(event)

    # connection
    def _on_Connecting(self, e: Connecting) -> None:
        servers = e.servers or (e.url,)
        self.url, self.server = ", ".join(servers), e.url
        self.connection, self.retry_in = Connection.CONNECTING, None
        of = f" ({servers.index(e.url) + 1} of {len(servers)})" if len(servers) > 1 and e.url in servers else ""
        self.status = f"Connecting to {e.url}{of}…"

    def _on_Connected(self, e: Connected) -> None:
        w = e.welcome
        self.connection, self.welcome, self.error, self.retry_in = Connection.CONNECTED, w, None, None
        self.status = f"Connected to {w.server}." + ("" if self.track_samples is not None else " Open a song.")
        names = [t["name"] for t in self.textures()]
        if self.texture not in names:  # the radio buttons always show one: the first
            self.texture, self.texture_confirmed = (names[0] if names else None), False

    def _on_Disconnected(self, e: Disconnected) -> None:
        self.connection, self.retry_in = Connection.DISCONNECTED, e.retry_in
        self.job = None
        self.exemplar = None  # the server's copy went with the session; the bridge sends it again
        self.error = e.reason
        then = f", with {e.next_url}" if e.next_url else ""
        self.status = "Not connected" + (f": retrying in {e.retry_in:.0f} s{then}." if e.retry_in else ".")

    def _on_ServerShutdown(self, e: ServerShutdown) -> None:
        self.status = f"The server is shutting down ({e.reason}); reconnecting when it is back."

    # the track
    def _on_FileLoaded(self, e: FileLoaded) -> None:
        self.local_path, self.track_name = e.path, e.name
        self.track_samples, self.track_rate = e.samples, e.rate
        self.track, self.window_confirmed, self.window_peaks = None, False, None
        self.result, self.upload_fraction, self.error = None, 0.0, None
        self.window_start, self.whole, self.listening = 0.0, False, "result"
        self.window_duration = self.welcome.default_window if self.welcome else 10.0
        self.status = f"Uploading {e.name}…"

    def _on_TrackCleared(self, e: TrackCleared) -> None:
        self.local_path = self.track_name = None
        self.track_samples = self.track = self.window_peaks = self.result = None
        self.window_confirmed, self.upload_fraction, self.whole, self.listening = False, 0.0, False, "result"
        self.status = "Open a song to begin."

    def _on_ExemplarLoaded(self, e: ExemplarLoaded) -> None:
        self.exemplar_path, self.exemplar_name = e.path, e.name
        self.exemplar_samples, self.exemplar_rate = e.samples, e.rate
        self.exemplar, self.texture_confirmed, self.error = None, False, None
        self.status = f"Sending your exemplar {e.name}…"

    def _on_ExemplarReady(self, e: ExemplarReady) -> None:
        self.exemplar = e.exemplar
        note = " ".join(e.exemplar.warnings)
        self.status = f"Your exemplar {e.exemplar.name}: {e.exemplar.used:.1f} s. Try it, or press OK." + \
            (f" {note}" if note else "")

    def _on_UploadProgressed(self, e: UploadProgressed) -> None:
        self.upload_fraction = e.received / e.size if e.size else 1.0
        self.status = f"Uploading… {self.upload_fraction:.0%}"

    def _on_TrackReady(self, e: TrackReady) -> None:
        t = e.track
        self.track, self.upload_fraction = t, 1.0
        self._set_window(t.window)
        self.status = f"{t.name}: {t.duration:.1f} s, {t.sample_rate} Hz, {t.channels} ch. Pick the window, or go on."

    def _on_WindowPicked(self, e: WindowPicked) -> None:
        self.window_start, self.window_duration = e.start, e.duration
        self.window_confirmed = False

    def _on_WholePicked(self, e: WholePicked) -> None:
        self.whole = e.whole and self.whole_allowed
        if self.whole:
            self.status = f"The whole track, {self.track.duration:.1f} s. Choose a texture."

    def _on_StrengthPicked(self, e: StrengthPicked) -> None:
        # to the slider's hundredths: its float32 value is not what the user read on it
        self.strength = round(min(max(float(e.strength), 0.0), 1.0), 2)

    def _on_WindowReady(self, e: WindowReady) -> None:
        self._set_window(e.window)
        self.status = f"Window {e.window.start:.2f}–{e.window.start + e.window.duration:.2f} s. Choose a texture."

    def _set_window(self, w: client.Window) -> None:
        self.window_start, self.window_duration, self.window_confirmed = w.start, w.duration, True
        self.window_peaks = np.array([w.peaks_min, w.peaks_max], dtype=np.float32)
        self.error = " ".join(w.warnings) if w.warnings else self.error

    # choices
    def _on_TexturePicked(self, e: TexturePicked) -> None:
        self.texture, self.texture_confirmed = e.name, False

    def confirm_texture(self) -> None:
        if self.enabled()["texture_ok"]:
            self.texture_confirmed = True
            self.status = f"Texture: {self.texture}. Choose a quality and convert."

    def _on_QualityPicked(self, e: QualityPicked) -> None:
        self.quality = e.name

    def _on_PreviewReady(self, e: PreviewReady) -> None:
        self.preview = e
        self.status = f"Playing a sample of {e.texture}."

    # work
    def start_job(self) -> None:
        self.job, self.error = JobState(job=None), None
        self.status = "Sending…"

    def _on_JobAccepted(self, e: JobAccepted) -> None:
        self.job = JobState(job=e.job, position=e.position)
        self.status = f"Queued, {e.position} ahead." if e.position else "Converting…"

    def _on_DownloadProgressed(self, e: DownloadProgressed) -> None:
        if self.job is not None:
            self.job.stage, self.job.fraction = "downloading", e.received / e.size if e.size else 1.0
            self.status = f"Receiving the result… {self.job.fraction:.0%}"

    def _on_JobProgress(self, e: JobProgress) -> None:
        if self.job is None:
            return  # a late frame of a job we no longer follow
        self.job.stage, self.job.fraction, self.job.eta, self.job.position = e.stage, e.fraction, e.eta, e.position
        where = f", {e.position} ahead" if e.position else ""
        self.status = f"{e.stage.capitalize()} {e.fraction:.0%}, about {e.eta:.1f} s left{where}"

    def _on_ResultReady(self, e: ResultReady) -> None:
        r = e.result
        self.result, self.job, self.listening = r, None, "result"
        total = sum(v for k, v in r.timings.items() if k != "queued")
        at = "" if r.strength >= 1.0 else f" at {r.strength:.0%}"
        self.status = (f"Done: {r.texture}{at}, {r.quality}, {r.duration:.1f} s{' stereo' if r.channels == 2 else ''}, "
                       f"{total:.2f} s of work. Play it (A/B: the input from the same place), save it, or convert "
                       f"again.")

    def _on_JobCancelled(self, e: JobCancelled) -> None:
        self.job = None
        self.status = "Cancelled."

    def _on_RequestFailed(self, e: RequestFailed) -> None:
        self.error = e.message
        if e.request in ("convert", "cancel"):
            self.job = None
        if e.request == "upload":
            self.track = None
        if e.request == "exemplar":  # the server refused it: what it keeps is not this one
            self.exemplar = None
        if e.request in ("open", "open_exemplar"):
            self.status = "Could not open the file."
        else:
            self.status = f"{e.request.capitalize()} failed ({e.code})."
