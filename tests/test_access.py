"""Access control against real servers: the shared token, allowed Origins, the cap on
connections per client address, TLS (wss://) — through the client library, the CLI and
the GUI's bridge — and the settings behind them."""
from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
import time

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import client
from client.connection import _refusal
from server import access, config
from server.testing import ServerProcess

from .conftest import DEMO_CLIP, REPO
from .test_server import run, wav_bytes

PLUMBING = "tests.passthrough_models"  # identity textures: these tests are about who gets in
TOKEN = "s3cret-token-for-tests"
GOOD_ORIGIN = "https://musicoder.example"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A throwaway CA and a certificate it signed for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(paths[0]))
    cert.cert_chain_pems[0].write_to_path(str(paths[1]))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(paths[1]), append=True)
    cert.private_key_pem.write_to_path(str(paths[2]))
    return tuple(str(p) for p in paths)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, tls_files):
    """TLS, a token (from the environment, as a deployment keeps it out of `ps`) and one allowed Origin."""
    ca, cert, key = tls_files
    with ServerProcess(tmp_path_factory.mktemp("guarded"), "--certfile", cert, "--keyfile", key,
                       "--allowed-origin", GOOD_ORIGIN, workers=1, models=PLUMBING,
                       env={"MUSICODER_TOKEN": TOKEN}, cafile=ca) as server:
        yield server


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("capped"), "--max-connections-per-ip", "2", workers=1,
                       models=PLUMBING) as server:
        yield server


async def convert_flow(c: client.Client) -> None:
    await c.upload(wav_bytes(2.0), name="tone.wav")
    result = await c.convert("water", "lofi")
    assert result.audio[:4] == b"RIFF" and abs(result.duration - 2.0) < 0.05


# ---- the token ------------------------------------------------------------------------------

def test_right_token_converts_and_wrong_or_missing_token_is_refused(guarded, tls_files):
    ca = tls_files[0]
    assert guarded.url.startswith("wss://")

    async def main():
        async with client.Client(guarded.url, token=TOKEN, cafile=ca) as c:
            await convert_flow(c)
        for token, why in ((None, "needs a token"), ("wrong", "wrong token")):
            with pytest.raises(client.AccessDenied) as err:
                await client.Client(guarded.url, token=token, cafile=ca).connect()
            assert err.value.status == 401 and why in str(err.value) and "\n" not in str(err.value)

    run(main())
    assert guarded.health()["status"] == "ok"  # /healthz needs no token, over TLS too
    assert "refused 127.0.0.1: wrong token" in guarded.log() and TOKEN not in guarded.log()


def test_gui_bridge_stops_retrying_on_a_refused_token(guarded, tls_files):
    from gui import model as m
    from gui.bridge import Bridge

    bridge = Bridge(guarded.url, retry_delays=(0.2,), token="wrong", cafile=tls_files[0])
    bridge.start()
    try:
        events = []
        deadline = time.monotonic() + 20
        while not any(isinstance(e, m.Disconnected) for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
            events += bridge.drain()
        time.sleep(1.0)  # five retry delays: none may come
        events += bridge.drain()
    finally:
        bridge.stop()
    assert [type(e) for e in events] == [m.Connecting, m.Disconnected]
    assert events[1].retry_in is None and "access refused (HTTP 401)" in events[1].reason
    bridge.model.apply(events[1])
    assert bridge.model.status == "Not connected." and "wrong token" in bridge.model.error


# ---- Origins --------------------------------------------------------------------------------

def test_disallowed_origin_is_refused_and_allowed_or_no_origin_gets_in(guarded, tls_files):
    context = ssl.create_default_context(cafile=tls_files[0])
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def hello(origin):
        async with connect(guarded.url, origin=origin, additional_headers=auth, ssl=context, open_timeout=10) as ws:
            await ws.send('{"type": "hello", "id": 1, "version": 1}')
            assert '"welcome"' in await asyncio.wait_for(ws.recv(), 10)

    async def main():
        await hello(GOOD_ORIGIN)
        await hello(None)  # scripts, the CLI and the GUI send no Origin
        with pytest.raises(InvalidStatus) as err:
            await hello("https://evil.example")
        refusal = _refusal(guarded.url, err.value.response)
        assert isinstance(refusal, client.AccessDenied) and refusal.status == 403
        assert "Origin" in str(refusal) and "https://evil.example" in str(refusal)

    run(main())


# ---- connections per address ----------------------------------------------------------------

def test_per_ip_cap_refuses_the_next_connection_until_one_closes(capped):
    async def main():
        first, second = client.Client(capped.url), client.Client(capped.url)
        await first.connect()
        await second.connect()
        with pytest.raises(client.ConnectionFailed) as err:
            await client.Client(capped.url).connect()
        assert not isinstance(err.value, client.AccessDenied)  # worth retrying later
        assert "HTTP 429" in str(err.value) and "too many connections from 127.0.0.1 (at most 2)" in str(err.value)
        assert capped.health()["sessions"] == 2  # /healthz is not a connection
        await first.close()
        third = client.Client(capped.url)
        for _ in range(50):  # the server notices the close a moment later
            try:
                await third.connect()
                break
            except client.ConnectionFailed:
                await asyncio.sleep(0.1)
        await convert_flow(third)
        await second.close()
        await third.close()

    run(main())


# ---- TLS ------------------------------------------------------------------------------------

def test_wss_needs_the_ca_and_a_bad_certificate_stops_the_server(guarded, tls_files, tmp_path):
    async def main():
        with pytest.raises(client.ConnectionFailed) as err:
            await client.Client(guarded.url, token=TOKEN).connect()  # the system's CAs do not know ours
        assert "TLS certificate is not trusted" in str(err.value) and "--cafile" in str(err.value)
        with pytest.raises(client.ConnectionFailed, match="cannot read the CA file"):
            await client.Client(guarded.url, token=TOKEN, cafile=str(tmp_path / "missing.pem")).connect()
        with pytest.raises(client.ConnectionFailed):
            await client.Client(guarded.url.replace("wss:", "ws:"), token=TOKEN).connect()

    run(main())
    assert guarded.health()["status"] == "ok"  # plain-text and untrusted attempts hurt nothing
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    proc = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--data-dir", str(tmp_path / "d"),
                           "--models", PLUMBING, "--certfile", str(bad)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"musicoder-server: error: cannot load the TLS certificate {bad}")


