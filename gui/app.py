"""The Dear PyGui window: draws a :class:`gui.model.Model` and turns clicks into calls
on the :class:`gui.bridge.Bridge` (the network, in its own thread).

The render loop never waits on the network: each frame it drains the bridge's events
into the model, then refreshes the widgets whose data changed.
"""
from __future__ import annotations

import io
import os

import numpy as np

from musicoder import audio, render

from . import model as m
from .bridge import Bridge
from .player import PlaybackUnavailable, PlayerPair

PROJECT_HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELP_TEXT = f"""MusiCoder gives a piece of music a new texture.

1. Open a song (wav, mp3, mp4/m4a, flac, ogg, opus), or pass it on the command line.
   Drag and drop from the file manager is not available on Linux (Dear PyGui has no
   OS drag-and-drop there): use Open.
2. Drag the start of the window over the whole track, set its length (10 s by default),
   press OK. Play auditions the window. Or tick "Whole track": the whole song is
   converted (up to the server's limit, 10 minutes by default).
3. Choose a texture; Try plays a sample of it. Press OK. "Your own…" takes any
   recording of a texture you like (2 to 30 s): Open exemplar…, Try plays it, OK.
   Strength: from 0 (the music unchanged) to 1 (the texture as tuned); letting go of
   the slider converts the result again at the new strength.
4. Choose a quality (the server's expected time is shown) and press Convert.
5. Play the result (a stereo song gives a stereo result); A/B switches between the
   result and the input it was made of, from the same place. Save as wav, flac, mp3 or
   ogg, or convert again with another texture or quality: the song is not uploaded again.

Volume balance on plays loudness-normalised audio; off plays the raw level.
The connection state is at the top; Retry reconnects at once, and the client also
retries by itself. The server field takes several addresses, comma-separated (front
ends of one service): when one is gone the client moves on to the next, and sends the
song, the window and your exemplar again.

MusiCoder is free software (AGPL-3.0-or-later). Its source, README and NOTICE are at
{PROJECT_HOME}"""

WIDTH, HEIGHT = 1100, 1024
SPECTROGRAM_WIDTH = 700
PLOT_COLUMNS = 800


