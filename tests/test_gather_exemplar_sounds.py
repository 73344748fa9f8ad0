"""The exemplar-sound gatherer's selection rules (pure functions, no downloads)."""
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.fixture(scope="module")
def g():
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("gather_exemplar_sounds", SCRIPTS / "gather_exemplar_sounds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


STK = "usr/share/games/supertuxkart/data/sfx"
WESNOTH = "usr/share/games/wesnoth/1.16/data/core/sounds"


@pytest.mark.parametrize("name", [
    "rain.ogg", "Heavy_RAIN_loop.wav", "thunder2.ogg", "campfire.ogg", "fire-lance~.wav", "flamethrower.ogg",
    "afterburner~.wav", "blowtorch.ogg", "wind_howl.ogg", "storm.ogg", "crowd.ogg", "lobby_chat.ogg",
    "chatter.ogg", "applause.ogg", "cheeringloop.wav", "crickets1_00.ogg", "cricket.wav", "people.ogg",
    "talk.ogg", "voice.ogg", "speech.ogg", "night.ogg", "WilhelmScream.ogg", "ambi_choir.flac",
])
def test_reserved_subjects_are_rejected(g, name):
    assert g.excluded_word(f"usr/share/games/x/sounds/{name}") is not None
    assert g.rejection("supertuxkart-data", f"{STK}/{name}", set()) is not None


def test_folder_names_count_too(g):
    assert g.excluded_word("usr/share/games/hedgewars/Data/Sounds/voices/Default/Boom.ogg") == "voice"
    assert g.excluded_word("usr/share/games/x/ambient/rain/drops01.wav") == "rain"


@pytest.mark.parametrize("package,path", [
    ("supertuxkart-data", f"{STK}/anvil.ogg"),
    ("supertuxkart-data", f"{STK}/river_loop.ogg".replace("river_loop", "waterfall_loop_2")),
    ("sonic-pi-samples", "usr/share/sonic-pi/samples/ambi_lunar_land.flac"),
    ("wesnoth-1.16-data", f"{WESNOTH}/explosion.ogg"),
    ("7kaa-data", "usr/share/games/7kaa/SOUND/QUAKE.WAV"),
])
def test_plain_effects_are_taken(g, package, path):
    assert g.rejection(package, path, g.held_out_paths()) is None
    assert g.rejection(package, "./" + path, g.held_out_paths()) is None


def test_user_exemplars_are_held_out(g):
    held_out = g.held_out_paths()
    assert len(held_out) == 18
    for package, path, _ in (*g.TUNING.values(), *g.VALIDATION.values()):
        assert g.rejection(package, path, held_out) in ("user exemplar", "held-out package")
    assert g.rejection("supertuxkart-data", f"{STK}/clock.ogg", held_out) == "user exemplar"
    # The same name in another package is a different recording.
    assert g.rejection("supertuxkart-data", f"{STK}/clock.ogg", set()) is None


@pytest.mark.parametrize("package", ["naev-data", "supertux-data", "lincity-ng-data"])
def test_validation_music_packages_give_nothing(g, package):
    assert package in g.DEFAULT_VAL_PACKAGES
    assert g.rejection(package, f"usr/share/games/{package}/sounds/click.wav", set()) == "held-out package"


def test_music_voices_and_other_files_are_refused(g):
    assert g.rejection("supertuxkart-data", "usr/share/games/supertuxkart/data/music/beach.ogg", set()) == "music"
    assert g.rejection("warmux-data", "usr/share/games/warmux/sound/default/misc/frog_music.ogg", set()) == "music"
    # A training-music file outside any music folder.
    assert g.rejection("marsshooter-data", "usr/share/games/marsshooter/audio/menu.ogg", set()) == "music"
    assert g.rejection("wesnoth-1.16-data", f"{WESNOTH}/human-die-1.ogg", set()) == "package skip list"
    assert g.rejection("megaglest-data", "usr/share/games/megaglest/techs/megapack/factions/magic/units/"
                       "initiate/sounds/initiate_select1.wav", set()) == "package skip list"
    assert g.rejection("megaglest-data", "usr/share/games/megaglest/tilesets/desert2/sounds/day.ogg",
                       set()) == "package skip list"
    assert g.rejection("supertuxkart-data", f"{STK}/anvil.mp3", set()) == "not a sound file"
    assert g.rejection("supertuxkart-data", "usr/share/games/supertuxkart/data/tracks/x/cow.ogg",
                       set()) == "not in a sound folder"
    assert g.rejection("no-such-package", "usr/share/sounds/a.ogg", set()) == "not in a sound folder"


def test_duration_bounds(g):
    assert g.duration_ok(0.5, 0.5, 30) and g.duration_ok(30.0, 0.5, 30)
    assert not g.duration_ok(0.49, 0.5, 30)
    assert not g.duration_ok(30.01, 0.5, 30)
    assert not g.duration_ok(None, 0.5, 30)


def test_spread_pick_caps_and_spreads_over_folders(g):
    big = [f"a/big/hit{i}.wav" for i in range(50)]
    small = ["a/small/one.wav", "a/small/two.wav"]
    picked = g.spread_pick(big + small, 6)
    assert len(picked) == 6
    assert set(small) <= set(picked)
    assert picked == sorted(picked)
    # Not simply the first of a numbered series, and the same every time.
    assert [p for p in picked if "big" in p] != sorted(big)[:4]
    assert g.spread_pick(list(reversed(big + small)), 6) == picked
    assert g.spread_pick(small, 10) == sorted(small)


def test_output_names_are_flat_and_keep_the_extension(g):
    assert g.output_name("7kaa-data", "usr/share/games/7kaa/SOUND/QUAKE.WAV") == "7kaa-data__SOUND_QUAKE.wav"
    assert (g.output_name("sonic-pi-samples", "/usr/share/sonic-pi/samples/ambi_drone.flac")
            == "sonic-pi-samples__samples_ambi_drone.flac")
    assert (g.output_name("endless-sky-data", "usr/share/games/endless-sky/sounds/zapper~.wav")
            == "endless-sky-data__sounds_zapper.wav")
