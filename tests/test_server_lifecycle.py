"""The server's life: kill -9 then a restart whose sweeper removes the leftovers, the
periodic sweeper, and a graceful stop on SIGTERM."""
from __future__ import annotations

import asyncio
import os
import time

import pytest
from websockets.exceptions import ConnectionClosed

from server.testing import ServerProcess

PLUMBING = "tests.passthrough_models"  # identity textures: these tests are about the server, not the textures

from .test_server import Raw, run, session_dirs, wav_bytes


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" in f.read()
    except FileNotFoundError:
        return True


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_kill9_then_restart_sweeps_leftovers_and_the_sweeper_runs(tmp_path):
    data = tmp_path / "data"
    first = ServerProcess(data, workers=1, models=PLUMBING)
    try:
        first.start()

        async def upload_then_die():
            async with Raw(first.url) as r:
                await r.hello()
                await r.upload(wav_bytes(2.0))
                await r.expect("track")
                uid = r.id()  # and a partial upload in temp/
                await r.send({"type": "upload", "id": uid, "name": "b.wav", "size": 10**6})
                await r.expect("upload_progress")
                assert len(session_dirs(first)) == 2
                first.kill9()
                with pytest.raises(ConnectionClosed):
                    await r.recv(timeout=10)

        run(upload_then_die())
        assert len(session_dirs(first)) == 2, "kill -9 leaves the files behind"
        assert _wait(lambda: all(_gone(p) for p in first.worker_pids), 15), "workers outlive a killed server"
    finally:
        first.stop()

    second = ServerProcess(data, "--sweep-interval", "0.3", "--sweep-age", "1", workers=1, models=PLUMBING)
    try:
        second.start()
        assert not session_dirs(second)
        assert "startup sweep removed 2 leftover" in second.log()

        async def live_session_survives_the_sweeper():
            stale = data / "temp" / "0123456789abcdef0123456789abcdef"
            stale.mkdir()
            old = time.time() - 3600
            os.utime(stale, (old, old))
            async with Raw(second.url) as r:
                await r.hello()
                await r.upload(wav_bytes(2.0))
                await r.expect("track")
                await asyncio.sleep(1.5)  # past the sweep age: a live session's files stay
                assert not stale.exists()
                assert [f for f in session_dirs(second) if f.startswith("receive/")]

        run(live_session_survives_the_sweeper())
        assert "sweeper removed 1 leftover" in second.log()
        intruder = ServerProcess(data, workers=1, models=PLUMBING, log_path=str(tmp_path / "intruder.log"))
        with pytest.raises(RuntimeError, match="another server uses the data dir"):
            intruder.start()  # one server per data dir: its startup sweep must not hit live sessions
        intruder.stop()
    finally:
        second.stop()


def test_sigterm_tells_clients_cancels_cleans_and_exits_0(tmp_path):
    server = ServerProcess(tmp_path / "data", "--shutdown-grace", "1", workers=1, models=PLUMBING)
    try:
        server.start()
        pids = list(server.worker_pids)

        async def main():
            async with Raw(server.url) as r:
                await r.hello()
                await r.upload(wav_bytes(60.0))
                await r.expect("track")
                await r.send({"type": "clip", "id": r.id(), "start": 0, "duration": 60})
                await r.expect("window")
                await r.send({"type": "convert", "id": r.id(), "texture": "laser", "quality": "hifi"})
                acc = await r.expect("accepted")
                server.proc.send_signal(15)
                shutdown = await r.expect("shutdown", timeout=10)
                assert shutdown.grace == 1.0
                await r.error({"type": "convert", "id": r.id(), "texture": "water"}, "shutting_down")
                end = await r.expect("cancelled", "result", timeout=30)
                assert end.job == acc.job
                with pytest.raises(ConnectionClosed):
                    await r.recv(timeout=20)
                assert r.ws.close_code == 1001

        run(main())
        assert server.proc.wait(timeout=30) == 0
        assert not session_dirs(server)
        assert _wait(lambda: all(_gone(p) for p in pids), 10)
        assert "stopped" in server.log()
    finally:
        server.stop()
