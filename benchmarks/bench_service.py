"""Load test of the HTTP service over loopback: a 3-defendant recommendation with 10 similar cases.

The server is ``sentencing serve`` in its own process; this process is the client (raw HTTP/1.1
keep-alive over asyncio, so that the client costs little of the 2 cores). For each index size it
prints p50/p99 latency, requests/s, errors and the server's peak RSS at each concurrency, next to
two baselines measured in the same run: ``GET /healthz`` (the HTTP floor) and the in-process
``recommend()`` call (the compute floor).

    python -m benchmarks.bench_service --cases 100000 --concurrency 1,32 --duration 20
    python -m benchmarks.bench_service --index-dir IDX --model-dir MODEL --floor-baseline-root /tmp/old-tree  # A/B

Built indexes are kept under ``--work`` (default ``var/bench``) and reused by later runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from itertools import islice
from pathlib import Path

import httpx
import psutil

from sentencing.config import Settings, load_settings
from serve.auth import KeyRole, KeyStore, keys_path
from serve.server import free_port

CHARGES = ("盗窃", "诈骗", "故意伤害", "危险驾驶", "寻衅滋事", "掩饰、隐瞒犯罪所得", "帮助信息网络犯罪活动")
PROVINCES = ("JS", "ZJ", "GD", "SC", "HB", "SD", "HA", "BJ")
SURNAMES = "张王李赵刘陈杨黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜敏静强磊军洋勇艳杰涛明超秀霞平刚"


def request_bodies(n: int, seed: int = 7) -> list[bytes]:
    """Distinct 3-defendant cases (so that nothing could be served from a cache)."""
    rng = random.Random(seed)
    bodies = []
    for i in range(n):
        names = rng.sample([s + g for s in SURNAMES for g in GIVEN], 3)
        charge = rng.choice(CHARGES)
        amount = rng.randrange(2_000, 400_000, 100)
        facts = (f"经审理查明：2023年{rng.randint(1, 12)}月，被告人{names[0]}伙同{names[1]}、{names[2]}，"
                 f"{charge}他人财物，涉案金额人民币{amount}元。{names[0]}系主犯，{names[2]}负责望风。案发后，{names[1]}主动投案，如实供述；"
                 f"{names[2]}退赔被害人损失并取得谅解。")
        body = {
            "id": f"bench-{i}",
            "facts": facts,
            "province": rng.choice(PROVINCES),
            "defendants": [{"name": name, "charges": [charge]} for name in names],
        }
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


# --------------------------------------------------------------------------- building


def build(work: Path, n_cases: int, train_cases: int, seed: int) -> tuple[Path, Path]:
    """A model (trained on ``train_cases``) and an index of ``n_cases`` demo cases, cached in ``work``."""
    from retrieval.search import RetrievalIndex
    from sentencing.demo_corpus import generate_cases
    from training.predictor import ModelLoadError, RangePredictor
    from training.train import train

    model_dir = work / f"model-{train_cases}"
    index_dir = work / f"index-{n_cases}"
    if model_dir.is_dir():
        try:
            RangePredictor.load(model_dir)
        except ModelLoadError as exc:  # cached by an older version of the training code: train again
            print(f"  retraining: {exc}", flush=True)
            model_dir.rename(model_dir.with_name(f"{model_dir.name}.stale-{int(time.time())}"))
    if not model_dir.is_dir():
        t = time.perf_counter()
        train(list(generate_cases(train_cases, seed)), model_dir)
        print(f"  trained on {train_cases} cases in {time.perf_counter() - t:.0f} s", flush=True)
    if n_cases and not index_dir.is_dir():
        t = time.perf_counter()
        settings = Settings(home=work)
        RetrievalIndex.build(islice(generate_cases(n_cases, seed), n_cases), index_dir, settings=settings)
        print(f"  indexed {n_cases} cases in {time.perf_counter() - t:.0f} s", flush=True)
    return model_dir, index_dir


# --------------------------------------------------------------------------- client


async def _worker(port: int, path: str, key: str, bodies: list[bytes], start: int, deadline: float,
                  latencies: list[float], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start
    try:
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)] if bodies else b""
            i += 1
            method = b"POST" if bodies else b"GET"
            request = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                       + key.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                       + str(len(body)).encode() + b"\r\n\r\n" + body)
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(m.group(1)) if m else 0)
            latencies.append(time.perf_counter() - t)
            statuses.append(int(head[9:12]))
    finally:
        writer.close()


def load(port: int, path: str, key: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: list[int] = []

    async def run() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_worker(port, path, key, bodies, i * 7, deadline, latencies, statuses)
                               for i in range(concurrency)))

    t = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - t
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "rps": len(ms) / elapsed,
        "p50_ms": ms[len(ms) // 2] if ms else float("nan"),
        "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else float("nan"),
        "errors": sum(1 for s in statuses if s != 200),
    }


# --------------------------------------------------------------------------- server


class Server:
    def __init__(self, home: Path, model_dir: Path, index_dir: Path, workers: int = 1) -> None:
        self.port = free_port()
        env = {**os.environ, "LIANGXING_HOME": str(home), "LIANGXING_MODEL_DIR": str(model_dir),
               "LIANGXING_INDEX_DIR": str(index_dir), "LIANGXING_RATE_LIMIT_PER_MINUTE": "100000000",
               "LIANGXING_RATE_LIMIT_BURST": "1000000", "LIANGXING_PORT": str(self.port)}
        exe = Path(sys.executable).with_name("sentencing")
        self.proc = subprocess.Popen([str(exe), "serve", "--log-level", "warning", "--workers", str(workers)], env=env)
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.5)

    def processes(self) -> list[psutil.Process]:
        """The server's process and every process under it (supervisor, workers, helpers)."""
        main = psutil.Process(self.proc.pid)
        return [main, *main.children(recursive=True)]

    def cpu_s(self) -> float:
        """CPU seconds the server processes have used (all threads, workers included)."""
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system
        return total

    def memory_mb(self) -> tuple[float, float]:
        """RSS and PSS of the server, summed over its processes. The RSS sum counts pages the
        workers share (the memory-mapped index, the rows file) once per worker, so it overstates
        the machine's use; PSS charges each shared page to its sharers in equal parts, so the PSS
        sum is the memory the server holds."""
        rss = pss = 0
        for p in self.processes():
            try:
                info = p.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += info.rss
            pss += info.pss
        return rss / 2**20, pss / 2**20

    def memory_by_mapping(self, top: int = 6) -> list[tuple[str, float, float]]:
        """The largest contributors to the RSS sum: (mapping, RSS MB, PSS MB) summed over the server's
        processes, from ``/proc/PID/smaps`` (Linux; empty elsewhere). A mapped file is named by its
        file name; anonymous memory (the heap, FAISS's in-memory lists, numpy arrays) is ``[anon]``."""
        totals: dict[str, list[float]] = {}
        for p in self.processes():
            try:
                text = Path(f"/proc/{p.pid}/smaps").read_text()
            except OSError:
                continue
            name = "[anon]"
            for line in text.splitlines():
                header = _SMAPS_HEADER.match(line)
                if header:
                    path = header.group(1)
                    name = Path(path).name if path.startswith("/") else "[anon]"
                elif line.startswith(("Rss:", "Pss:")):
                    kb = float(line.split()[1])
                    totals.setdefault(name, [0.0, 0.0])[line.startswith("Pss:")] += kb / 1024
        ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]
        return [(name, rss, pss) for name, (rss, pss) in ranked]

    def connections(self) -> list[int]:
        """Established client connections held by each server process (workers only, with --workers):
        each keep-alive connection stays with the worker that accepted it, and when a burst of them
        arrives, one worker may accept most (in runs that gave half the throughput, one worker sat idle)."""
        main = psutil.Process(self.proc.pid)
        procs = main.children(recursive=True) or [main]
        counts = []
        for p in procs:
            try:
                conns = p.net_connections("tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if any(c.status == psutil.CONN_LISTEN for c in conns) or len(procs) == 1:
                counts.append(sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED
                                  and c.laddr and c.laddr.port == self.port))
        return counts

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _rows(index_dir: Path) -> int:
    """The rows of a given index (its manifest), which label its figures instead of ``--cases``."""
    return int(json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["rows"])


