"""MusiCoder's textures: an exemplar recording and a few tuned numbers each.

    import models
    m = models.load("water")            # ModelError if its settings or exemplar are missing or bad
    log_mag_out = m.transform(log_mag)  # (1025, frames) float32 nats -> same shape
    mine = models.from_exemplar(samples) # a user's own exemplar: (n,) float32 at 44.1 kHz
    m = models.resolve("Water")         # what a user named (a texture in any case, an exemplar, or None)

A conversion is :mod:`musicoder.texture`'s band-statistics transfer toward the texture's
exemplar with the texture's :class:`~musicoder.texture.Settings`, tuned on training music
by ``python -m models.tune`` and stored in ``settings/{texture}.json`` with their tuning
and validation records. Two engines drive it (``ENGINES``): "tuned", those settings alone,
and "learned", the texture network of :mod:`musicoder.control` (trained by
``python -m models.train``, weights in ``learned/controller.npz``) moving every band's
controls away from them per song and per frame; ``DEFAULT_ENGINE`` is the one that
measured better on held-out music. Why this design and not a network that paints the spectrogram:
``models/README.md``.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from musicoder import control
from musicoder import texture as transfer

HERE = Path(__file__).resolve().parent
SETTINGS_DIR = HERE / "settings"
EXEMPLARS_DIR = HERE / "exemplars"
LEARNED_DIR = HERE / "learned"
ENGINES = ("learned", "tuned")
DEFAULT_ENGINE = "tuned"
FORMAT_VERSION = 2
METHOD = "band-statistics"
ANY = "any"  # settings/any.json: the settings of a user's own exemplar, by its sound


class ModelError(Exception):
    """A texture's settings or exemplar are missing, corrupt or incompatible."""


@dataclasses.dataclass(frozen=True)
class Texture:
    """A texture: ``name`` (id), ``label`` (UI), a ``description`` of what a conversion
    sounds like (heard on held-out music, not what the exemplar promises), and the path
    of its exemplar recording (what the transfer moves toward; also the preview)."""

    name: str
    label: str
    description: str
    exemplar_path: Path


TEXTURES: "collections.OrderedDict[str, Texture]" = collections.OrderedDict(
    (t.name, t) for t in (
        Texture("laser", "Laser",
                ("Your music's bass and lower register (below about 1 kHz) with its rhythm, pulsing harder, as the "
                 "zaps do; above it a stream of falling laser zaps, loudest on the music's attacks. The melody's "
                 "upper partials give way to the zaps (preview: the zaps it takes its sound from)."),
                EXEMPLARS_DIR / "laser.flac"),
        Texture("water", "Water",
                ("Your music kept below about 3.5 kHz, a little evened out; above it a soft running hiss with short "
                 "bubbly chirps, thicker on the music's attacks, in place of its own highs (preview: the brook it "
                 "takes its sound from)."),
                EXEMPLARS_DIR / "water.flac"),
        Texture("future", "Future",
                ("Your music kept below about 2 kHz, its swells smoothed toward the pad's; above it the synth pad's "
                 "dark, smooth sound: the highs roll off from about 5 kHz, with the pad's swells in place of the "
                 "music's brightness (preview: the pad it takes its sound from)."),
                EXEMPLARS_DIR / "future.flac"),
    )
)


def texture(name: str) -> Texture:
    """The :class:`Texture` called ``name``, in any case and with spaces around it
    ("Water", " water"); ``musicoder.errors.InputError`` (code "unknown_texture",
    listing the valid names) for a name a user typed wrong."""
    from musicoder.errors import InputError

    try:
        return TEXTURES[name.strip().lower()]
    except (KeyError, AttributeError):
        raise InputError("unknown_texture", f"Unknown texture {name!r}: choose one of "
                                            f"{', '.join(TEXTURES)}.") from None


