"""Azurite (the Azure Storage emulator) for tests and benchmarks, on a free local port.

``tests/tooling/package.json`` pins it; when ``node_modules`` is missing (a clean clone) the
first start runs ``npm ci`` there. The server keeps blobs in memory and is killed by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

TOOLING = Path(__file__).resolve().parent / "tooling"
MAIN_JS = TOOLING / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key: public, the same on every machine, not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def _install() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("Azurite is not installed and npm is not on PATH")
    verb = "ci" if (TOOLING / "package-lock.json").exists() else "install"
    subprocess.run(
        [npm, verb, "--prefix", str(TOOLING), "--no-audit", "--no-fund"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def azurite() -> Iterator[str]:
    """Start Azurite's blob service; yield its connection string; kill it at the end."""
    if not MAIN_JS.exists():
        _install()
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH; Azurite needs Node.js 20")
    port = _free_port()
    args = [node, str(MAIN_JS), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    args += ["--inMemoryPersistence", "--silent", "--disableTelemetry", "--skipApiVersionCheck"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, proc)
        yield connection_string(port)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
