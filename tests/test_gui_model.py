"""The desktop client's state machine and players, without a display."""
from __future__ import annotations

import dataclasses
import socket
import time

import numpy as np
import pytest

import client
import protocol
from gui import model as m
from gui.player import PlaybackUnavailable, Player, PlayerPair


def welcome() -> protocol.Welcome:
    return protocol.Welcome(
        re=1, version=protocol.PROTOCOL_VERSION, server="musicoder 0.1.0", session="s1",
        limits={"upload_bytes": 1000, "track_seconds": 1800.0, "window_seconds": 60.0, "message_bytes": 65536,
                "chunk_bytes": 262144, "idle_seconds": 300.0, "jobs_per_session": 2, "queue": 32},
        textures=[{"name": "laser", "label": "Laser", "description": "zaps"},
                  {"name": "water", "label": "Water", "description": "a brook"}],
        qualities=[{"name": "lofi", "label": "LOFI", "expected_seconds": 0.5},
                   {"name": "hifi", "label": "HIFI", "expected_seconds": 1.5}],
        formats=["wav", "flac", "mp3", "ogg"], default_window=10.0)


def window(start=0.0, duration=10.0, warnings=()) -> client.Window:
    return client.Window(start, duration, [-0.5] * 4, [0.5] * 4, list(warnings))


def track() -> client.Track:
    return client.Track("song.mp3", 30.0, 48000, 2, "mp3", window())


def result(strength: float = 1.0, start: float = 0.0) -> client.Result:
    return client.Result(7, "water", "hifi", "wav", 10.0, b"RIFF", b"\x89PNG", [-0.1], [0.1],
                         {"queued": 0.0, "reconstructing": 1.0}, channels=2, strength=strength, start=start)


def ready_model() -> m.Model:
    md = m.Model(url="ws://x")
    md.apply(m.Connecting("ws://x"))
    md.apply(m.Connected(welcome()))
    md.apply(m.FileLoaded("/music/song.mp3", "song.mp3", np.zeros(100, np.float32), 44100))
    md.apply(m.TrackReady(track()))
    return md


def test_buttons_light_up_step_by_step():
    md = m.Model(url="ws://x")
    assert [k for k, v in md.enabled().items() if v] == ["retry"]
    md.apply(m.Connecting("ws://x"))
    assert md.connection is m.Connection.CONNECTING and not md.enabled()["retry"]
    md.apply(m.Connected(welcome()))
    on = md.enabled()
    assert on["open"] and on["try"] and not on["clip_ok"] and not on["convert"]
    md.apply(m.FileLoaded("/music/song.mp3", "song.mp3", np.zeros(100, np.float32), 44100))
    assert md.enabled()["play_input"] and md.enabled()["delete"] and not md.enabled()["clip_ok"]
    md.apply(m.UploadProgressed(500, 1000))
    assert md.upload_fraction == 0.5
    md.apply(m.TrackReady(track()))
    assert md.enabled()["clip_ok"] and md.window_confirmed and md.window_peaks.shape == (2, 4)
    assert md.texture == "laser" and not md.enabled()["convert"]  # the first is shown chosen, not confirmed
    md.apply(m.TexturePicked("water"))
    assert md.enabled()["texture_ok"] and not md.enabled()["convert"]
    md.confirm_texture()
    assert md.enabled()["convert"] and not md.enabled()["cancel"]
    md.start_job()
    assert not md.enabled()["convert"] and not md.enabled()["open"] and not md.enabled()["cancel"]
    md.apply(m.JobAccepted(7, 2))
    assert md.enabled()["cancel"] and "2 ahead" in md.status
    md.apply(m.JobProgress("reconstructing", 0.5, 1.2, 0))
    assert md.job.fraction == 0.5 and "Reconstructing 50%" in md.status
    md.apply(m.ResultReady(result()))
    on = md.enabled()
    assert on["save"] and on["play_output"] and on["convert"] and md.job is None


