"""Drive the real GUI through the whole flow, as a user would, and screenshot each step.

    python tests/gui_flow.py URL SONG SAVE_PATH SCREENSHOT_DIR EXEMPLAR WHOLE_SAVE_PATH

Run by tests/test_gui.py under Xvfb against a real server. Each step calls the same App
method its button calls, then renders frames until the model shows the step's outcome.
After the built-in texture's flow, the same song is converted with "Your own…": the
EXEMPLAR file opened, tried (played) and used. Then the whole track is converted ("Whole
track"), saved (WHOLE_SAVE_PATH, stereo), converted again by letting go of the strength
slider, and A/B switches its playback to the input from the same position.
Prints one JSON line: what was saved and which screenshots were written.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dearpygui.dearpygui as dpg  # noqa: E402

from gui.app import HEIGHT, WIDTH, App  # noqa: E402
from gui.bridge import Bridge  # noqa: E402


def main(url: str, song: str, save_path: str, shots: str, exemplar: str, whole_path: str) -> int:
    bridge = Bridge(url)
    dpg.create_context()
    app = App(dpg, bridge)
    dpg.create_viewport(title="MusiCoder", width=WIDTH, height=HEIGHT)
    dpg.setup_dearpygui()
    dpg.show_viewport()
    bridge.start()
    md = app.model
    written = []

    def frames(n: int = 3) -> None:
        for _ in range(n):
            app.frame()
            dpg.render_dearpygui_frame()

    def until(what: str, condition, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit(f"gui_flow: timed out waiting for {what}; status: {md.status!r}, error: {md.error!r}")
            frames(1)
            time.sleep(0.01)
        frames(3)

    def shot(name: str) -> None:
        path = os.path.join(shots, f"{len(written) + 1:02d}_{name}.png")
        dpg.output_frame_buffer(file=path)
        frames(3)
        written.append(path)

    try:
        until("the connection", lambda: md.connected)
        shot("connected")
        app.open_file(song)
        until("the upload", lambda: md.track is not None)
        shot("loaded")
        app.set_window(5.0, 10.0)
        app.confirm_window()
        until("the window", lambda: md.window_confirmed and abs(md.window_start - 5.0) < 1e-6)
        shot("window")
        app.pick_texture("water")
        app.confirm_texture()
        until("the texture", lambda: md.texture_confirmed)
        shot("texture")
        app.pick_quality("hifi")
        app.convert()
        until("progress", lambda: md.job is not None and md.job.fraction > 0.2 or md.result is not None)
        shot("converting")
        until("the result", lambda: md.result is not None)
        shot("result")
        app.save(save_path)
        until("the saved file", lambda: os.path.exists(save_path))
        app.play_button("output")  # through ALSA: the test's asoundrc records it to a file
        until("playback to start", lambda: app.players.output.playing or md.error is not None, 10)
        played = md.error is None or "audio device" not in md.error
        until("playback to end", lambda: not app.players.output.playing, 60)
        frames(5)
        recording = os.path.expanduser("~/played.raw")  # where test_gui's asoundrc sends the sound
        if os.path.exists(recording):  # kept apart: Try on the exemplar below plays into it again
            shutil.copyfile(recording, recording + ".result")
        first = {"texture": md.result.texture, "quality": md.result.quality, "format": md.result.format,
                 "duration": md.result.duration}
        # "Your own…": open an exemplar, try it, convert with it
        app.pick_texture("exemplar")
        app.open_exemplar(exemplar)
        until("the exemplar", lambda: md.exemplar is not None)
        app.try_texture()
        until("the exemplar to play", lambda: app.players.output.playing or md.error is not None, 10)
        tried = app.players.output.duration
        app.players.output.stop()
        shot("own_exemplar")
        app.confirm_texture()
        app.pick_quality("lofi")
        app.convert()
        until("the result with the exemplar", lambda: md.result is not None and md.result.texture == "exemplar")
        shot("own_result")
        own = {"texture": md.result.texture, "quality": md.result.quality, "duration": md.result.duration,
               "exemplar": md.exemplar.name}
        # the whole track, in stereo, then again at another strength
        app.pick_texture("water")
        app.confirm_texture()
        app.set_whole(True)
        frames()
        app.convert()
        until("the whole track's result", lambda: md.result is not None and md.result.start == 0.0
              and md.result.duration > 20, 180)
        whole = {"duration": md.result.duration, "channels": md.result.channels, "strength": md.result.strength,
                 "whole_box": dpg.get_value("whole")}
        full_strength = md.result.audio
        shot("whole_track")
        app.save(whole_path)
        until("the saved whole track", lambda: os.path.exists(whole_path))
        dpg.set_value("strength", 0.3)  # the slider moved, then let go: what its handler calls
        app.release_strength(float(dpg.get_value("strength")))
        until("the result at the new strength", lambda: md.result is not None and md.result.strength == 0.3, 180)
        shot("strength")
        changed = md.result.audio != full_strength
        # A/B: the result's playhead at 12 s, switched to the input, which plays from there
        app.play_button("output")
        app.players.output.pause()
        app.players.output.seek(12.0)  # what dragging its playhead does
        before = app.players.output.position
        app.switch_ab()
        frames()
        ab = {"listening": md.listening, "before": before, "after": app.players.output.position,
              "label": dpg.get_item_label("ab"), "input_seconds": app.players.output.duration}
        shot("ab")
        app.play_button("output")
        until("the input to play", lambda: app.players.output.playing or md.error is not None, 10)
        until("the input to end", lambda: not app.players.output.playing, 60)
        frames(5)
        if os.path.exists(recording):
            shutil.copyfile(recording, recording + ".ab")
        print(json.dumps({"saved": save_path, "screenshots": written, "status": md.status, "played": played,
                          "error": md.error, "result": first, "tried_seconds": tried, "own": own, "whole": whole,
                          "strength": md.result.strength, "strength_changed_audio": changed, "ab": ab}))
    finally:
        bridge.stop()
        dpg.destroy_context()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:7]))
