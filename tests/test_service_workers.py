"""``sentencing serve --workers 2``: two real server processes behind one port share the bundle
(a reload published by one is followed by the other, with no failed request) and the rate limits."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from sentencing.config import Settings
from sentencing.store import CaseStore
from serve.auth import KeyRole, KeyStore, keys_path
from serve.server import free_port
from serve.supervisor import reuse_port_supported
from serve.workers import SharedRateLimiter
from tests.test_service_recommend import CASE, demo_home
from training.train import TrainConfig, train


def test_shared_rate_limiter_is_one_bucket_across_processes(tmp_path: Path) -> None:
    now = [1000.0]
    # Two limiters on one file stand for two worker processes.
    a = SharedRateLimiter(tmp_path / "rl.sqlite", per_minute=60, burst=3, clock=lambda: now[0])
    b = SharedRateLimiter(tmp_path / "rl.sqlite", per_minute=60, burst=3, clock=lambda: now[0])
    assert [a.take("k"), b.take("k"), a.take("k")] == [0.0, 0.0, 0.0]
    assert b.take("k") == pytest.approx(1.0)  # the burst is spent, whichever worker asks
    assert a.take("other") == 0.0  # buckets are per key
    now[0] += 2.0  # 1 token per second refills
    assert b.take("k") == 0.0 and a.take("k") == 0.0
    assert a.take("k") > 0


def _versions(url: str, n: int) -> list[str]:
    """The model version each of ``n`` fresh connections sees (the kernel spreads them over workers)."""
    out = []
    for _ in range(n):
        with httpx.Client(base_url=url, timeout=30) as c:
            out.append(c.get("/readyz").json().get("model_version"))
    return out


@pytest.mark.slow
def test_two_workers_follow_a_reload_without_failed_requests(tmp_path_factory: pytest.TempPathFactory) -> None:
    built = demo_home(tmp_path_factory)
    second = tmp_path_factory.mktemp("second-model") / "model"
    with CaseStore(built / "cases.sqlite") as store:
        train(list(store.iter_cases()), second, config=TrainConfig(n_estimators=20, calibration_folds=2))
    home = tmp_path_factory.mktemp("workers-home")
    keys = KeyStore(keys_path(Settings(home=home)))
    user = keys.create(KeyRole.PROSECUTOR, office="鼓楼区人民检察院")[0]
    admin = keys.create(KeyRole.ADMIN)[0]
    port = free_port()
    env = {**os.environ, "LIANGXING_RATE_LIMIT_PER_MINUTE": "100000", "LIANGXING_RATE_LIMIT_BURST": "10000"}
    exe = Path(sys.executable).with_name("sentencing")
    proc = subprocess.Popen(
        [str(exe), "serve", "--workers", "2", "--port", str(port), "--home", str(home), "--model-dir",
         str(built / "model"), "--index-dir", str(built / "index"), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:  # both workers up: every fresh connection answers ready
            try:
                if all(v is not None for v in _versions(url, 6)):
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the workers did not become ready"
            time.sleep(0.5)
        first = _versions(url, 1)[0]

        statuses: list[int] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():  # a fresh connection each time: both workers get requests
                with httpx.Client(base_url=url, timeout=60) as c:
                    res = c.post("/v1/recommendations", json=CASE, headers={"Authorization": f"Bearer {user}"})
                    statuses.append(res.status_code)

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            with httpx.Client(base_url=url, timeout=120) as c:
                res = c.post("/v1/admin/reload", json={"model_dir": str(second)},
                             headers={"Authorization": f"Bearer {admin}"})
            assert res.status_code == 200, res.text
            new = res.json()["model_version"]
            assert new != first
            deadline = time.monotonic() + 120
            while set(_versions(url, 8)) != {new}:  # the other worker follows
                assert time.monotonic() < deadline, "a worker did not follow the reload"
                time.sleep(0.5)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert len(statuses) >= 4
        assert [s for s in statuses if s != 200] == []
        # Both workers appended to the one audit trail: every recommendation and the reload.
        export = subprocess.run([str(exe), "audit", "export", "--home", str(home)], capture_output=True, text=True,
                                check=True)
        lines = export.stdout.splitlines()
        assert sum('"recommendation"' in line for line in lines) == len(statuses)
        assert sum('"reload"' in line for line in lines) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_publishing_into_a_new_home_creates_it(tmp_path: Path) -> None:
    """``serve --workers N`` with a home that does not exist yet: the pointer file's folder is made."""
    from serve.workers import ServingPointer

    pointer = ServingPointer(tmp_path / "new-home" / "serving.json")
    pointer.publish(tmp_path / "model", tmp_path / "index")
    assert (tmp_path / "new-home" / "serving.json").is_file()


def test_a_server_computes_as_many_requests_at_once_as_its_request_threads(tmp_path: Path) -> None:
    """``request_threads`` bounds the thread pool sync endpoints run in (fewer threads contend less for the GIL)."""
    import anyio.to_thread

    from serve.app import create_app
    from serve.server import BackgroundServer

    app = create_app(Settings(home=tmp_path, request_threads=3), load_model=False)
    seen: list[float] = []

    @app.get("/_threads")
    async def threads() -> dict[str, float]:
        seen.append(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return {}

    with BackgroundServer(app) as url:
        assert httpx.get(f"{url}/_threads").status_code == 200
    assert seen == [3]


@pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT spreading is Linux-only")
def test_a_burst_of_connections_is_spread_over_the_workers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """32 keep-alive connections opened at once: each worker holds some (with one shared socket,
    the first worker to wake could accept all of them and leave the other idle). A second server on
    the same port is refused, naming it, instead of silently taking half the connections; SIGTERM
    stops every worker."""
    built = demo_home(tmp_path_factory)
    port = free_port()
    exe = Path(sys.executable).with_name("sentencing")

    def serve(home: Path) -> list[str]:
        return [str(exe), "serve", "--workers", "2", "--port", str(port), "--home", str(home), "--model-dir",
                str(built / "model"), "--index-dir", str(built / "index"), "--log-level", "warning"]

    proc = subprocess.Popen(serve(tmp_path_factory.mktemp("spread-home")), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    sockets: list[socket.socket] = []
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180
        while len(workers := _workers(proc)) < 2 or not all(_listening(w, port) for w in workers):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the workers did not start listening"
            time.sleep(0.3)
        for _ in range(32):
            sockets.append(socket.create_connection(("127.0.0.1", port)))
        for s in sockets:  # a request on each, so that every connection has been accepted
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        held = [sum(1 for c in w.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
                    and c.laddr.port == port) for w in workers]
        assert sum(held) == 32 and min(held) > 0, held
        second = subprocess.run(serve(tmp_path_factory.mktemp("second-home")), capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 1, second.stderr
        assert f"cannot listen on 127.0.0.1:{port}: another liangxing server" in second.stderr
    finally:
        for s in sockets:
            s.close()
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(proc.pid).children()
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "spawn_main" in _cmdline(c)]


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # gone, or a zombie not yet reaped, since children() listed it
        return ""


def _listening(process: psutil.Process, port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp"))
