"""The pool's queue without worker processes: whole songs never hold every worker, a
short job passes the songs waiting (never another short job), long jobs get time limits
and ETAs for their length."""
from __future__ import annotations

import asyncio
import time

import pytest

from server import pool as pool_mod
from server.worker import JobSpec


class SlotsPool(pool_mod.QueueingPool):
    """The shared queue over ``size`` bare slots: a started job stays until finish()."""

    def __init__(self, size: int, max_running_seconds: float = 600.0):
        super().__init__(queue=32, expected=None, max_running_seconds=max_running_seconds)
        self.size = size
        self.running: list[pool_mod.JobHandle] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def stats(self) -> dict:
        return self.queue_stats()

    def _cancel(self, handle) -> None:
        self._cancel_pending(handle)

    def _running(self):
        return list(self.running)

    def _has_free(self) -> bool:
        return len(self.running) < self.size

    def _dispatch(self) -> None:
        while self._has_free():
            job = self._take_next()
            if job is None:
                return
            job.started = 1.0
            self.running.append(job)

    def finish(self, job) -> None:
        self.running.remove(job)
        self._dispatch()


def submit(pool: SlotsPool, seconds: float, quality: str = "standard") -> pool_mod.JobHandle:
    return pool.submit(JobSpec(window_path="-", seconds=seconds, texture="laser", quality=quality, format="wav",
                               normalize=True))


def test_two_songs_on_two_workers_leave_one_to_a_short_job_that_passes_the_waiting_song():
    async def main():
        p = SlotsPool(2)
        song_a, song_b, short = submit(p, 600), submit(p, 600), submit(p, 10)
        assert p.running == [song_a, short] and list(p._pending) == [song_b]
        p.finish(short)
        assert p.running == [song_a]  # the second song still waits: one worker stays for short jobs
        p.finish(song_a)
        assert p.running == [song_b]

    asyncio.run(main())


def test_short_jobs_keep_their_order_and_a_single_worker_still_lets_them_pass_waiting_songs():
    async def main():
        p = SlotsPool(1)
        song_a, song_b, first, second = submit(p, 300), submit(p, 300), submit(p, 10), submit(p, 5)
        assert p.running == [song_a]
        p.finish(song_a)
        assert p.running == [first]  # past the waiting song, in the short jobs' order
        p.finish(first)
        assert p.running == [second]
        p.finish(second)
        assert p.running == [song_b]

    asyncio.run(main())


def test_memory_budgets_are_kept_apart_for_songs_and_short_jobs():
    async def main():
        p = SlotsPool(8, max_running_seconds=100)
        songs = [submit(p, 90) for _ in range(2)]  # 180 s of songs > 100: one at a time
        shorts = [submit(p, 40) for _ in range(3)]  # 120 s of short jobs > 100: two at once
        assert p.running == [songs[0], shorts[0], shorts[1]]
        assert list(p._pending) == [songs[1], shorts[2]]

    asyncio.run(main())


def test_a_songs_time_limit_and_eta_grow_with_its_length():
    async def main():
        p = SlotsPool(1)
        p.job_timeout = 300.0
        song, short = submit(p, 600, "lofi"), submit(p, 10, "lofi")
        assert p.time_limit(short) == 300.0 and p.time_limit(song) == 3000.0
        assert p.job_seconds(song) == pytest.approx(60 * p.job_seconds(short))
        before = p.expected_seconds("lofi")
        song.started = time.monotonic() - 120.0  # the song took 120 s: 2 s per 10 s of its audio
        p._succeeded(song, pool_mod.JobOutput(b"", b"", b"", 600.0, {}))  # learnt per 10 s of audio
        assert p.expected_seconds("lofi") == pytest.approx(0.7 * before + 0.3 * 2.0, abs=0.05)

    asyncio.run(main())
