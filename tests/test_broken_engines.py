"""The texture tests' power: each wrong engine of tests.broken_engines, swapped in for
``musicoder.texture.make_transform``, must fail the check named for its failure
(tests.texture_checks) on every built-in texture and on a user's exemplar, and the unit
tests of tests.test_texture that name the transfer's claims. When the engine is replaced,
these say whether the checks still tell a texture transfer from the wrong ones."""
from __future__ import annotations

import numpy as np
import pytest

import models
from musicoder import texture as transfer

from . import broken_engines, test_texture
from . import texture_checks as checks

# each wrong engine: the checks named for what it gets wrong (the first is the one its
# failure is named by), and the song that shows it (tests.texture_checks's thresholds
# give the numbers)
CAUGHT_BY = {
    "identity": (("moves toward the exemplar",), "demo"),
    "pasted exemplar": (("not the exemplar pasted in", "keeps the music", "keeps the rhythm"), "demo"),
    "noise under the music": (("keeps the music",), "demo"),
    "ignores the exemplar": (("moves toward the exemplar",), "demo"),
    # on the demo its highs alone move the output further than water's whole transfer does
    "far above the music": (("moves toward the exemplar",), "synthetic"),
    "every band replaced": (("keeps the music",), "demo"),
}
# the exemplar's sound (with the music's loudness contour, for the second): these may be as near the
# exemplar as its own windows are
NEAR_THE_EXEMPLAR = ("pasted exemplar", "every band replaced")
# on a user's exemplar, these must also fail check_moves_toward_this_exemplar: they move
# toward no exemplar, or toward another
NOT_TOWARD_THIS_ONE = ("identity", "ignores the exemplar")
# the unit tests of the transfer (tests.test_texture) and the wrong engines each must fail
UNIT_TESTS = {
    test_texture.test_below_the_crossover_the_music_is_kept_and_above_it_moves_to_the_exemplar:
        set(broken_engines.ENGINES),
    test_texture.test_the_exemplar_events_land_on_the_music_onsets:  # its zaps ring above 6 kHz; the exemplar's
        set(broken_engines.ENGINES) - {"far above the music", "every band replaced"},  # events still land there
}


@pytest.fixture()
def engine_swapped(monkeypatch):
    """swap(name): that wrong engine in place of make_transform, with no texture model
    loaded before it in the cache (a model makes its transform when it is loaded)."""
    def swap(name: str) -> None:
        monkeypatch.setattr(transfer, "make_transform", broken_engines.ENGINES[name])
        models._CACHE.clear()

    yield swap
    models._CACHE.clear()  # the real engine's models again for the tests after


def fails(check, *args) -> bool:
    """Whether check(*args) fails (raises AssertionError)."""
    try:
        check(*args)
    except AssertionError:
        return True
    return False


def test_every_wrong_engine_has_its_checks():
    assert set(CAUGHT_BY) == set(broken_engines.ENGINES)
    assert {check for names, _ in CAUGHT_BY.values() for check in names} <= set(checks.CHECKS)


@pytest.mark.parametrize("name", list(CAUGHT_BY))
def test_a_wrong_engine_fails_the_check_named_for_it(name, engine_swapped, demo_samples):
    names, song = CAUGHT_BY[name]
    engine_swapped(name)
    music = {song: checks.songs(demo_samples)[song]}
    conversions = {texture: checks.texture_conversions(texture, music)[0] for texture in models.TEXTURES}
    conversions["a user's exemplar"] = checks.user_conversions(music)[0]
    for what, c in conversions.items():
        for check in names:
            assert fails(checks.CHECKS[check], c), f"{name} passes '{check}' with {what} on the {song} song"
        if name not in NEAR_THE_EXEMPLAR:  # that check's name is true: only the exemplar, or nearly it, fails it
            checks.check_not_the_exemplar_pasted_in(c)
    if name in NOT_TOWARD_THIS_ONE:
        assert fails(checks.check_moves_toward_this_exemplar, conversions["a user's exemplar"],
                     checks.other_exemplars()), f"{name} moves toward the user's exemplar more than the others"


@pytest.mark.parametrize("name", list(CAUGHT_BY))
def test_a_wrong_engine_fails_the_transfers_unit_tests(name, engine_swapped):
    engine_swapped(name)
    for unit_test, catches in UNIT_TESTS.items():
        if name in catches:
            assert fails(unit_test), f"{name} passes {unit_test.__name__}"


def test_the_wrong_engines_keep_the_transform_contract():
    # they fail on what they do, not on a shape or a type
    x = np.random.default_rng(0).normal(-4.0, 1.0, (1025, 40)).astype(np.float32)
    exemplar = transfer.analyse_exemplar(broken_engines.hiss())
    settings = transfer.Settings(crossover_hz=2000.0)
    for name, make in broken_engines.ENGINES.items():
        out = make(exemplar, settings)(x)
        assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all(), name