def test_moving_the_window_needs_ok_again():
    md = ready_model()
    md.apply(m.TexturePicked("water"))
    md.confirm_texture()
    md.apply(m.WindowPicked(12.5, 8.0))
    assert not md.window_confirmed and not md.enabled()["convert"]
    md.apply(m.WindowReady(window(12.5, 8.0, ["The selected audio is silent; the result will be silent too."])))
    assert md.window_confirmed and md.enabled()["convert"] and "silent" in md.error


def test_cancel_and_errors_end_the_job():
    md = ready_model()
    md.start_job()
    md.apply(m.JobAccepted(3, 0))
    md.apply(m.JobCancelled(3))
    assert md.job is None and md.status == "Cancelled."
    md.start_job()
    md.apply(m.RequestFailed("convert", "busy", "The server is busy: 32 conversions are waiting."))
    assert md.job is None and "busy" in md.status and "32" in md.error


def test_a_failed_upload_forgets_the_track_and_a_bad_file_says_so():
    md = ready_model()
    md.apply(m.RequestFailed("upload", "not_audio", "This file is not audio that can be read."))
    assert md.track is None and not md.enabled()["clip_ok"] and "not audio" in md.error
    md.apply(m.RequestFailed("open", "empty", "The file is empty (0 bytes)."))
    assert md.status == "Could not open the file."


def test_losing_the_connection_stops_the_job_and_offers_retry():
    md = ready_model()
    md.start_job()
    md.apply(m.Disconnected("connection refused", 4.0))
    assert md.job is None and md.enabled()["retry"] and "retrying in 4 s" in md.status
    assert not md.enabled()["convert"] and md.enabled()["play_input"]  # local audio still plays
    md.apply(m.ServerShutdown("restart"))
    assert "shutting down" in md.status


def test_several_addresses_show_which_is_tried_and_where_the_retry_goes():
    a, b = "ws://a:8765", "ws://b:8765"
    md = m.Model(url=f"{a},{b}")
    md.apply(m.Connecting(b, (a, b)))
    assert md.server == b and md.url == f"{a}, {b}" and md.status == f"Connecting to {b} (2 of 2)…"
    md.apply(m.Disconnected(f"cannot connect to any of 2 servers ({a}: refused; {b}: refused)", 2.0, a))
    assert md.enabled()["retry"] and md.status == f"Not connected: retrying in 2 s, with {a}." and b in md.error
    md.apply(m.Connecting("ws://x"))  # one address: as before
    assert md.url == md.server == "ws://x" and md.status == "Connecting to ws://x…"


def _closed_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{s.getsockname()[1]}"


def _events(bridge, until, timeout=20.0) -> list:
    events, deadline = [], time.monotonic() + timeout
    while not until(events) and time.monotonic() < deadline:
        time.sleep(0.02)
        for e in bridge.drain():
            bridge.model.apply(e)
            events.append(e)
    return events


def test_the_bridge_retry_moves_on_to_the_next_address():
    from gui.bridge import Bridge

    a, b = _closed_url(), _closed_url()
    bridge = Bridge(f"{a}, {b}", retry_delays=(0.05,))
    try:
        bridge.start()
        events = _events(bridge, lambda ev: sum(isinstance(e, m.Disconnected) for e in ev) >= 3)
    finally:
        bridge.stop()
    tried = [e.url for e in events if isinstance(e, m.Connecting)]
    retries = [e for e in events if isinstance(e, m.Disconnected)]
    assert len(retries) >= 3, events
    # each round tries every address once, and each retry starts with the next one
    assert tried[:6] == [a, b, b, a, a, b]
    assert [e.next_url for e in retries[:3]] == [b, a, b] and all(e.retry_in == 0.05 for e in retries)
    assert a in retries[0].reason and b in retries[0].reason and "any of 2 servers" in retries[0].reason
    assert bridge.model.url == f"{a}, {b}"


def test_the_bridge_says_an_address_is_bad_and_tries_nothing():
    from gui.bridge import Bridge

    bridge = Bridge("ws://127.0.0.1:1,http://127.0.0.1:2", retry_delays=(0.05,))
    try:
        bridge.start()
        events = _events(bridge, lambda ev: any(isinstance(e, m.Disconnected) for e in ev))
        time.sleep(0.3)  # several retry delays: no try may come
        events += bridge.drain()
    finally:
        bridge.stop()
    assert [type(e) for e in events] == [m.Disconnected] and events[0].retry_in is None
    assert "Bad server address 'http://127.0.0.1:2'" in events[0].reason


