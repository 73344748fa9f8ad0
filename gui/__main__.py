"""``musicoder-gui [--server ws://host:port[,ws://host2:port]]... [FILE]`` and ``python -m gui``.

With no server named (on the command line, in $MUSICODER_SERVER or in the config file
~/.config/musicoder/gui.json as {"server": "ws://..."}), the GUI starts a server of
its own on loopback and stops it on exit: one person needs nothing deployed. Several
addresses (front ends of one service: comma-separated, --server again, or a JSON list in
the config file) are tried in turn, and a lost connection moves on to the next one. A server's
token and a CA file to trust for wss:// come the same way: $MUSICODER_TOKEN and
$MUSICODER_CAFILE, or "token" and "cafile" in the config file.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator

CONFIG_FILE = os.path.join(os.path.expanduser("~"), ".config", "musicoder", "gui.json")


def configured(name: str) -> str | None:
    """A setting ("server", "token", "cafile") from $MUSICODER_<NAME> or the config file, if any."""
    if os.environ.get(f"MUSICODER_{name.upper()}"):
        return os.environ[f"MUSICODER_{name.upper()}"]
    try:
        with open(CONFIG_FILE) as f:
            return json.load(f).get(name)
    except (OSError, ValueError, AttributeError):
        return None


def has_display() -> bool:
    """Dear PyGui aborts the whole process without a display: look before we leap."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """A MusiCoder server on loopback for the life of the GUI; yields its URL."""
    from server.testing import ServerProcess

    data_dir = tempfile.mkdtemp(prefix="musicoder-gui-")
    srv = ServerProcess(data_dir, workers=1)
    try:
        srv.start(wait_workers=False)  # the window opens at once; the models load meanwhile
        yield srv.url
    finally:
        srv.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def run_window(url: str | list[str], file: str | None) -> int:
    import dearpygui.dearpygui as dpg

    from .app import HEIGHT, WIDTH, App
    from .bridge import Bridge

    bridge = Bridge(url, token=configured("token"), cafile=configured("cafile"))
    dpg.create_context()
    app = None
    try:
        app = App(dpg, bridge)
        dpg.create_viewport(title="MusiCoder", width=WIDTH, height=HEIGHT)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        bridge.start()
        if file:
            app.open_file(file)
        while dpg.is_dearpygui_running():
            app.frame()
            dpg.render_dearpygui_frame()
    finally:
        if app is not None:
            app.players.stop_all()
        bridge.stop()
        dpg.destroy_context()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="musicoder-gui", description="The MusiCoder desktop client.")
    ap.add_argument("file", nargs="?", help="a song to open at start")
    ap.add_argument("--server", action="append",
                    help="ws://host:port of a MusiCoder server (default: start one on loopback); several, "
                         "comma-separated or --server again, are tried in turn")
    args = ap.parse_args(argv)
    named = args.server or configured("server")
    servers = None
    if named:
        from client import parse_servers
        from musicoder.errors import InputError

        try:
            servers = parse_servers(named)
        except InputError as err:
            print(f"musicoder-gui: error: {err}", file=sys.stderr)
            return 2
    if not has_display():
        print("musicoder-gui: error: no display (set DISPLAY, or run under Xvfb)", file=sys.stderr)
        return 2
    if servers:
        return run_window(servers, args.file)
    with local_server() as url:
        return run_window(url, args.file)


if __name__ == "__main__":
    sys.exit(main())
