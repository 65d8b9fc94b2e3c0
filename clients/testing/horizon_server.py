"""A pytest fixture shared by the Python suites (the client, the Nixtla
drop-in): the real ``horizon serve`` on a free port with a temporary data
directory. The binary comes from ``HORIZON_BIN`` (set by the Rust drivers in
crates/horizon/tests/), else ``target/debug/horizon``.

With ``HORIZON_TEST_URL`` set, the suites run against that server instead
(e.g. a distributed cluster started by the Rust driver).

Each suite's conftest imports ``server_url`` from here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _binary() -> str:
    path = os.environ.get("HORIZON_BIN") or str(ROOT / "target" / "debug" / "horizon")
    if not Path(path).exists():
        pytest.fail(f"no horizon binary at {path}; build it or set HORIZON_BIN")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The base URL of a fresh ``horizon serve``, stopped after the session."""
    given = os.environ.get("HORIZON_TEST_URL")
    if given:
        yield given
        return
    port = _free_port()
    data = tempfile.mkdtemp(prefix="horizon-pyclient-")
    log = open(Path(data) / "server.log", "wb")
    proc = subprocess.Popen(
        [_binary(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(Path(data) / "store")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"horizon serve exited with {proc.returncode}: {(Path(data) / 'server.log').read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("horizon serve did not answer /healthz within 60 s")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()
    # Each run would otherwise leave its store and log behind in /tmp.
    shutil.rmtree(data, ignore_errors=True)