def test_the_gui_command_refuses_a_bad_server_address(capsys):
    from gui.__main__ import main

    assert main(["--server", "ws://127.0.0.1:8765", "--server", "ws://127.0.0.1:99999"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Bad server address 'ws://127.0.0.1:99999'" in err


def test_delete_clears_the_song():
    md = ready_model()
    md.apply(m.TrackCleared())
    assert md.track is None and md.track_samples is None and not md.enabled()["delete"]


def test_preview_and_quality_choices():
    md = ready_model()
    md.apply(m.QualityPicked("hifi"))
    md.apply(m.PreviewReady("laser", "flac", b"fLaC"))
    assert md.quality == "hifi" and md.preview.texture == "laser" and "laser" in md.status
    assert [t["name"] for t in md.textures()] == ["laser", "water", "exemplar"]  # "Your own…" last


def test_your_own_exemplar_lights_up_open_then_try_then_ok():
    md = ready_model()
    md.apply(m.TexturePicked("exemplar"))
    on = md.enabled()
    assert md.own_texture and on["open_exemplar"] and not on["try"] and not on["texture_ok"]
    md.apply(m.ExemplarLoaded("/x/brook.wav", "brook.wav", np.zeros(44100 * 3, np.float32), 44100))
    assert md.enabled()["try"] and not md.enabled()["texture_ok"]  # Try plays it here; the server has it not yet
    md.apply(m.ExemplarReady(client.Exemplar("brook.wav", 45.0, 30.0, [0.0], [0.0], ["cut to 30 s"])))
    assert md.enabled()["texture_ok"] and "cut to 30 s" in md.status
    assert "brook.wav" in next(t["description"] for t in md.textures() if t["name"] == "exemplar")
    md.confirm_texture()
    assert md.texture_confirmed and md.enabled()["convert"]
    md.apply(m.Connected(welcome()))  # a reconnect keeps the choice
    assert md.texture == "exemplar"
    md.apply(m.RequestFailed("exemplar", "silent", "The exemplar is silent."))
    assert md.exemplar is None and not md.enabled()["texture_ok"] and "silent" in md.error


def test_a_version_1_server_offers_no_exemplar():
    md = ready_model()
    md.apply(m.Connected(dataclasses.replace(welcome(), version=1)))
    assert "exemplar" not in [t["name"] for t in md.textures()]


def test_a_texture_the_new_server_lacks_falls_back_to_its_first():
    md = ready_model()
    md.apply(m.TexturePicked("velvet"))
    md.apply(m.Connected(welcome()))
    assert md.texture == "laser" and not md.texture_confirmed


def test_unknown_events_are_a_programming_error():
    with pytest.raises(TypeError):
        m.Model(url="ws://x").apply(object())


class FakeOutput:
    def __init__(self, pcm, rate, channels=1):
        self.pcm, self.rate, self.channels, self.stopped = pcm, rate, channels, False

    def stop(self):
        self.stopped = True

    def is_playing(self):
        return not self.stopped


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_player_plays_pauses_seeks_and_stops():
    started, clock = [], FakeClock()

    def play(pcm, rate, channels):
        started.append(FakeOutput(pcm, rate, channels))
        return started[-1]

    p = Player(play_fn=play, clock=clock)
    p.load(np.linspace(-1, 1, 44100 * 4, dtype=np.float32), 44100)
    assert p.duration == 4.0 and not p.playing
    p.play()
    clock.now += 1.5
    assert p.playing and abs(p.position - 1.5) < 1e-9
    p.pause()
    assert not p.playing and started[0].stopped and abs(p.position - 1.5) < 1e-9
    p.seek(3.0)
    p.play()
    assert len(started[1].pcm) == 44100 * 1 * 2  # 1 s of 16-bit samples left after 3 s
    clock.now += 2.0  # past the end
    assert not p.playing and p.position == 0.0
    p.play()
    p.stop()
    assert p.position == 0.0 and started[-1].stopped


def test_a_stereo_clip_plays_both_channels_interleaved_from_the_position():
    started, clock = [], FakeClock()
    p = Player(play_fn=lambda pcm, rate, channels: started.append(FakeOutput(pcm, rate, channels)) or started[-1],
               clock=clock)
    left, right = np.full(44100 * 2, 0.25, np.float32), np.full(44100 * 2, -0.5, np.float32)
    p.load(np.stack([left, right]), 44100)
    assert p.duration == 2.0
    p.seek(1.5)
    p.play()
    out = started[0]
    frames = np.frombuffer(out.pcm, "<i2").reshape(-1, 2)
    assert out.channels == 2 and len(frames) == 22050  # 0.5 s left, two samples a frame
    assert (frames[:, 0] == int(0.25 * 32767)).all() and (frames[:, 1] == int(-0.5 * 32767)).all()


def test_playing_one_player_pauses_the_other():
    pair = PlayerPair(lambda: Player(play_fn=lambda pcm, rate, channels: FakeOutput(pcm, rate), clock=FakeClock()))
    pair.input.load(np.zeros(44100, np.float32), 44100)
    pair.output.load(np.zeros(44100, np.float32), 44100)
    pair.play("input")
    pair.play("output")
    assert pair.output.playing and not pair.input.playing


def test_no_audio_device_is_a_message_not_a_crash():
    def no_device(pcm, rate, channels):
        raise PlaybackUnavailable("No audio device to play on.")

    p = Player(play_fn=no_device)
    p.load(np.zeros(100, np.float32), 44100)
    with pytest.raises(PlaybackUnavailable, match="No audio device"):
        p.play()
    assert not p.playing


def test_whole_track_needs_no_window_and_only_fits_the_server_limit():
    md = ready_model()
    assert not md.enabled()["convert"] and md.enabled()["whole"]
    md.apply(m.WholePicked(True))
    assert md.whole and not md.enabled()["clip_ok"] and md.enabled()["texture_ok"]
    md.confirm_texture()
    assert md.enabled()["convert"]
    long = m.Model(url="ws://x")
    long.apply(m.Connected(welcome()))
    long.apply(m.TrackReady(dataclasses.replace(track(), duration=61.0)))  # over window_seconds (60)
    long.apply(m.WholePicked(True))
    assert not long.whole and not long.enabled()["whole"]
    old = m.Model(url="ws://x")  # a version 2 server converts windows only
    old.apply(m.Connected(dataclasses.replace(welcome(), version=2)))
    old.apply(m.TrackReady(track()))
    assert not old.enabled()["whole"] and not old.enabled()["strength"]


def test_releasing_the_strength_converts_again_only_when_a_result_of_another_strength_shows():
    md = ready_model()
    assert not md.strength_released(0.4) and md.strength == 0.4  # no result yet: nothing to redo
    md.apply(m.WindowReady(window()))
    md.apply(m.TexturePicked("water"))
    md.confirm_texture()
    md.apply(m.ResultReady(result(strength=0.4)))
    assert not md.strength_released(0.4)  # the same strength: nothing to redo
    assert md.strength_released(0.7) and md.strength == 0.7
    md.start_job()
    assert not md.strength_released(0.2)  # busy: the next release redoes it
    assert md.strength_released(7.0) is False and md.strength == 1.0  # clamped to 0..1
    md.apply(m.StrengthPicked(float(np.float32(0.3))))
    assert md.strength == 0.3  # the slider's float32 read as the hundredths it shows


def test_a_b_plays_the_input_the_result_was_made_of_from_the_same_place():
    md = ready_model()
    assert not md.enabled()["ab"] and md.result_span() is None
    md.apply(m.ResultReady(result(start=12.5)))
    assert md.enabled()["ab"] and md.listening == "result" and md.result_span() == (12.5, 10.0)
    assert md.toggle_listening() == "input" and md.toggle_listening() == "result"
    md.toggle_listening()
    md.apply(m.ResultReady(result()))
    assert md.listening == "result"  # a new result is heard first
