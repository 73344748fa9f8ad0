"""models.evaluate: which clips it judges (whole held-out packages, spread, deterministic,
refused when too small or leaked into training) and the morph reference transform."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile

from models import evaluate
from musicoder import spectral

RATE = 8000  # the files are only probed for their duration: a low rate keeps them small


def write_track(path, seconds: float) -> None:
    """A quiet noise track of ``seconds`` s at RATE Hz."""
    y = 0.1 * np.random.default_rng(len(path.name)).standard_normal(int(seconds * RATE))
    soundfile.write(path, y.astype(np.float32), RATE)


@pytest.fixture
def music_dir(tmp_path):
    """A fake gathered-music folder: two held-out packages (5 tracks of 45 s; 2 tracks, one
    of 25 s) in val/, one training package in train/."""
    (tmp_path / "val").mkdir()
    (tmp_path / "train").mkdir()
    for i in range(5):
        write_track(tmp_path / "val" / f"alpha__t{i}.wav", 45.0)
    write_track(tmp_path / "val" / "beta__long.wav", 45.0)
    write_track(tmp_path / "val" / "beta__short.wav", 25.0)
    write_track(tmp_path / "train" / "gamma__x.wav", 45.0)
    manifest = {"val_packages": ["alpha", "beta"],
                "packages": {"alpha": {"style": "rock", "split": "val"}, "beta": {"style": "jazz", "split": "val"},
                             "gamma": {"style": "pop", "split": "train"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_clips_spread_over_each_held_out_package(music_dir):
    clips = evaluate.validation_clips(music_dir, per_package=3)
    assert [(c.path.name, c.package, c.style) for c in clips] == [
        ("alpha__t0.wav", "alpha", "rock"), ("alpha__t2.wav", "alpha", "rock"), ("alpha__t4.wav", "alpha", "rock"),
        ("beta__long.wav", "beta", "jazz"), ("beta__short.wav", "beta", "jazz")]
    assert evaluate.validation_clips(music_dir, per_package=3) == clips  # deterministic


def test_window_at_30_s_or_the_middle_of_a_short_track(music_dir):
    starts = {c.path.name: c.start for c in evaluate.validation_clips(music_dir, per_package=3)}
    assert starts["alpha__t0.wav"] == 30.0
    assert starts["beta__long.wav"] == 30.0
    assert starts["beta__short.wav"] == pytest.approx(7.5, abs=0.05)  # (25 - 10) / 2


def test_spread_takes_the_middle_of_equal_parts():
    assert evaluate.spread(list(range(4)), 3) == [0, 2, 3]
    assert evaluate.spread(list(range(52)), 3) == [8, 26, 43]
    assert evaluate.spread([1, 2], 3) == [1, 2]


def test_small_set_refused_unless_allowed(music_dir):
    clips = evaluate.validation_clips(music_dir, per_package=3)
    with pytest.raises(SystemExit, match="too small: 5 clips of 2 styles"):
        evaluate.check_size(clips)
    evaluate.check_size(clips, allow_small=True)
    big = [c._replace(style=f"s{i % 4}") for i, c in enumerate(clips * 3)][:12]
    evaluate.check_size(big)  # 12 clips of 4 styles pass


def test_held_out_package_found_in_train_is_refused(music_dir):
    write_track(music_dir / "train" / "beta__leak.wav", 45.0)
    with pytest.raises(SystemExit, match="beta has 1 tracks in train/"):
        evaluate.validation_clips(music_dir)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="manifest.json: no usable manifest"):
        evaluate.validation_clips(tmp_path)


def test_morph_shape_identity_and_exemplar_share():
    rng = np.random.default_rng(0)
    log_x = rng.normal(-5, 1, (spectral.N_BINS, 50)).astype(np.float32)
    log_s = rng.normal(-3, 1, (spectral.N_BINS, 20)).astype(np.float32)
    assert evaluate.morph_transform(log_s)(log_x).shape == log_x.shape
    np.testing.assert_array_equal(evaluate.morph_transform(log_s, weight=0.0)(log_x), log_x)
    tiled = evaluate.tile_frames(log_s, 50)
    np.testing.assert_array_equal(tiled[:, 20:40], log_s)
    np.testing.assert_allclose(evaluate.morph_transform(log_s, weight=1.0)(log_x), tiled)
    np.testing.assert_allclose(evaluate.morph_transform(log_s)(log_x), 0.7 * log_x + 0.3 * tiled, atol=1e-5)


def test_exemplar_is_matched_to_the_clips_level():
    rng = np.random.default_rng(1)
    exemplar = rng.standard_normal(spectral.SAMPLE_RATE).astype(np.float32)
    quiet, loud = 0.01 * exemplar, 0.1 * exemplar
    # a tenfold level is log(10) nats in every bin, whatever the exemplar's own level
    diff = evaluate.exemplar_log_mag(exemplar * 3, loud) - evaluate.exemplar_log_mag(exemplar, quiet)
    assert diff.shape[0] == spectral.N_BINS
    np.testing.assert_allclose(np.median(diff), np.log(10), atol=1e-3)


def test_the_frontier_made_once_gives_the_judges_own_advantage():
    # score() reuses one frontier per clip and exemplar; it must equal texture_judge's
    # frontier_advantage, which makes the frontier again for every output
    try:
        tj = evaluate.judge_module()
    except SystemExit:
        pytest.skip("texture_judge.py (shared/eval) is not beside the repository")
    rng = np.random.default_rng(0)
    t = np.arange(3 * tj.SR) / tj.SR
    x = (0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    s = (0.1 * rng.standard_normal(len(t))).astype(np.float32)
    y = (0.7 * x + 0.3 * s * np.abs(np.sin(2 * np.pi * 5 * t))).astype(np.float32)
    r = tj.judge(x, y, s)
    theirs = tj.frontier_advantage(x, s, r)
    ours = evaluate.score(tj, x, y, s, evaluate.frontier(tj, x, s))
    assert ours["advantage"] == pytest.approx(theirs["advantage"], abs=1e-4)
    assert ours["mix_move"] == pytest.approx(theirs["mix_move"], abs=1e-4)
    # both bands in one judgement (content once) give what the judge gives with --band alone
    judged, content_kept = evaluate.bands((250.0, 4000.0)), tj.content_kept
    both = evaluate.score(tj, x, y, s, evaluate.frontier(tj, x, s, judged), judged)
    assert both["advantage"] == ours["advantage"] and both["content"] == ours["content"]
    assert tj.BAND is None and tj.content_kept is content_kept  # the judge is left as it was
    tj.BAND = (250.0, 4000.0)
    try:
        r = tj.judge(x, y, s)
        body = tj.frontier_advantage(x, s, r)
    finally:
        tj.BAND = None
    assert both["body_advantage"] == pytest.approx(body["advantage"], abs=1e-4)
    assert both["body_mix_move"] == pytest.approx(body["mix_move"], abs=1e-4)
    assert abs(both["body_advantage"] - both["advantage"]) > 1e-3  # the band changes the figures


# ---- models.tune: what it tunes on and how it chooses --------------------------------------

def test_tuning_reads_training_packages_only_and_skips_a_silent_window(music_dir):
    from models import tune

    clips = tune.tuning_clips(music_dir)
    assert [(c.package, c.path.name, c.start) for c in clips] == [("gamma", "gamma__x.wav", 30.0)]
    write_track(music_dir / "train" / "gamma__y.wav", 45.0)
    soundfile.write(music_dir / "train" / "gamma__z.wav", np.zeros(int(45 * RATE), np.float32), RATE)  # silence
    assert [c.path.name for c in tune.tuning_clips(music_dir, per_package=3)] == ["gamma__x.wav", "gamma__y.wav"]
    (music_dir / "train" / "alpha__leak.wav").write_bytes((music_dir / "val" / "alpha__t0.wav").read_bytes())
    with pytest.raises(SystemExit, match="held-out package alpha"):
        tune.tuning_clips(music_dir)


def test_the_tuning_rule_keeps_the_largest_margin_to_the_bar_and_refuses_lost_content():
    from models import tune

    mean_bar, floor = tune.BAR
    assert tune.expected_worst([0.3, 0.1, 0.2], n=3) == pytest.approx(0.1)  # all of them: the minimum
    assert tune.expected_worst([0.3, 0.1, 0.2], n=1) == pytest.approx(0.2)  # one: the mean
    assert tune.expected_worst([0.0, 1.0, 1.0, 1.0], n=2) == pytest.approx(0.5)  # the outlier in half the pairs
    assert tune.objective([0.2, 0.1], [0.9, 0.9]) == pytest.approx(0.15 - mean_bar)  # the mean is the closer
    assert tune.objective([0.5, -0.15], [0.9, 0.9]) == pytest.approx(-0.15 - floor)  # the worst window is
    assert tune.objective([0.5, 0.5], [0.9, tune.MIN_CONTENT - 0.01]) == float("-inf")
    assert tune.objective([0.05, -0.05], [0.9, 0.9], tune.ANY_BAR) == pytest.approx(0.0)  # mean 0 over a bar of 0
    # a user's exemplar: each recording against the bar, the worst one counts
    per_recording = {"a/w1": [{"advantage": 0.3, "content": 0.9}, {"advantage": 0.1, "content": 0.9}],
                     "b/w1": [{"advantage": -0.2, "content": 0.9}, {"advantage": 0.1, "content": 0.9}]}
    assert tune.choose(per_recording, tune.GRID[:2], tune.ANY_BAR)[0]["settings"] == tune.GRID[1]
    scores = {"w1": [{"advantage": 0.1 * (i % 3), "content": 0.9} for i in range(len(tune.GRID))],
              "w2": [{"advantage": 0.05, "content": 0.9 if i != 2 else 0.1} for i in range(len(tune.GRID))]}
    ranked = tune.choose(scores)
    assert ranked[0]["settings"] == tune.GRID[5]  # advantage 0.2 on w1; GRID[2] has it too but loses content
    assert [r["objective"] for r in ranked] == sorted((r["objective"] for r in ranked), reverse=True)


def test_the_by_sound_table_is_checked_on_recordings_it_was_not_made_from():
    from models import tune

    grid = tune.ANY_GRID[:2]
    table = [{"recording": "hiss", "flatness": -1.0, "settings": grid[0]},
             {"recording": "steam", "flatness": -1.5, "settings": grid[0]},
             {"recording": "hum", "flatness": -9.0, "settings": grid[1]}]
    scores = {"hiss": {"w": [{"advantage": 0.2, "content": 0.9}, {"advantage": 0.0, "content": 0.9}]},
              "steam": {"w": [{"advantage": 0.1, "content": 0.8}, {"advantage": 0.3, "content": 0.9}]},
              "hum": {"w": [{"advantage": -0.1, "content": 0.9}, {"advantage": 0.05, "content": 0.7}]}}
    checks = {c["recording"]: c for c in tune.leave_one_out(table, scores, {r: grid for r in scores}, one_for_all=grid[1])}
    assert checks["hiss"]["nearest"] == "steam" and checks["hiss"]["mean_advantage"] == 0.2
    assert checks["steam"]["nearest"] == "hiss" and checks["steam"]["one_for_all_mean_advantage"] == 0.3
    # the hum's nearest other row is a hiss's: it is scored with that setting, not its own
    assert checks["hum"]["nearest"] == "steam" and checks["hum"]["mean_advantage"] == -0.1


def test_refine_stores_the_best_of_the_stored_setting_and_each_change(tmp_path, monkeypatch):
    """--refine on a faked judge whose scores are known: the winning change is stored (and a
    validation record of the old setting dropped), a change that loses is not, and any.json's
    rows and its leave-one-out check are made anew."""
    import shutil
    from pathlib import Path

    import models
    from models import tune

    settings_dir = tmp_path / "settings"
    shutil.copytree(models.SETTINGS_DIR, settings_dir)
    water = json.loads((settings_dir / "water.json").read_text())
    water["settings"].pop("spread_low", None)  # as the grid search leaves it
    water["validation"] = {"old": True}
    (settings_dir / "water.json").write_text(json.dumps(water))

    def fake_clips(music_dir, per_package=1):
        return [evaluate.ValClip(Path(f"p{k}__t{j}.ogg"), f"p{k}", "style", 30.0)
                for k in range(4) for j in range(per_package)]

    def fake_judge(sources, clips, settings, jobs, desc, known=None, body=False):
        # water likes spread_low 0.5 best; a recording named *hum (tonal) and the clock (not
        # tonal: the blend is never offered to it) like the blend, others nothing new
        def adv(t, g):
            if t == "water":
                return 0.2 - abs(g.get("spread_low", 0.0) - 0.5)
            return 0.3 if (g["crossover_hz"] < 100) == (t.endswith("hum") or t == "clock") else 0.0
        return {t: {evaluate.clip_name(c): [{"advantage": adv(t, g), "content": 0.9} for g in settings[t]]
                    for c in clips} for t in sources}

    monkeypatch.setattr(tune, "tuning_clips", fake_clips)
    monkeypatch.setattr(tune, "judge_all", fake_judge)
    assert tune.main(["--texture", "water", "--refine", "--settings-dir", str(settings_dir)]) == 0
    water = json.loads((settings_dir / "water.json").read_text())
    assert water["settings"]["spread_low"] == 0.5 and "validation" not in water
    assert water["tuning"]["refined"]["windows"] == 12 and water["tuning"]["grid"]  # the grid search's record stays

    rows = json.loads((settings_dir / "any.json").read_text())["by_sound"]
    exemplars = tmp_path / "exemplars"
    exemplars.mkdir()
    for r in rows:
        (exemplars / f"{r['recording']}.wav").touch()
    assert tune.main(["--texture", "any", "--exemplars", str(exemplars), "--refine",
                      "--settings-dir", str(settings_dir)]) == 0
    record = json.loads((settings_dir / "any.json").read_text())
    for old, new in zip(rows, record["by_sound"]):
        if old["recording"].endswith("hum"):
            assert new["settings"] in tune.BLENDS and new["mean_advantage"] == 0.3
        else:
            assert new["settings"] == old["settings"]
    assert rows[[r["recording"] for r in rows].index("clock")]["flatness"] > tune.TONAL_FLATNESS
    changes = record["tuning"]["refined"]["changes"]
    assert all(b in changes["haunted_hum"] for b in tune.BLENDS) and not any(b in changes["clock"] for b in tune.BLENDS)
    checks = record["tuning"]["leave_one_out"]
    assert len(checks) == len(rows) and {c["recording"] for c in checks} == {r["recording"] for r in rows}
    (exemplars / f"{rows[0]['recording']}.wav").unlink()
    with pytest.raises(SystemExit, match=rows[0]["recording"]):
        tune.main(["--texture", "any", "--exemplars", str(exemplars), "--refine", "--settings-dir", str(settings_dir)])


def test_the_shipped_table_blends_only_tonal_rows():
    """any.json as --refine left it: the blends were offered to the tonal rows alone, and the
    drone's row took one."""
    import models
    from models import tune

    rows = json.loads((models.SETTINGS_DIR / "any.json").read_text())["by_sound"]
    blended = {r["recording"] for r in rows if r["settings"]["crossover_hz"] < 100}
    assert "drone" in blended
    assert all(r["flatness"] < tune.TONAL_FLATNESS for r in rows if r["recording"] in blended)


