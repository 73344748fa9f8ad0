"""A wrong ``models`` for the server (``--models tests.ignored_exemplar_models``): the
real textures, but a user's own exemplar is ignored and the built-in texture IN_ITS_PLACE
converts instead. tests.test_server_models shows that its check of a user's exemplar
through the server fails with it."""
from __future__ import annotations

import models
from models import *  # noqa: F401,F403  (the real textures, their names and errors)

IN_ITS_PLACE = "laser"  # the first texture: what a path that lost the exemplar would fall back to


def from_exemplar(samples, settings_dir=None):
    """The built-in texture IN_ITS_PLACE, whatever ``samples`` hold."""
    return models.load(IN_ITS_PLACE)


def resolve(name=None, exemplar=None):
    """``models.resolve``, with IN_ITS_PLACE for a user's exemplar."""
    return models.resolve(IN_ITS_PLACE if exemplar is not None else name)