def compute_floor(model_dir: Path, index_dir: Path, bodies: list[bytes], n: int = 40) -> float:
    """Median ms of ``recommend()`` in this process: what the request costs without HTTP."""
    from serve import recommender as rec
    from serve.schemas import CaseInput

    bundle = rec.load_bundle(model_dir, index_dir)
    cases = [CaseInput.model_validate_json(b) for b in bodies[:n]]
    rec.recommend(bundle, cases[0], "warm")
    times = []
    for i, case in enumerate(cases):
        t = time.perf_counter()
        rec.recommend(bundle, case, f"r{i}")
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


_SMAPS_HEADER = re.compile(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
"""A mapping's first line in ``/proc/PID/smaps``: address range, permissions, offset, device, inode, path."""


_FLOOR_CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from serve import recommender as rec
from serve.schemas import CaseInput
from retrieval.index import set_search_threads
from sentencing.config import load_settings
set_search_threads(load_settings().retrieval_search_threads)  # as the server does
bundle = rec.load_bundle(Path(sys.argv[2]), Path(sys.argv[3]))
cases = [CaseInput.model_validate_json(b) for b in json.loads(Path(sys.argv[4]).read_text(encoding="utf-8"))]
warm = int(sys.argv[5])
for i, case in enumerate(cases[:warm]):
    rec.recommend(bundle, case, f"w{i}")
gc.collect()
wall, cpu = [], []
for i, case in enumerate(cases[warm:]):
    w, c = time.perf_counter(), time.thread_time()
    rec.recommend(bundle, case, f"r{i}")
    cpu.append((time.thread_time() - c) * 1000)
    wall.append((time.perf_counter() - w) * 1000)
print(json.dumps({"n": len(wall), "wall": wall, "cpu": cpu}))
"""


def compare_floor(baseline_root: Path, model_dir: Path, index_dir: Path, bodies: list[bytes], rounds: int,
                  warm: int = 20) -> None:
    """The in-process ``recommend()`` under another source tree and under this one, alternately, each in a
    fresh process (same index, model and requests): wall and CPU (thread time) ms per request."""
    import tempfile

    here = Path(__file__).resolve().parents[1]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump([b.decode() for b in bodies], fh, ensure_ascii=False)
        bodies_file = fh.name
    print(f"in-process recommend() A/B, {len(bodies) - warm} requests after {warm} warm-up, {rounds} alternating "
          f"rounds: baseline {baseline_root}, this tree {here}; index {index_dir}")
    summary: dict[str, list[dict]] = {"baseline ": [], "this tree": []}
    try:
        for r in range(rounds):
            for label, root in (("baseline ", baseline_root), ("this tree", here)):
                out = subprocess.run(
                    [sys.executable, "-c", _FLOOR_CHILD, str(root), str(model_dir), str(index_dir), bodies_file,
                     str(warm)], capture_output=True, text=True, check=True, cwd=root,
                ).stdout.strip().splitlines()[-1]
                result = json.loads(out)
                wall, cpu = sorted(result["wall"]), sorted(result["cpu"])
                row = {"wall_p50": statistics.median(wall), "wall_p99": wall[min(len(wall) - 1, int(len(wall) * .99))],
                       "cpu_p50": statistics.median(cpu), "cpu_mean": statistics.fmean(cpu)}
                summary[label].append(row)
                print(f"  round {r + 1} {label}  wall p50 {row['wall_p50']:6.2f} ms  p99 {row['wall_p99']:6.2f} ms  "
                      f"CPU p50 {row['cpu_p50']:6.2f} ms  mean {row['cpu_mean']:6.2f} ms  "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        os.unlink(bodies_file)
    base, this = summary["baseline "], summary["this tree"]
    for key in ("wall_p50", "wall_p99", "cpu_p50", "cpu_mean"):
        b = statistics.median(r[key] for r in base)
        t = statistics.median(r[key] for r in this)
        print(f"  median over rounds {key:9} baseline {b:6.2f} ms  this tree {t:6.2f} ms  ratio {t / b:5.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="100000", help="index sizes, comma-separated (e.g. 100000,1000000)")
    parser.add_argument("--concurrency", default="1,32")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load level")
    parser.add_argument("--train-cases", type=int, default=3000, help="demo cases the model is trained on")
    parser.add_argument("--work", type=Path, default=Path("var/bench"))
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument("--no-floor", action="store_true", help="skip the in-process compute baseline")
    parser.add_argument("--workers", type=int, default=1, help="server processes (sentencing serve --workers)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of unreported warm-up load")
    parser.add_argument("--build-only", action="store_true", help="build (and cache) the model and indexes, then stop")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="serve this existing index instead of building one (e.g. the 1M index that "
                             "benchmarks.bench_retrieval --keep built); its manifest's row count labels the run")
    parser.add_argument("--model-dir", type=Path, default=None, help="the model directory for --floor-baseline-root")
    parser.add_argument("--floor-baseline-root", type=Path, default=None,
                        help="instead: A/B of the in-process recommend() against this source tree, alternately "
                             "(needs --index-dir and --model-dir)")
    parser.add_argument("--floor-requests", type=int, default=220, help="requests per --floor-baseline-root round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for --floor-baseline-root")
    args = parser.parse_args(argv)
    if args.floor_baseline_root is not None:
        if args.index_dir is None or args.model_dir is None:
            parser.error("--floor-baseline-root needs --index-dir and --model-dir")
        compare_floor(args.floor_baseline_root, args.model_dir, args.index_dir, request_bodies(args.floor_requests),
                      args.rounds)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    bodies = request_bodies(200)
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    sizes = [int(c) for c in args.cases.split(",")] if args.index_dir is None else [_rows(args.index_dir)]
    for n_cases in sizes:
        given = f" (the index in {args.index_dir}; its rows are defendants)" if args.index_dir else ""
        print(f"index of {n_cases} cases{given}:", flush=True)
        model_dir, index_dir = build(args.work, 0 if args.index_dir else n_cases, args.train_cases, args.seed)
        if args.index_dir:
            index_dir = args.index_dir
        if args.build_only:
            continue
        floor = None if args.no_floor else compute_floor(model_dir, index_dir, bodies)
        home = args.work / f"home-{n_cases}"
        key, _ = KeyStore(keys_path(Settings(home=home))).create(KeyRole.INTEGRATION, office="bench")
        server = Server(home, model_dir, index_dir, args.workers)
        try:
            health = load(server.port, "/healthz", key, [], 1, min(5.0, args.duration))
            # Warm every worker (filter and cohort caches, the index pages) over several connections;
            # not reported.
            load(server.port, "/v1/recommendations", key, bodies, 4 * args.workers, args.warmup)
            for c in levels:
                cpu_before = server.cpu_s()
                sampled: list[list[int]] = []
                sampler = threading.Timer(args.duration / 2,
                                          lambda out=sampled, srv=server: out.append(srv.connections()))
                sampler.start()
                result = load(server.port, "/v1/recommendations", key, bodies, c, args.duration)
                sampler.join()
                cpu_ms = (server.cpu_s() - cpu_before) * 1000 / max(result["requests"], 1)
                rss, pss = server.memory_mb()
                result.update(cases=n_cases, concurrency=c, rss_mb=rss, pss_mb=pss, floor_ms=floor,
                              healthz_p50_ms=health["p50_ms"], cpu_ms=cpu_ms)
                rows.append(result)
                spread = "/".join(map(str, sampled[0])) if sampled and sampled[0] else "?"
                print(f"  c={c:<3} p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                      f"{result['rps']:7.1f} req/s  errors {result['errors']}  server RSS {result['rss_mb']:.0f} MB "
                      f"(PSS {result['pss_mb']:.0f} MB)  "
                      f"server CPU {cpu_ms:.1f} ms/request  connections per worker {spread}",
                      flush=True)
            mappings = server.memory_by_mapping()
            if mappings:
                print("  RSS by mapping, summed over the server's processes (MB RSS / PSS): "
                      + "; ".join(f"{name} {rss:.0f}/{pss:.0f}" for name, rss, pss in mappings), flush=True)
        finally:
            server.stop()
    print("\ncases     conc  p50_ms  p99_ms   req/s  errors  rss_MB  pss_MB  | in-process_ms  http/in-process  "
          "healthz_p50_ms")
    for r in rows:
        ratio = r["p50_ms"] / r["floor_ms"] if r["floor_ms"] else float("nan")
        floor = f"{r['floor_ms']:13.1f}" if r["floor_ms"] else "            -"
        print(f"{r['cases']:<9} {r['concurrency']:>4} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} {r['rps']:7.1f} "
              f"{r['errors']:>7} {r['rss_mb']:7.0f} {r['pss_mb']:7.0f}  | {floor} {ratio:16.2f} "
              f"{r['healthz_p50_ms']:15.2f}")
    refine_reads = load_settings().retrieval_refine_reads  # the server reads the same environment
    print(f"server workers: {args.workers}; retrieval_refine_reads {refine_reads!r}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print("targets at 1M cases on 2 cores: p99 <= 50 ms at c=1, >= 200 req/s at c=32, 0 errors, RSS <= 2048 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