def test_the_sound_table_orders_recordings_from_hiss_to_hum_and_resume_reads_both_raw_formats(tmp_path):
    from models import tune

    t = np.arange(3 * 44100) / 44100
    soundfile.write(tmp_path / "hum.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 44100)
    soundfile.write(tmp_path / "hiss.wav", (0.1 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32),
                    44100)
    best = {n: {"settings": tune.ANY_GRID[i], "objective": 0.0} for i, n in enumerate(("hum", "hiss"))}
    table = tune.sound_table({"hum": tmp_path / "hum.wav", "hiss": tmp_path / "hiss.wav"}, best)
    assert [r["recording"] for r in table] == ["hiss", "hum"] and table[0]["flatness"] > table[1]["flatness"]
    assert table[1]["settings"] == tune.ANY_GRID[0]
    score = {"advantage": 0.1, "content": 0.9}
    old = {"grid": tune.GRID[:1], "first_stage": {"laser": {"w": [score]}}, "shortlists": {}, "all_windows": {}}
    new = {"grids": {"any:hum": tune.ANY_GRID[:1]}, "first_stage": {"any:hum": {"w": [score]}},
           "shortlists": {"any:hum": tune.ANY_GRID[1:2]}, "all_windows": {"any:hum": {"v": [score]}}}
    for raw, source, setting in ((old, "laser", tune.GRID[0]), (new, "any:hum", tune.ANY_GRID[0])):
        (tmp_path / "raw.json").write_text(json.dumps(raw))
        known = tune.known_scores(tmp_path / "raw.json")
        assert known[(source, "w", json.dumps(setting, sort_keys=True))] == score
    assert known[("any:hum", "v", json.dumps(tune.ANY_GRID[1], sort_keys=True))] == score


_TUNE_TWO_WORKERS = """
import sys
from pathlib import Path
from models import evaluate, tune
folder = Path(sys.argv[1])
clip = evaluate.ValClip(folder / "music.wav", "gamma", "pop", 0.0)
grid = [{"crossover_hz": 2000.0}]
sources = {"a": folder / "exemplar.wav", "b": folder / "exemplar.wav"}
scores = tune.judge_all(sources, [clip], {"a": grid, "b": grid}, 2, "two workers")
assert all(-2 < s[0]["advantage"] < 2 for t in scores.values() for s in t.values()), scores
"""


def test_tuning_with_two_workers_on_a_fresh_install_leaves_the_judge_working(tmp_path):
    # librosa's numba functions cache their machine code on disk; two workers compiling
    # them at once corrupt that cache and every judge after segfaults (seen on a new venv).
    # A fresh NUMBA_CACHE_DIR is a fresh install's cache.
    import os
    import subprocess
    import sys

    try:
        evaluate.judge_module()
    except SystemExit:
        pytest.skip("texture_judge.py (shared/eval) is not beside the repository")
    t = np.arange(11 * spectral.SAMPLE_RATE) / spectral.SAMPLE_RATE
    notes = 0.2 * np.sin(2 * np.pi * 220 * t * (1 + (t % 1 > 0.5) / 4)) * np.exp(-3 * (t % 0.5))
    soundfile.write(tmp_path / "music.wav", notes.astype(np.float32), spectral.SAMPLE_RATE)
    noise = 0.1 * np.random.default_rng(2).standard_normal(3 * spectral.SAMPLE_RATE)
    soundfile.write(tmp_path / "exemplar.wav", noise.astype(np.float32), spectral.SAMPLE_RATE)
    env = os.environ | {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    for run in ("first, compiling", "second, from the cache"):
        done = subprocess.run([sys.executable, "-c", _TUNE_TWO_WORKERS, str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=600, cwd=evaluate.REPO)
        assert done.returncode == 0, f"{run}: rc {done.returncode}\n{done.stderr[-2000:]}"


def test_recorded_commands_and_folders_carry_no_one_machines_paths(tmp_path, music_dir):
    from models import data

    home, temp, project = tmp_path / "home" / "ann", tmp_path / "tmp", data.Path(data.__file__).resolve().parents[1]
    args = ["--texture", "any", "--exemplars", str(home / "musicoder-data" / "tuning"),
            "--resume", str(temp / "run1" / "raw.json"), f"--settings-dir={project / 'models' / 'settings'}",
            "--jobs", "1", "--raw", "/srv/raw.json"]
    assert data.portable_command("python -m models.tune", args, home=home, temp=temp) == (
        "python -m models.tune --texture any --exemplars ~/musicoder-data/tuning --resume $TMPDIR/run1/raw.json "
        "--settings-dir=models/settings --jobs 1 --raw /srv/raw.json")
    assert data.portable_path(home, home=home) == "~"
    # the validation set's record names its folder the same way
    assert evaluate.describe(evaluate.validation_clips(music_dir, 1), music_dir)["music_dir"] == \
        data.portable_path(music_dir)
    assert data.user_path("~/musicoder-data") == data.Path.home() / "musicoder-data"


# ---- the learned engine's comparison: methods, both bands, its bar ----------------------------

def summary(texture, method, quality, mean, worst, content=0.8, body=None, body_worst=None):
    """A made-up summarise() row (body band figures when ``body`` is given)."""
    s = {"texture": texture, "method": method, "quality": quality, "strength": 1.0, "clips": 12,
         "mean_advantage": mean, "min_advantage": worst, "min_content": content}
    if body is not None:
        s |= {"body_mean_advantage": body, "body_min_advantage": body if body_worst is None else body_worst}
    return s


def test_the_learned_bar_asks_more_than_the_tuned_engine_in_both_bands_and_than_the_retuned_one():
    tuned = summary("water", "tuned", "standard", 0.150, 0.03, body=0.02, body_worst=-0.14)
    retuned = summary("water", "retuned", "standard", 0.170, 0.01, body=0.03, body_worst=-0.05)
    good = summary("water", "learned", "standard", 0.190, -0.02, 0.7, body=0.10, body_worst=-0.08)
    (bar,) = evaluate.learned_bar([tuned, retuned, good])
    assert bar["passed"] and bar["verdict"] == "PASS" and (bar["texture"], bar["quality"]) == ("water", "standard")
    failing = {  # each change breaks one condition alone
        "vs_tuned": {"mean_advantage": 0.175},  # above the tuned's, less than 0.03 above
        "worst": {"min_advantage": -0.06},
        "content": {"min_content": 0.59},
        "body_mean": {"body_mean_advantage": 0.04},
        "body_worst": {"body_min_advantage": -0.11},
    }
    for check, change in failing.items():
        (bar,) = evaluate.learned_bar([tuned, retuned, good | change])
        assert not bar["passed"] and bar["verdict"] == "FAIL"
        assert [k for k in failing if bar[k] is False] == [check], (check, bar)
    for check, change in (("vs_retuned", {"mean_advantage": 0.20}), ("body_vs_retuned", {"body_mean_advantage": 0.11})):
        (bar,) = evaluate.learned_bar([tuned, retuned | change, good])
        assert [k for k in bar if bar[k] is False] == [check, "passed"] and bar["verdict"] == "FAIL"
    # without the retuned settings judged, nothing failed but the bar is not passed either
    (bar,) = evaluate.learned_bar([tuned, good])
    assert bar["vs_retuned"] is None and not bar["passed"] and bar["verdict"] == "INCOMPLETE"
    assert evaluate.learned_bar([tuned, retuned]) == []  # no learned engine judged: no bar


def test_the_learned_bar_for_users_exemplars_is_per_recording_and_on_the_mean_of_means():
    rows = [summary("own:birds", "learned", "standard", 0.12, -0.05, body=0.01),
            summary("own:birds", "tuned", "standard", 0.10, -0.09, body=-0.02),
            summary("own:vinyl", "learned", "standard", 0.08, -0.02, body=0.00),
            summary("own:vinyl", "tuned", "standard", 0.04, -0.03, body=-0.01)]
    (bar,) = evaluate.own_learned_bar(rows)
    assert bar["passed"] and bar["learned_mean_of_means"] == pytest.approx(0.10)
    assert bar["tuned_mean_of_means"] == pytest.approx(0.07)
    lower = [*rows[:2], rows[2] | {"mean_advantage": 0.07}, rows[3]]  # 0.095 against 0.07: under 0.03 more
    (bar,) = evaluate.own_learned_bar(lower)
    assert bar["every_recording"] and bar["vs_tuned"] is False and not bar["passed"]
    (bar,) = evaluate.own_learned_bar([rows[0] | {"min_advantage": -0.11}, *rows[1:]])
    assert bar["recordings"]["own:birds"] == {"mean": True, "body_mean": True, "worst": False}
    assert not bar["every_recording"] and not bar["passed"]
    (bar,) = evaluate.own_learned_bar([rows[0] | {"body_mean_advantage": -0.01}, *rows[1:]])
    assert bar["recordings"]["own:birds"]["body_mean"] is False
    assert evaluate.learned_bar(rows) == []  # the built-in textures' bar is not theirs


def test_on_the_networks_held_out_training_music_learned_must_match_tuned():
    rows = [summary("laser", "learned", "standard", 0.20, 0.0), summary("laser", "tuned", "standard", 0.21, 0.0),
            summary("water", "learned", "standard", 0.15, 0.0), summary("water", "tuned", "standard", 0.15, 0.0)]
    bars = {b["texture"]: b for b in evaluate.held_out_training_bar(rows)}
    assert not bars["laser"]["passed"] and bars["water"]["passed"]
    summaries = [{**r, "vs_morph": None, "mean_content": 0.9, "mean_own_move": 1.0, "min_own_chroma": 0.8}
                 for r in rows]
    text = evaluate.report([], summaries, {}, {"clip_count": 6, "packages": {"nexuiz-music": "industrial"},
                                               "styles": []}, held_out_training=True)
    assert "laser          standard FAIL: learned +0.200 vs tuned +0.210" in text
    assert "quality bar" not in text and "learned bar" not in text


def test_the_methods_side_by_side_in_both_bands():
    rows = [summary("water", m, q, 0.1 + i / 100, -0.01 * i, 0.7, body=0.05 * i)
            for q in ("hifi", "standard") for i, m in enumerate(("morph", "retuned", "learned", "tuned"))]
    rows.append(summary("laser", "tuned", "standard", 0.2, 0.1))  # judged in the full band alone
    lines = evaluate.comparison_table(rows).splitlines()
    assert "full: mean (worst)" in lines[0] and "body: mean (worst)" in lines[0]
    # per texture as judged, Standard before HIFI, the methods in METHODS' order
    assert [ln.split()[:3] for ln in lines[1:]] == [["water", "standard", m] for m in evaluate.METHODS] + \
        [["water", "hifi", m] for m in evaluate.METHODS] + [["laser", "standard", "tuned"]]
    learned = next(ln for ln in lines if ln.split()[:3] == ["water", "standard", "learned"])
    assert learned.split()[3:] == ["12", "+0.120", "(-0.020)", "0.700", "+0.100", "(+0.100)"]
    assert lines[-1].split()[3:] == ["12", "+0.200", "(+0.100)", "0.800"]  # no body figures: blank


def test_rows_are_summarised_in_both_bands():
    rows = [{"clip": f"c{i}", "texture": "water", "method": "tuned", "quality": "standard", "strength": 1.0,
             "advantage": a, "body_advantage": b, "content": 0.9, "timbre_gain": 0.1, "texture_gain": 0.1,
             "own_move": 1.0, "own_chroma": 0.8} for i, (a, b) in enumerate(((0.2, -0.1), (0.1, 0.3)))]
    (s,) = evaluate.summarise(rows)
    assert (s["mean_advantage"], s["min_advantage"], s["worst_clip"]) == (0.15, 0.1, "c1")
    assert (s["body_mean_advantage"], s["body_min_advantage"], s["body_worst_clip"]) == (0.1, -0.1, "c0")
    (s,) = evaluate.summarise([{k: v for k, v in r.items() if k != "body_advantage"} for r in rows])
    assert "body_mean_advantage" not in s


def test_methods_are_chosen_by_name_and_an_engine_models_lacks_stops_the_run(monkeypatch):
    import models

    assert evaluate.parse_methods("morph, tuned") == ("tuned", "morph")  # METHODS' order
    assert evaluate.parse_methods(",".join(evaluate.METHODS)) == evaluate.METHODS
    for bad in ("tuned,musicoder", ""):
        with pytest.raises(ValueError, match="choose from learned, tuned, retuned, morph"):
            evaluate.parse_methods(bad)
    assert models.ENGINES == ("learned", "tuned")
    assert evaluate.engine_keyword("learned") == {"engine": "learned"}
    assert evaluate.engine_keyword("tuned") == {"engine": "tuned"}
    monkeypatch.setattr(models, "ENGINES", ("tuned",))  # an installation without the learned engine
    with pytest.raises(SystemExit, match="the learned engine is not in this version of models.*leave learned out"):
        evaluate.engine_keyword("learned")
    with pytest.raises(SystemExit, match="the learned engine is not"):
        evaluate.method_models(["water"], ("learned", "tuned"))


def test_retuned_settings_are_loaded_from_their_folder_and_a_missing_one_is_a_note(tmp_path, capsys):
    import shutil

    import models

    shutil.copy(models.SETTINGS_DIR / "water.json", tmp_path / "water.json")
    record = json.loads((tmp_path / "water.json").read_text())
    record["settings"]["crossover_hz"] = 500.0
    (tmp_path / "water.json").write_text(json.dumps(record))
    loaded = evaluate.method_models(["water", "laser"], ("tuned", "retuned"), retuned_dir=tmp_path)
    assert sorted(loaded) == [("laser", "tuned"), ("water", "retuned"), ("water", "tuned")]
    assert loaded["water", "retuned"].settings.crossover_hz == 500.0
    assert loaded["water", "tuned"].settings.crossover_hz == models.load("water").settings.crossover_hz != 500.0
    assert "retuned: no laser.json in" in capsys.readouterr().out


def test_the_networks_held_out_training_packages_are_windows_of_train(music_dir):
    from models import data

    write_track(music_dir / "train" / "gamma__y.wav", 25.0)
    clips = evaluate.network_held_out_clips(music_dir, ("gamma",))
    assert [(c.path.name, c.package, c.style, c.start) for c in clips] == [
        ("gamma__x.wav", "gamma", "pop", 30.0), ("gamma__y.wav", "gamma", "pop", pytest.approx(7.5, abs=0.05))]
    for bad in ("alpha", "delta"):  # held out from tuning too; no tracks in train/
        with pytest.raises(SystemExit, match=f"{bad} is not a training package"):
            evaluate.network_held_out_clips(music_dir, ("gamma", bad))
    assert len(data.NETWORK_HELD_OUT) == 2 and not set(data.NETWORK_HELD_OUT) & {"naev-data", "supertux-data"}


def test_the_body_band_objective_is_the_mean_of_both_bands_and_keeps_the_content_rule():
    from models import tune

    scores = [{"advantage": 0.3, "body_advantage": 0.0, "content": 0.9},
              {"advantage": 0.2, "body_advantage": 0.1, "content": 0.8}]
    full = tune.objective([0.3, 0.2], [0.9, 0.8])
    body = tune.objective([0.0, 0.1], [0.9, 0.8])
    assert tune.band_objective(scores) == full
    assert tune.band_objective(scores, body=True) == pytest.approx((full + body) / 2)
    assert tune.band_objective([scores[0], {**scores[1], "content": 0.5}], body=True) == float("-inf")
    # choose ranks by it: the setting better in the body wins though worse in the full band
    per_clip = {"w1": [{"advantage": 0.30, "body_advantage": -0.2, "content": 0.9},
                       {"advantage": 0.25, "body_advantage": 0.1, "content": 0.9}]}
    assert tune.choose(per_clip, tune.GRID[:2])[0]["settings"] == tune.GRID[0]
    best = tune.choose(per_clip, tune.GRID[:2], body=True)[0]
    assert best["settings"] == tune.GRID[1] and best["body_mean_advantage"] == 0.1
    # what --refine --body-band tries: lower crossovers and spread_low, alone and together
    assert len(tune.BODY_REFINE) == 15 and {"crossover_hz": 250.0} in tune.BODY_REFINE
    assert {"spread_low": 0.8} in tune.BODY_REFINE and {"crossover_hz": 500.0, "spread_low": 0.3} in tune.BODY_REFINE


def test_refine_with_the_body_band_writes_to_its_own_folder(tmp_path, monkeypatch):
    """--refine --body-band --out-dir on a faked judge: the settings folder it starts from is
    left alone, the out folder gets each texture's file with the body band's record, and
    scores judged without the body band are judged again."""
    from pathlib import Path

    import models
    from models import tune

    seen, second, kept = [], {}, {"spread_low": 0.3}

    def fake_clips(music_dir, per_package=1):
        return [evaluate.ValClip(Path(f"p{k}__t{j}.ogg"), f"p{k}", "style", 30.0)
                for k in range(4) for j in range(per_package)]

    def fake_judge(sources, clips, settings, jobs, desc, known=None, body=False):
        seen.append(body)
        if desc.endswith("second stage"):
            second.update(settings)

        def score(g, later):  # the body likes a low crossover; on the later windows 250 Hz loses
            # content unless the music's own spreads are kept (a spread_low of kept["spread_low"])
            content = 0.5 if later and g["crossover_hz"] == 250.0 and g.get("spread_low") != kept["spread_low"] \
                else 0.9
            return {"advantage": 0.2, "content": content, "body_advantage": 0.2 - g["crossover_hz"] / 10000}
        return {t: {evaluate.clip_name(c): [score(g, "__t0" not in c.path.name) for g in settings[t]] for c in clips}
                for t in sources}

    monkeypatch.setattr(tune, "tuning_clips", fake_clips)
    monkeypatch.setattr(tune, "judge_all", fake_judge)
    before = {p.name: p.read_text() for p in models.SETTINGS_DIR.glob("*.json")}
    out = tmp_path / "retuned"
    assert tune.main(["--refine", "--body-band", "--shortlist", "3", "--out-dir", str(out)]) == 0
    assert seen == [True, True] and before == {p.name: p.read_text() for p in models.SETTINGS_DIR.glob("*.json")}
    for t in models.TEXTURES:
        stored = models.load(t).meta["settings"]
        assert stored in second[t] and len(second[t]) == 4  # the best 3 and the stored setting, whatever its rank
        record = json.loads((out / f"{t}.json").read_text())
        refined = record["tuning"]["refined"]
        assert record["settings"]["crossover_hz"] == 250.0 and record["settings"]["spread_low"] == 0.3
        assert "validation" not in record
        assert refined["changes"] == tune.BODY_REFINE and refined["shortlist"] == 3 and "--band 250 4000" in refined["judge"]
        assert refined["first_stage"]["from"]["settings"] == stored
        assert refined["first_stage"]["chosen"]["body_mean_advantage"] == pytest.approx(0.175)
        assert models.load(t, out).settings.crossover_hz == 250.0
    # where every shortlisted change loses content on a later window, the stored setting stays
    kept["spread_low"] = None
    assert tune.main(["--refine", "--body-band", "--texture", "water", "--shortlist", "3", "--out-dir", str(out)]) == 0
    assert json.loads((out / "water.json").read_text())["settings"] == models.load("water").meta["settings"]


def test_the_report_prints_both_bands_and_the_learned_bar():
    def row(clip, texture, method, advantage, body):
        return {"clip": clip, "package": "p", "style": "rock", "texture": texture, "method": method,
                "quality": "standard", "strength": 1.0, "advantage": advantage, "timbre_gain": 0.2,
                "texture_gain": 0.1, "content": 0.8, "chroma": 0.8, "onset": 0.8, "mix_move": 0.0,
                "body_advantage": body, "own_move": 2.0, "own_chroma": 0.9, "engine_s": 0.5}

    means = {"learned": (0.20, 0.08), "tuned": (0.15, 0.02), "retuned": (0.16, 0.06), "morph": (-0.1, -0.2)}
    rows = [row(c, t, m, a + d, b + d) for c, d in (("c1", 0.01), ("c2", -0.01))
            for t in ("water", "own:birds") for m, (a, b) in means.items() if (t, m) != ("own:birds", "retuned")]
    summaries = evaluate.summarise(rows)
    text = evaluate.report(rows, summaries, evaluate.by_style(rows),
                           {"clip_count": 2, "packages": {"p": "rock"}, "styles": ["rock"]})
    assert "c1   water          learned   standard  +0.210  +0.200  +0.100   0.800   0.800   0.800  +0.090 " in text
    assert "water standard learned 2 +0.200 (+0.190) 0.800 +0.080 (+0.070)" in [" ".join(ln.split()) for ln in
                                                                                 text.splitlines()]
    assert ("  water          standard PASS: mean +0.200 vs tuned +0.150 ok, worst +0.190 ok, min content 0.800 ok; "
            "body mean +0.080 ok, worst +0.070 ok; vs retuned +0.160 ok, body +0.060 ok") in text
    assert "  own:birds              standard learned +0.200 ok (worst +0.190 ok, body +0.080 ok); tuned +0.150" in text
    assert "  mean of means          standard PASS: learned +0.200 vs tuned +0.150 ok; every recording ok" in text
    for method in ("learned", "tuned", "retuned"):  # the quality bar for every engine
        assert f"  water          {method:9s} standard PASS" in text