def resolve(name: str | None = None, exemplar: np.ndarray | None = None) -> TextureModel | None:
    """What a user named, as the model a conversion uses: a built-in texture by ``name``
    (any case, as :func:`texture` reads it), a user's own ``exemplar`` ((n,) float
    samples at 44.1 kHz, as :func:`from_exemplar` takes them), or None for neither (no
    texture: a round trip). The CLI and the server's workers both resolve through here.
    InputError "unknown_texture" or "silent"; ModelError for a broken installation;
    ValueError for both at once."""
    if name is not None and exemplar is not None:
        raise ValueError("give a texture's name or an exemplar, not both")
    if exemplar is not None:
        return from_exemplar(exemplar)
    return None if name is None else load(texture(name).name)


def _check_name(name: str) -> str:
    if name not in TEXTURES:
        raise KeyError(f"unknown texture {name!r}: choose one of {', '.join(TEXTURES)}")
    return name


class TextureModel:
    """A loaded texture: its ``settings``, its exemplar's analysis and ``transfer``, the
    :class:`~musicoder.texture.Transfer` toward it (what a conversion hands the engine,
    which plans it over a whole song and applies it block by block). :meth:`transform`
    (a whole clip at once, shape-checked) is thread-safe, deterministic and reusable."""

    def __init__(self, name: str, settings: transfer.Settings, exemplar: transfer.ExemplarAnalysis,
                 meta: dict | None = None, controller: control.Controller | None = None):
        self.name = name
        self.settings = settings
        self.exemplar = exemplar
        self.meta = meta or {}
        self.engine = "tuned" if controller is None else "learned"
        self.transfer = transfer.make_transform(exemplar, settings, controller)

    def transform(self, log_mag: np.ndarray) -> np.ndarray:
        """(N_BINS, frames) natural-log magnitude → the textured one, same shape, float32."""
        log_mag = np.asarray(log_mag, dtype=np.float32)
        if log_mag.ndim != 2 or log_mag.shape[0] != transfer.spectral.N_BINS:
            raise ValueError(f"expected a ({transfer.spectral.N_BINS}, frames) log-magnitude, got {log_mag.shape}")
        return self.transfer(log_mag)