# ---- the CLI --------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MUSICODER_TOKEN"}  # only --token counts here
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env=env)


def test_cli_token_and_cafile_exit_codes(guarded, tls_files, tmp_path):
    ca = tls_files[0]
    base = ("convert", str(DEMO_CLIP), "-o", str(tmp_path / "out.wav"), "--texture", "water", "--quality", "lofi",
            "--duration", "2", "--server", guarded.url)
    proc = run_cli(*base, "--token", TOKEN, "--cafile", ca)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.wav").stat().st_size > 44
    for extra, code, words in ((("--cafile", ca), 6, "access refused (HTTP 401): this server needs a token"),
                               (("--cafile", ca, "--token", "wrong"), 6, "access refused (HTTP 401): wrong token"),
                               (("--token", TOKEN), 5, "TLS certificate is not trusted")):
        proc = run_cli(*base, *extra, "-y")  # out.wav is there: the error is the server's, not that
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and words in proc.stderr
        assert proc.stderr.startswith(f"musicoder: error: cannot connect to {guarded.url}")


# ---- settings -------------------------------------------------------------------------------

def test_access_settings(tmp_path):
    s = config.load([], environ={})
    assert (s.token, s.allowed_origin, s.max_connections_per_ip, s.certfile) == ("", (), 0, "")  # all off
    assert access.origins(s) is None
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    s = config.load(["--token-file", str(token_file), "--allowed-origin", "https://a.example",
                     "--allowed-origin", "https://b.example"], environ={"MUSICODER_MAX_CONNECTIONS_PER_IP": "4"})
    assert (s.token, s.max_connections_per_ip) == (TOKEN, 4) and TOKEN not in repr(s)
    assert access.origins(s) == ["https://a.example", "https://b.example", None]
    env = config.load([], environ={"MUSICODER_ALLOWED_ORIGIN": "https://a.example, https://b.example"})
    assert env.allowed_origin == ("https://a.example", "https://b.example")
    token_file.write_text("\n")
    for argv, env in ((["--token-file", str(token_file)], {}), (["--token-file", str(tmp_path / "none")], {}),
                      (["--token", "x", "--token-file", str(token_file)], {}), (["--keyfile", "k.pem"], {}),
                      ([], {"MUSICODER_MAX_CONNECTIONS_PER_IP": "-1"})):
        with pytest.raises(SystemExit, match="musicoder-server: error: "):
            config.load(argv, environ=env)


def test_a_non_loopback_address_without_a_token_is_warned_about(caplog):
    caplog.set_level(logging.WARNING, logger="musicoder.server")
    access.warn_if_exposed(config.Settings(), ["127.0.0.1", "::1"])
    access.warn_if_exposed(config.Settings(token=TOKEN), ["0.0.0.0"])
    assert not caplog.records
    access.warn_if_exposed(config.Settings(), ["0.0.0.0", "::"])
    assert len(caplog.records) == 1 and "0.0.0.0, :: with no token" in caplog.records[0].getMessage()
