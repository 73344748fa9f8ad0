"""Server settings: flags over MUSICODER_* environment variables over defaults."""
from __future__ import annotations

import pytest

from server import config


def test_defaults():
    s = config.load([], environ={})
    cores = config.usable_cores()
    assert (s.host, s.port, s.workers, s.processes, s.max_clients, s.max_upload_bytes) == \
        ("127.0.0.1", 8765, cores, cores, 64, 200 * 2**20)  # one single-slot worker process per core
    assert s.receive_dir.endswith("receive") and s.temp_dir.endswith("temp")
    assert config.Settings().workers == cores  # resolved however Settings is made


@pytest.mark.parametrize("workers, processes, cores, shape", [
    (0, 0, 4, (4, 4)),  # the default: one conversion per core, each in its own process
    (2, 0, 4, (2, 2)),  # --workers 2: two single-slot processes
    (2, 1, 4, (2, 1)),  # --processes 1: one process, two job threads
    (3, 5, 1, (3, 3)),  # never more processes than conversions
    (0, 1, 2, (2, 1)),
])
def test_pool_shape(workers, processes, cores, shape):
    assert config.pool_shape(workers, processes, cores) == shape


@pytest.mark.parametrize("cpu_max, cores", [
    ("max 100000\n", None),  # no quota
    ("200000 100000\n", 2),  # docker --cpus 2
    ("150000 100000", 2),  # 1.5 CPUs: rounded up
    ("50000 100000", 1),
    ("garbage", None),
])
def test_a_cgroup_quota_in_whole_cores(cpu_max, cores):
    assert config.quota_cores(cpu_max) == cores


def test_usable_cores_never_exceeds_the_cgroup_quota(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")
    assert config.usable_cores(str(cpu_max)) == 1
    cpu_max.write_text("max 100000\n")
    assert config.usable_cores(str(cpu_max)) == config.usable_cores(str(tmp_path / "absent"))


def test_environment_then_flags_then_positional_port():
    env = {"MUSICODER_PORT": "9000", "MUSICODER_MAX_UPLOAD_MB": "50", "MUSICODER_WORKERS": "3",
           "MUSICODER_DATA_DIR": "/srv/mc"}
    s = config.load([], environ=env)
    assert (s.port, s.max_upload_mb, s.workers, s.data_dir) == (9000, 50.0, 3, "/srv/mc")
    s = config.load(["--port", "9100", "--workers", "1"], environ=env)
    assert (s.port, s.workers, s.max_upload_mb) == (9100, 1, 50.0)
    assert config.load(["9200"], environ={}).port == 9200  # python -m server 9200


@pytest.mark.parametrize("argv, env", [(["--workers", "-1"], {}), (["--processes", "-2"], {}),
                                       (["--queue", "0"], {}), ([], {"MUSICODER_PORT": "eighty"}),
                                       (["--port", "70000"], {})])
def test_bad_settings_exit_with_a_message(argv, env):
    with pytest.raises(SystemExit):
        config.load(argv, environ=env)


def test_ray_address_from_the_flag_or_the_environment():
    assert config.load([], environ={}).ray == ""  # the default: local worker processes
    assert config.load(["--ray", "10.0.0.5:6379"], environ={}).ray == "10.0.0.5:6379"
    s = config.load([], environ={"MUSICODER_RAY": "auto", "MUSICODER_RAY_ACTOR_CPUS": "2"})
    assert (s.ray, s.ray_actor_cpus) == ("auto", 2.0)


def test_without_a_cluster_nothing_of_ray_is_imported(tmp_path):
    import subprocess
    import sys

    from server.testing import REPO

    code = ("import sys, server.app, server.config; "
            f"app = server.app.App(server.config.Settings(data_dir={str(tmp_path)!r})); "
            "print(type(app.pool).__name__, 'ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["ProcessPool", "False"], r.stderr


def test_the_window_limit_is_ten_minutes_configurable_up_to_the_track_limit():
    assert config.load([], environ={}).max_window == 600.0  # a whole 10-minute song
    assert config.load([], environ={"MUSICODER_MAX_WINDOW": "120"}).max_window == 120.0
    assert config.load(["--max-window", "90"], environ={}).max_window == 90.0
    assert config.load(["--max-window-seconds", "30"], environ={}).max_window == 30.0  # its former name
    assert config.load([], environ={"MUSICODER_MAX_WINDOW_SECONDS": "45"}).max_window == 45.0
    with pytest.raises(SystemExit, match="max_window"):
        config.load(["--max-window", "1900"], environ={})  # past the 1800 s track limit
    assert config.load(["--max-track-seconds", "20"], environ={}).max_window == 20.0  # the default follows it
    assert config.load(["--max-window", "1900", "--max-track-seconds", "3600"], environ={}).max_window == 1900.0
