"""Servers the gateway tests need, on 127.0.0.1 only, started and stopped by context managers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, policy=None):
    """Run ``app`` with uvicorn in a thread on a free loopback port; yields the base URL.

    With ``policy``, uvicorn runs as ``memberscope serve`` runs it (its HTTP limits, log filters).
    """
    import uvicorn

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if policy is None:
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
    else:
        from memberscope.gateway.server import server_config

        config = server_config(app, policy, log_level="warning", lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-thread gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_healthy(url: str, proc: subprocess.Popen, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become healthy in {timeout} s")


@contextlib.contextmanager
def gateway_processes(model: Path, policy: Path, *, n: int = 1, log_dir: Path | None = None):
    """``n`` ``memberscope serve`` subprocesses on free loopback ports, started together; yields
    ``[(url, process), ...]``. Each one's output goes to ``log_dir/gateway-I.log`` when given."""
    procs, logs = [], []
    try:
        for i in range(n):
            port = free_port()
            cmd = [sys.executable, "-m", "memberscope.cli", "serve", "--model", str(model), "--policy", str(policy)]
            cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
            out = open(log_dir / f"gateway-{i}.log", "wb") if log_dir is not None else subprocess.DEVNULL
            logs.append(out)
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ})
            procs.append((f"http://127.0.0.1:{port}", proc))
        for url, proc in procs:
            wait_healthy(url, proc)
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for out in logs:
            if out is not subprocess.DEVNULL:
                out.close()


@contextlib.contextmanager
def redis_server():
    """A throwaway ``redis-server`` on 127.0.0.1 (no persistence); yields its ``redis://`` URL."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed; `bash scripts/setup.sh install` installs it (Debian)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
