"""``sentencing serve --workers N`` on Linux: N uvicorn processes, each listening on its own socket.

uvicorn's own supervisor binds one socket that every worker accepts from. A keep-alive connection
stays with the worker that accepted it, and when a burst of connections arrives (a client opening
its pool), the first worker to wake may accept them all: in 2 of about 15 load runs at 1M cases
with 32 connections, one of two workers sat idle and the service ran at half its throughput.
Here each worker binds the address with ``SO_REUSEPORT``, and the kernel spreads new connections
across the listening sockets by their address hash.

``SO_REUSEPORT`` would also let a second server of the same user join the port and take half its
connections, silently. So the supervisor holds an exclusive lock named after the address (a
second ``sentencing serve`` there is refused, naming it), and keeps the address bound itself,
never listening (it receives no connection), so that a program without ``SO_REUSEPORT`` cannot take
the port either. It restarts a worker that exits, and on SIGTERM or SIGINT stops them all
(uvicorn's graceful shutdown in each).
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

logger = logging.getLogger("liangxing.serve")

RESTART_BACKOFF_S = 1.0
"""Pause before restarting a worker that exited within 5 s of starting (a crash loop)."""
STOP_TIMEOUT_S = 30.0


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections over sockets sharing a port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _address_lock(host: str, port: int) -> int:
    """An exclusive lock on this address for the life of the process (released when it dies)."""
    path = Path(tempfile.gettempdir()) / f"liangxing-serve-{host.replace(':', '_')}-{port}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise OSError(f"another liangxing server holds this address ({path})") from None
    return fd


def _worker(host: str, port: int, config: dict[str, Any]) -> None:
    """One worker process: its own listening socket, one uvicorn server."""
    sock = _bind(host, port)
    uvicorn.Server(uvicorn.Config(host=host, port=port, **config)).run(sockets=[sock])


def run_workers(workers: int, host: str, port: int, config: dict[str, Any]) -> int:
    """Serve ``config`` (uvicorn.Config keywords, the app as an import string) on ``workers``
    processes until SIGTERM or SIGINT. Raises OSError, before starting any, when the address is taken."""
    lock = _address_lock(host, port)
    try:
        reserved = _bind(host, port)
    except OSError:
        os.close(lock)
        raise
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start(i: int) -> tuple[Any, float]:
        process = context.Process(target=_worker, args=(host, port, config), name=f"liangxing-worker-{i}")
        process.start()
        return process, time.monotonic()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes: list[tuple[Any, float]] = []
    try:
        processes = [start(i) for i in range(workers)]
        while not stop.wait(0.5):
            for i, (process, started) in enumerate(processes):
                if process.is_alive() or stop.is_set():
                    continue
                logger.warning("worker %s (pid %s) exited with %s; restarting it", i, process.pid, process.exitcode)
                if time.monotonic() - started < 5.0:
                    time.sleep(RESTART_BACKOFF_S)
                processes[i] = start(i)
    finally:
        for process, _ in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process, _ in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        reserved.close()
        os.close(lock)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