class App:
    """One window. ``dpg`` is the dearpygui.dearpygui module (imported by the caller,
    after the display check)."""

    def __init__(self, dpg, bridge: Bridge, players: PlayerPair | None = None):
        self.dpg = dpg
        self.bridge = bridge
        self.players = players or PlayerPair()
        self.model = bridge.model
        self._drawn_result = None
        self._drawn_track = None
        self._textures_drawn: tuple = ()
        self._window_key: tuple | None = None
        self._window_drawn: tuple[float, float] | None = None
        self._window_peaks_drawn = None
        self._drawn_exemplar = None
        self._result_samples = None  # the drawn result, decoded
        self._output_holds = None  # what the output player has loaded: (result, "result" or "input"); None: a preview
        self._build()

    # ---- layout --------------------------------------------------------------------------

    def _build(self) -> None:
        dpg = self.dpg
        with dpg.font_registry():
            # matplotlib ships DejaVu Sans: it has the glyphs the default font lacks (● ✓ … ·)
            import matplotlib

            ttf = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
            dpg.bind_font(dpg.add_font(ttf, 15))
        with dpg.theme() as theme:  # a control whose step is not possible yet looks unlit
            for kind in (dpg.mvButton, dpg.mvRadioButton, dpg.mvCheckbox):
                with dpg.theme_component(kind, enabled_state=False):
                    dpg.add_theme_color(dpg.mvThemeCol_Text, (105, 105, 110))
                    dpg.add_theme_color(dpg.mvThemeCol_Button, (40, 40, 44))
                    dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, (40, 40, 44))
                    dpg.add_theme_color(dpg.mvThemeCol_ButtonActive, (40, 40, 44))
        dpg.bind_theme(theme)
        with dpg.texture_registry(tag="textures"):
            dpg.add_dynamic_texture(1000, 400, [0.0] * (1000 * 400 * 4), tag="spectrogram_tex")
        with dpg.file_dialog(directory_selector=False, show=False, callback=self._on_open_chosen,
                             tag="open_dialog", width=700, height=420):
            dpg.add_file_extension("Audio{.wav,.mp3,.mp4,.m4a,.flac,.ogg,.opus,.aac,.aif,.aiff}")
            dpg.add_file_extension(".*")
        with dpg.file_dialog(directory_selector=False, show=False, callback=self._on_exemplar_chosen,
                             tag="exemplar_dialog", width=700, height=420):
            dpg.add_file_extension("Audio{.wav,.mp3,.mp4,.m4a,.flac,.ogg,.opus,.aac,.aif,.aiff}")
            dpg.add_file_extension(".*")
        with dpg.file_dialog(directory_selector=False, show=False, callback=self._on_save_chosen,
                             tag="save_dialog", width=700, height=420, default_filename="musicoder"):
            for ext in (".wav", ".flac", ".mp3", ".ogg"):
                dpg.add_file_extension(ext)
        with dpg.window(tag="main", label="MusiCoder"):
            with dpg.menu_bar():
                with dpg.menu(label="Help"):
                    dpg.add_menu_item(label="How to use MusiCoder", callback=lambda: dpg.show_item("help"))
            with dpg.group(horizontal=True):
                dpg.add_text("●", tag="conn_dot")
                dpg.add_text("not connected", tag="conn_text")
                dpg.add_input_text(tag="server_url", default_value=self.model.url, width=320,
                                   hint="ws://host:8765, ws://host2:8765")
                dpg.add_button(label="Retry", tag="retry", callback=lambda: self.bridge.connect(dpg.get_value("server_url")))
                dpg.add_checkbox(label="Volume balance", tag="normalize", default_value=True,
                                 callback=lambda s, v: setattr(self.model, "normalize", v))
            dpg.add_text("", tag="status", wrap=WIDTH - 40)
            dpg.add_text("", tag="error", color=(255, 110, 90), wrap=WIDTH - 40)

            dpg.add_separator()
            dpg.add_text("1  Song")
            with dpg.group(horizontal=True):
                dpg.add_button(label="Open…", tag="open", callback=lambda: dpg.show_item("open_dialog"))
                dpg.add_button(label="Delete", tag="delete", callback=self.delete_track)
                dpg.add_text("", tag="track_facts")
                dpg.add_progress_bar(tag="upload_bar", width=160, default_value=0.0)
            with dpg.plot(tag="input_plot", height=120, width=-1, no_menus=True, no_mouse_pos=True):
                dpg.add_plot_axis(dpg.mvXAxis, label="track (s)", tag="in_x")
                with dpg.plot_axis(dpg.mvYAxis, tag="in_y", no_tick_labels=True):
                    dpg.add_shade_series([0.0], [0.0], y2=[0.0], tag="in_wave")
                    dpg.add_shade_series([0.0], [0.0], y2=[0.0], tag="win_wave")  # the server's window
                dpg.add_drag_line(tag="win_start", color=(90, 200, 255, 255), default_value=0.0,
                                  callback=self._on_window_dragged)
                dpg.add_drag_line(tag="win_end", color=(90, 200, 255, 120), default_value=10.0, no_inputs=True)
                dpg.add_drag_line(tag="in_head", color=(255, 220, 80, 255), default_value=0.0,
                                  callback=lambda s, v: self.players.input.seek(dpg.get_value(s) - self.model.window_start))
            with dpg.group(horizontal=True):
                dpg.add_input_float(label="start s", tag="win_start_in", width=110, step=0.1, format="%.2f",
                                    callback=self._on_window_typed)
                dpg.add_input_float(label="length s", tag="win_len_in", width=110, step=1.0, default_value=10.0,
                                    format="%.2f", callback=self._on_window_typed)
                dpg.add_button(label="OK", tag="clip_ok", callback=self.confirm_window)
                dpg.add_checkbox(label="Whole track", tag="whole", callback=lambda s, v: self.set_whole(v))
                self._transport("input")

            dpg.add_separator()
            dpg.add_text("2  Texture")
            with dpg.group(tag="texture_group"):
                dpg.add_radio_button([], tag="texture_choice", callback=self._on_texture_picked, horizontal=True)
                dpg.add_text("", tag="texture_desc", wrap=WIDTH - 40)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Try", tag="try", callback=self.try_texture)
                dpg.add_button(label="OK", tag="texture_ok", callback=self.confirm_texture)
                dpg.add_slider_float(label="strength", tag="strength", width=160, min_value=0.0, max_value=1.0,
                                     default_value=1.0, format="%.2f")
                dpg.add_button(label="Open exemplar…", tag="open_exemplar",
                               callback=lambda: dpg.show_item("exemplar_dialog"))
                dpg.add_text("", tag="exemplar_facts")
            with dpg.plot(tag="exemplar_plot", height=80, width=-1, no_menus=True, no_mouse_pos=True, show=False):
                dpg.add_plot_axis(dpg.mvXAxis, tag="ex_x")  # seconds; the facts beside Open say whose
                with dpg.plot_axis(dpg.mvYAxis, tag="ex_y", no_tick_labels=True):
                    dpg.add_shade_series([0.0], [0.0], y2=[0.0], tag="ex_wave")

            dpg.add_separator()
            dpg.add_text("3  Quality")
            dpg.add_radio_button([], tag="quality_choice", horizontal=True, callback=self._on_quality_picked)
            with dpg.group(horizontal=True):
                dpg.add_button(label="Convert", tag="convert", callback=self.convert)
                dpg.add_button(label="Cancel", tag="cancel", callback=lambda: self.bridge.cancel())
                dpg.add_progress_bar(tag="job_bar", width=-1, default_value=0.0, overlay="")

            dpg.add_separator()
            dpg.add_text("4  Result")
            with dpg.group(horizontal=True):
                dpg.add_image("spectrogram_tex", tag="spectrogram", width=SPECTROGRAM_WIDTH,
                              height=SPECTROGRAM_WIDTH * 2 // 5)
                with dpg.group():
                    dpg.add_text("", tag="result_facts", wrap=WIDTH - SPECTROGRAM_WIDTH - 60)
            with dpg.plot(tag="output_plot", height=100, width=-1, no_menus=True, no_mouse_pos=True):
                dpg.add_plot_axis(dpg.mvXAxis, label="result (s)", tag="out_x")
                with dpg.plot_axis(dpg.mvYAxis, tag="out_y", no_tick_labels=True):
                    dpg.add_shade_series([0.0], [0.0], y2=[0.0], tag="out_wave")
                dpg.add_drag_line(tag="out_head", color=(255, 220, 80, 255), default_value=0.0,
                                  callback=lambda s, v: self.players.output.seek(dpg.get_value(s)))
            with dpg.group(horizontal=True):
                self._transport("output")
                dpg.add_button(label="A/B: result", tag="ab", callback=self.switch_ab)
                dpg.add_button(label="Save as…", tag="save", callback=self._show_save_dialog)
        with dpg.theme() as window_theme:
            with dpg.theme_component(dpg.mvShadeSeries):
                dpg.add_theme_color(dpg.mvPlotCol_Fill, (255, 170, 60, 210), category=dpg.mvThemeCat_Plots)
        dpg.bind_item_theme("win_wave", window_theme)
        with dpg.item_handler_registry(tag="strength_handlers"):  # the slider let go: convert again
            dpg.add_item_deactivated_after_edit_handler(
                callback=lambda: self.release_strength(float(dpg.get_value("strength"))))
        dpg.bind_item_handler_registry("strength", "strength_handlers")
        with dpg.window(tag="help", label="Help", show=False, width=700, height=420, pos=(200, 150)):
            dpg.add_text(HELP_TEXT, wrap=660)
        dpg.set_primary_window("main", True)

    def _transport(self, which: str) -> None:
        dpg = self.dpg
        dpg.add_button(label="Play", tag=f"play_{which}", callback=lambda: self.play_button(which))
        dpg.add_button(label="Pause", tag=f"pause_{which}", callback=lambda: getattr(self.players, which).pause())
        dpg.add_button(label="Stop", tag=f"stop_{which}", callback=lambda: getattr(self.players, which).stop())
        dpg.add_text("0.0 s", tag=f"pos_{which}")

    # ---- user actions (the buttons call these; so can a script) ------------------------------

    def play_button(self, which: str) -> None:
        """The Play buttons: the output one plays the result (or, A/B on the input, the
        input it was made of), even after a preview."""
        if which == "output" and self.model.result is not None:
            self._load_listening()
        self.play(which)

    def _load_listening(self) -> None:
        """The output player holds what A/B says: the result, or the input it was made of."""
        md = self.model
        holds = (md.result, md.listening)
        if self._output_holds is not None and self._output_holds[0] is md.result \
                and self._output_holds[1] == md.listening:
            return
        if md.listening == "input":
            start, duration = md.result_span()
            samples = self._track_part(start, duration)
        else:
            samples = self._result_samples
        self.players.output.load(samples, audio.SAMPLE_RATE)
        self._output_holds = holds

    def _track_part(self, start: float, duration: float):
        """The track's samples from start for duration (s), at the balanced or raw level as
        the Volume balance box says: (n,) or (channels, n)."""
        md = self.model
        a = int(start * md.track_rate)
        part = md.track_samples[..., a:a + int(duration * md.track_rate)]
        return audio.normalize_loudness(part, rate=md.track_rate) if md.normalize else part

    def switch_ab(self) -> None:
        """A/B: the result's transport plays the other one, from the same position, and
        goes on playing if it was."""
        if not self.model.enabled()["ab"]:
            return
        out = self.players.output
        self._load_listening()  # what plays now (a preview may have been loaded since)
        position, playing = out.position, out.playing
        self.model.toggle_listening()
        self._load_listening()
        out.seek(position)
        if playing:
            self.play("output")

    def set_whole(self, whole: bool) -> None:
        self.model.apply(m.WholePicked(bool(whole)))

    def release_strength(self, strength: float) -> None:
        """The strength slider let go: converts again where a result of another strength shows."""
        if self.model.strength_released(strength):
            self.convert()

    def play(self, which: str) -> None:
        try:
            self.players.play(which)
        except PlaybackUnavailable as err:
            self.model.error = str(err)

    def open_file(self, path: str) -> None:
        self.players.stop_all()
        self.bridge.open_file(path)

    def delete_track(self) -> None:
        self.players.stop_all()
        self.model.apply(m.TrackCleared())

    def set_window(self, start: float, duration: float) -> None:
        self.model.apply(m.WindowPicked(max(0.0, start), max(1.0, duration)))

    def confirm_window(self) -> None:
        self.bridge.clip(self.model.window_start, self.model.window_duration)

    def pick_texture(self, name: str) -> None:
        self.model.apply(m.TexturePicked(name))
        label = next((t["label"] for t in self.model.textures() if t["name"] == name), None)
        if label:
            self.dpg.set_value("texture_choice", label)

    def open_exemplar(self, path: str) -> None:
        self.bridge.open_exemplar(path)

    def try_texture(self) -> None:
        if self.model.own_texture:  # the user's own file: played from here, no round trip
            if self.model.exemplar_samples is not None:
                self._play_preview(self.model.exemplar_samples, self.model.exemplar_rate)
            return
        name = self.model.texture or next((t["name"] for t in self.model.textures()), None)
        if name:
            self.bridge.preview(name)

    def confirm_texture(self) -> None:
        self.model.confirm_texture()

    def pick_quality(self, name: str) -> None:
        self.model.apply(m.QualityPicked(name))
        self._show_quality()

    def convert(self) -> None:
        self.players.output.stop()
        md = self.model
        self.bridge.convert(md.texture, md.quality, md.normalize, strength=md.strength, whole=md.whole)

    def save(self, path: str) -> None:
        self.bridge.save_result(path)

    # ---- widget callbacks --------------------------------------------------------------------

    def _on_open_chosen(self, sender, data) -> None:
        if isinstance(data, dict) and data.get("file_path_name"):
            self.open_file(data["file_path_name"])

    def _on_exemplar_chosen(self, sender, data) -> None:
        if isinstance(data, dict) and data.get("file_path_name"):
            self.open_exemplar(data["file_path_name"])

    def _on_save_chosen(self, sender, data) -> None:
        if isinstance(data, dict) and data.get("file_path_name"):
            self.save(data["file_path_name"])

    def _show_save_dialog(self) -> None:
        self.dpg.configure_item("save_dialog", default_filename=default_save_name(self.model))
        self.dpg.show_item("save_dialog")

    def _on_window_dragged(self, sender, value) -> None:
        self.set_window(float(self.dpg.get_value("win_start")), self.model.window_duration)

    def _on_window_typed(self, sender, value) -> None:
        self.set_window(self.dpg.get_value("win_start_in"), self.dpg.get_value("win_len_in"))

    def _on_texture_picked(self, sender, label) -> None:
        for t in self.model.textures():
            if t["label"] == label:
                self.pick_texture(t["name"])

    def _on_quality_picked(self, sender, label) -> None:
        for q in self.model.qualities():
            if label == _quality_label(q):
                self.pick_quality(q["name"])

    def _show_quality(self) -> None:
        for q in self.model.qualities():
            if q["name"] == self.model.quality:
                self.dpg.set_value("quality_choice", _quality_label(q))

    # ---- per frame -------------------------------------------------------------------------

    def frame(self) -> None:
        """Drain network events into the model, start queued playback, redraw."""
        for event in self.bridge.drain():
            self.model.apply(event)
            if isinstance(event, m.PreviewReady):
                self._play_preview(audio.decode_bytes(event.audio, stereo=True), audio.SAMPLE_RATE)
        self._refresh()

    def _play_preview(self, samples, rate: int) -> None:
        self.players.output.load(samples, rate)
        self._output_holds = None  # Play (output) loads the result again
        self.play("output")

    def _refresh(self) -> None:
        dpg, md = self.dpg, self.model
        colours = {m.Connection.CONNECTED: (90, 220, 120), m.Connection.CONNECTING: (240, 200, 80),
                   m.Connection.DISCONNECTED: (240, 90, 80)}
        dpg.configure_item("conn_dot", color=colours[md.connection])
        dpg.set_value("conn_text", md.connection.value)
        dpg.set_value("status", md.status)
        dpg.set_value("error", md.error or "")
        for name, on in md.enabled().items():
            if dpg.does_item_exist(name):
                dpg.configure_item(name, enabled=on)
        self._refresh_choices()
        self._refresh_track()
        self._refresh_job()
        self._refresh_result()
        for which in ("input", "output"):
            p = getattr(self.players, which)
            dpg.set_value(f"pos_{which}", f"{p.position:5.1f} / {p.duration:.1f} s")
        start, _ = self._input_span()
        dpg.set_value("in_head", start + self.players.input.position)
        dpg.set_value("whole", md.whole)
        if not dpg.is_item_active("strength"):  # never fight a drag
            dpg.set_value("strength", md.strength)
        dpg.configure_item("ab", label=f"A/B: {md.listening}")
        dpg.set_value("out_head", self.players.output.position)

    def _refresh_choices(self) -> None:
        dpg, md = self.dpg, self.model
        key = (tuple(t["name"] for t in md.textures()), tuple(q["name"] for q in md.qualities()))
        if key != self._textures_drawn:
            self._textures_drawn = key
            dpg.configure_item("texture_choice", items=[t["label"] for t in md.textures()])
            if md.texture:
                self.pick_texture(md.texture)
            dpg.configure_item("quality_choice", items=[_quality_label(q) for q in md.qualities()])
            self._show_quality()
        desc = next((t["description"] for t in md.textures() if t["name"] == md.texture), "")
        dpg.set_value("texture_desc", desc + ("  ✓" if md.texture_confirmed else ""))
        dpg.configure_item("open_exemplar", show=md.own_texture)
        dpg.configure_item("exemplar_plot", show=md.own_texture and md.exemplar_samples is not None)
        ex = md.exemplar
        dpg.set_value("exemplar_facts", "" if not md.own_texture else
                      f"your exemplar: {ex.name}, {ex.used:.1f} s used" if ex is not None else
                      f"{md.exemplar_name}: sending…" if md.exemplar_samples is not None else "no exemplar yet")
        if self._drawn_exemplar is not md.exemplar_samples and md.exemplar_samples is not None:
            self._drawn_exemplar = md.exemplar_samples
            peaks = render.waveform_peaks(md.exemplar_samples, PLOT_COLUMNS)
            x = np.linspace(0, len(md.exemplar_samples) / md.exemplar_rate, PLOT_COLUMNS)
            dpg.set_value("ex_wave", [x.tolist(), peaks[1].tolist(), peaks[0].tolist()])
            dpg.fit_axis_data("ex_x")
            dpg.set_axis_limits("ex_y", -1.0, 1.0)  # full scale: fitting a plot not yet shown leaves it flat

    def _refresh_track(self) -> None:
        dpg, md = self.dpg, self.model
        dpg.set_value("upload_bar", md.upload_fraction)
        if md.track is not None:
            t = md.track
            dpg.set_value("track_facts", f"{t.name}  {t.duration:.1f} s · {t.sample_rate} Hz · {t.channels} ch")
        else:
            dpg.set_value("track_facts", md.track_name or "no song loaded")
        if self._drawn_track is not md.track_samples:
            self._drawn_track = md.track_samples
            if md.track_samples is None:
                dpg.set_value("in_wave", [[0.0], [0.0], [0.0]])
            else:
                peaks = render.waveform_peaks(md.track_samples, PLOT_COLUMNS)
                x = np.linspace(0, md.track_samples.shape[-1] / md.track_rate, PLOT_COLUMNS)
                dpg.set_value("in_wave", [x.tolist(), peaks[1].tolist(), peaks[0].tolist()])
            dpg.fit_axis_data("in_x")
            dpg.fit_axis_data("in_y")
        drawn = self._window_peaks_drawn
        if drawn is None or drawn[0] is not md.window_peaks or drawn[1] != md.whole:
            self._window_peaks_drawn = (md.window_peaks, md.whole)
            if md.window_peaks is None or not md.window_confirmed or md.whole:  # the whole track: no window
                dpg.set_value("win_wave", [[0.0], [0.0], [0.0]])
            else:
                x = np.linspace(md.window_start, md.window_start + md.window_duration, md.window_peaks.shape[1])
                dpg.set_value("win_wave", [x.tolist(), md.window_peaks[1].tolist(), md.window_peaks[0].tolist()])
        start, dur = self._input_span()
        dpg.set_value("win_end", start + dur)
        if (start, dur) != self._window_drawn:  # only when the model moved it: never fight a drag
            self._window_drawn = (start, dur)
            dpg.set_value("win_start", start)
            dpg.set_value("win_start_in", start)
            dpg.set_value("win_len_in", dur)
        # the input player plays the chosen window (or the whole track), at the balanced or raw level
        window_key = (id(md.track_samples), round(start, 3), round(dur, 3), md.normalize)
        if md.track_samples is not None and self._window_key != window_key:
            self._window_key = window_key
            self.players.input.load(self._track_part(start, dur), md.track_rate)

    def _input_span(self) -> tuple[float, float]:
        """(start, duration) s of the track that the input player plays: the window, or
        with Whole track all of it."""
        md = self.model
        if md.whole and md.track_samples is not None:
            return 0.0, md.track_samples.shape[-1] / md.track_rate
        return md.window_start, md.window_duration

    def _refresh_job(self) -> None:
        dpg, job = self.dpg, self.model.job
        if job is None:
            dpg.set_value("job_bar", 0.0 if self.model.result is None else 1.0)
            dpg.configure_item("job_bar", overlay="" if self.model.result is None else "done")
            return
        where = f" · {job.position} ahead" if job.position else ""
        dpg.set_value("job_bar", job.fraction)
        dpg.configure_item("job_bar", overlay=f"{job.stage} {job.fraction:.0%} · ~{job.eta:.1f} s{where}")

    def _refresh_result(self) -> None:
        dpg, res = self.dpg, self.model.result
        if res is self._drawn_result:
            return
        self._drawn_result = res
        if res is None:
            return
        samples = self._result_samples = audio.decode_bytes(res.audio, stereo=True)
        self.players.output.load(samples, audio.SAMPLE_RATE)
        self._output_holds = (res, "result")
        dpg.set_value("spectrogram_tex", png_to_rgba(res.spectrogram, 1000, 400))
        work = {k: v for k, v in res.timings.items() if k != "queued"}
        at = "" if res.strength >= 1.0 else f" at {res.strength:.0%}"
        channels = "stereo" if res.channels == 2 else "mono"
        dpg.set_value("result_facts", f"{res.texture}{at} · {res.quality} · {res.format}\n"
                      f"{res.duration:.1f} s of audio from {res.start:.1f} s, {channels}\n"
                      + "\n".join(f"{k}: {v:.2f} s" for k, v in work.items()))
        x = np.linspace(0, samples.shape[-1] / audio.SAMPLE_RATE, len(res.peaks_max))
        dpg.set_value("out_wave", [x.tolist(), list(res.peaks_max), list(res.peaks_min)])
        dpg.fit_axis_data("out_x")
        dpg.fit_axis_data("out_y")


def _quality_label(q: dict) -> str:
    return f"{q['label']} (~{q['expected_seconds']:.1f} s)"


def png_to_rgba(png: bytes, width: int, height: int) -> list[float]:
    """PNG bytes → a flat RGBA float list of exactly width × height (cropped or padded)."""
    from matplotlib.image import imread

    img = imread(io.BytesIO(png), format="png")[..., :4]
    if img.shape[2] == 3:
        img = np.concatenate([img, np.ones(img.shape[:2] + (1,), img.dtype)], axis=2)
    out = np.zeros((height, width, 4), np.float32)
    h, w = min(height, img.shape[0]), min(width, img.shape[1])
    out[:h, :w] = img[:h, :w]
    return out.ravel().tolist()


def default_save_name(model: m.Model) -> str:
    """SONG_TEXTURE_QUALITY, without extension: the dialog's filter adds the format."""
    base = os.path.splitext(model.track_name or "musicoder")[0]
    texture = os.path.splitext(model.exemplar_name or "own")[0] if model.own_texture else model.texture
    return f"{base}_{texture}_{model.quality}"