def read_settings(path: Path) -> tuple[transfer.Settings, dict]:
    """The :class:`~musicoder.texture.Settings` stored in a settings file and its whole
    record; ModelError naming the file when it is missing, corrupt or of another format."""
    if not path.is_file():
        raise ModelError(f"{path}: the texture's settings file is missing (make it with python -m models.tune)")
    try:
        meta = json.loads(path.read_text())
        version, method = meta.get("format_version"), meta.get("method")
        settings = transfer.Settings(**meta["settings"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelError(f"{path}: corrupt texture settings ({type(e).__name__}: {e})") from None
    if version != FORMAT_VERSION or method != METHOD:
        raise ModelError(f"{path}: format {version!r} of method {method!r}; this version of MusiCoder reads "
                         f"format {FORMAT_VERSION} of {METHOD!r}")
    return settings, meta


def analyse_exemplar_file(path: Path) -> transfer.ExemplarAnalysis:
    """The analysis of the exemplar recording at ``path`` (all of it); ModelError naming
    the file when it is missing, not audio or silent."""
    from musicoder import audio
    from musicoder.errors import InputError

    try:
        return transfer.analyse_exemplar(audio.load(path, duration=None).samples)
    except (InputError, OSError, ValueError) as e:
        raise ModelError(f"{path}: unusable exemplar ({e})") from None


_CACHE: dict[str, TextureModel] = {}
_CACHE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _controller(path: str) -> control.Controller:
    try:
        return control.Controller.load(path)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{path}: unusable texture network ({type(e).__name__}: {e}); "
                         f"make it with python -m models.train") from None


def controller(engine: str | None = None) -> control.Controller | None:
    """The texture network an ``engine`` (one of ENGINES; None: DEFAULT_ENGINE) drives the
    transfer with: None for "tuned", the shipped weights for "learned" (loaded once).
    ValueError for another name; ModelError naming the file when the weights are missing
    or corrupt."""
    engine = DEFAULT_ENGINE if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return None if engine == "tuned" else _controller(str(LEARNED_DIR / "controller.npz"))


def load(name: str, settings_dir: str | Path | None = None, engine: str | None = None) -> TextureModel:
    """Load (once, then cached) texture ``name``: its settings and its exemplar's analysis,
    driven by ``engine`` (:func:`controller`).

    KeyError for an unknown name (the message lists the valid ones); ModelError naming
    the file when the settings, the exemplar or the network are missing, corrupt or
    incompatible.
    """
    _check_name(name)
    folder = Path(settings_dir) if settings_dir is not None else SETTINGS_DIR
    net = controller(engine)
    key = f"{folder}/{name}/{'tuned' if net is None else 'learned'}"
    with _CACHE_LOCK:
        if key not in _CACHE:
            settings, meta = read_settings(folder / f"{name}.json")
            _CACHE[key] = TextureModel(name, settings, analyse_exemplar_file(TEXTURES[name].exemplar_path), meta,
                                       net)
        return _CACHE[key]


@dataclasses.dataclass(frozen=True)
class SoundRow:
    """One row of ``any.json``'s ``by_sound`` table: a tuning ``recording``, its
    :func:`~musicoder.texture.flatness` (nats) and the settings that suit it best."""

    recording: str
    flatness: float
    settings: transfer.Settings


def sound_rows(table: list[dict]) -> tuple[SoundRow, ...]:
    """``any.json``'s ``by_sound`` table (dicts of recording, flatness, settings) as rows;
    ValueError, KeyError or TypeError for a row that is not one."""
    return tuple(SoundRow(str(r["recording"]), float(r["flatness"]), transfer.Settings(**r["settings"]))
                 for r in table)


def nearest_sound(rows: Iterable[SoundRow], flatness: float) -> SoundRow:
    """The row whose recording is nearest to ``flatness`` (nats): the one whose settings an
    exemplar of that flatness takes."""
    return min(rows, key=lambda r: abs(r.flatness - flatness))


@functools.lru_cache(maxsize=4)
def _any_settings(path: str) -> tuple[transfer.Settings, tuple[SoundRow, ...], dict]:
    """read_settings and the by_sound table, once per file: a server worker calls
    from_exemplar for every job. ModelError naming the file for a corrupt table."""
    settings, meta = read_settings(Path(path))
    try:
        rows = sound_rows(meta.get("by_sound", []))
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: corrupt by_sound table ({type(e).__name__}: {e})") from None
    return settings, rows, meta


def from_exemplar(samples: np.ndarray, settings_dir: str | Path | None = None,
                  engine: str | None = None) -> TextureModel:
    """A texture made from a user's own exemplar: (n,) float samples at 44.1 kHz (as
    ``musicoder.audio.load_exemplar`` gives them). Its settings are those of the tuning
    recording nearest to it by spectral flatness (``settings/any.json``'s ``by_sound``
    table; its ``settings`` when there is none): a hiss and a hum want different
    crossovers. Analysed now (~30 ms for 10 s), never cached: an exemplar belongs to one
    user. Driven by ``engine`` (:func:`controller`), which starts from those settings.
    InputError "silent" for silence; ModelError if the settings file or the network is
    missing or bad. The model's ``meta["matched"]`` names the tuning recording whose
    settings it took."""
    from musicoder.errors import InputError

    folder = Path(settings_dir) if settings_dir is not None else SETTINGS_DIR
    net = controller(engine)
    settings, rows, meta = _any_settings(str(folder / f"{ANY}.json"))
    try:
        analysis = transfer.analyse_exemplar(samples)
    except ValueError as e:
        raise InputError("silent", f"The exemplar cannot be used: {e}.") from None
    matched = None
    if rows:
        nearest = nearest_sound(rows, transfer.flatness(analysis))
        settings, matched = nearest.settings, nearest.recording
    return TextureModel("exemplar", settings, analysis, meta | {"matched": matched}, net)
