"""A stand-in for the ``models`` package with identity transforms: the same API
(TEXTURES, texture, load, from_exemplar, resolve, ModelError) and the same exemplars, no
analysis.

For tests of the server's plumbing and for development without the textures' settings:
``musicoder-server --models tests.passthrough_models`` from the repository root. It lives
with the tests: the product has no placeholder models. Its identity fails every check of
a texture (tests.texture_checks): what a conversion sounds like is tested with ``models``.
"""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from musicoder.errors import InputError

_EXEMPLARS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "exemplars")


class ModelError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Texture:
    name: str
    label: str
    description: str
    exemplar_path: str


TEXTURES = {
    t.name: t for t in (
        Texture("laser", "Laser", "Passthrough stand-in for the laser texture.", os.path.join(_EXEMPLARS, "laser.flac")),
        Texture("water", "Water", "Passthrough stand-in for the water texture.", os.path.join(_EXEMPLARS, "water.flac")),
        Texture("future", "Future", "Passthrough stand-in for the future texture.", os.path.join(_EXEMPLARS, "future.flac")),
    )
}


def texture(name: str) -> Texture:
    t = TEXTURES.get(str(name).lower())
    if t is None:
        raise InputError("unknown_texture", f"Unknown texture {name!r}: use one of {', '.join(TEXTURES)}.")
    return t


class _Identity:
    """MUSICODER_PASSTHROUGH_DELAY_S=S makes each transform take S seconds more (a job
    whose length does not depend on how fast the machine is)."""

    def __init__(self, name: str):
        self.name = name
        self.delay_s = float(os.environ.get("MUSICODER_PASSTHROUGH_DELAY_S", "0"))

    def transform(self, log_mag: np.ndarray) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        return log_mag

    transfer = transform  # what the server's workers hand the engine, as models.TextureModel's


def load(name: str) -> _Identity:
    """MUSICODER_PASSTHROUGH_FAIL=NAME makes loading that texture fail (tests of the
    server's ``internal`` error)."""
    t = texture(name)
    if os.environ.get("MUSICODER_PASSTHROUGH_FAIL") == t.name:
        raise RuntimeError(f"the {t.name} stand-in is set to fail")
    return _Identity(t.name)


def from_exemplar(samples) -> _Identity:
    """A user's exemplar: identity too (MUSICODER_PASSTHROUGH_FAIL=exemplar fails it)."""
    if os.environ.get("MUSICODER_PASSTHROUGH_FAIL") == "exemplar":
        raise RuntimeError("the exemplar stand-in is set to fail")
    return _Identity("exemplar")


def resolve(name: str | None = None, exemplar=None) -> _Identity | None:
    """As ``models.resolve``: a texture by name (any case), a user's exemplar, or None for
    neither; ValueError for both at once."""
    if name is not None and exemplar is not None:
        raise ValueError("give a texture's name or an exemplar, not both")
    if exemplar is not None:
        return from_exemplar(exemplar)
    return None if name is None else load(name)
