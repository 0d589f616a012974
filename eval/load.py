"""Load test of the running server over HTTP: many concurrent clients, answers checked, latency and memory.

    python -m eval.load                                   # starts `assistant serve` itself, 16 x 2,000
    python -m eval.load --questions 400 --out /tmp/load.json
    python -m eval.load --url http://127.0.0.1:7860 --pid 1234   # a server already running (loopback only)

Steps: wait for the server; ask every distinct question once, one at a time (the reference answers); then
send `--questions` questions (eval/questions.jsonl, cycled) from `--clients` threads, each through
`POST /gradio_api/call/ask` and its event stream. Memory (VmRSS of the server process, from
/proc/<pid>/status) is read when the server is ready, after the reference pass, after the first
`--checkpoint` questions of the concurrent run, and at its end.

Pass/fail (the exit code, 0 or 1): zero errors, every concurrent answer identical to the reference one
(all fields but elapsed_ms), and the RSS at the end within `--rss-tolerance` (10 %) of the checkpoint.
Traffic stays on this machine (loopback addresses only) and the run is bounded by `--time-limit`.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
TOP_K = 5


@dataclass(frozen=True, slots=True)
class LoadConfig:
    clients: int = 16
    questions: int = 2000
    checkpoint: int = 100           # RSS is compared with its value after this many concurrent questions
    rss_tolerance: float = 0.10
    time_limit: float = 3600.0      # seconds for the whole run, start-up included
    request_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class LoadResult:
    url: str
    clients: int
    questions: int                  # concurrent questions actually sent
    checkpoint: int
    distinct: int
    errors: int
    mismatches: int
    error_samples: tuple[str, ...]
    reference_p50_ms: float         # one client at a time
    p50_ms: float                   # under load
    p95_ms: float
    max_ms: float
    throughput_qps: float
    wall_seconds: float
    rss_mb: dict = field(default_factory=dict)    # ready / after_reference / after_checkpoint / after_run
    rss_growth: float = 0.0          # after_run / after_checkpoint - 1
    passed: bool = False

    def summary(self) -> str:
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in self.rss_mb.items())
        return (f"{'PASS' if self.passed else 'FAIL'}: {self.questions} questions from {self.clients} clients "
                f"in {self.wall_seconds:.0f} s ({self.throughput_qps:.1f}/s); errors {self.errors}, answers "
                f"differing from the single-client ones {self.mismatches}; latency p50 {self.p50_ms:.0f} ms, "
                f"p95 {self.p95_ms:.0f} ms, max {self.max_ms:.0f} ms (one client at a time: p50 "
                f"{self.reference_p50_ms:.0f} ms); RSS {rss}; growth after the first {self.checkpoint} "
                f"questions {self.rss_growth:+.1%}")


# ---------------------------------------------------------------------------------------------- pure parts
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; nan for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def comparable(answer: dict) -> dict:
    """An answer without its timing, which differs from call to call."""
    return {k: v for k, v in answer.items() if k != "elapsed_ms"}


def schedule(questions: Sequence[str], n: int) -> list[str]:
    """`n` questions, cycling through `questions` in order."""
    return [questions[i % len(questions)] for i in range(n)]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rss_mb(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", text, re.M).group(1)) / 1024


def load_questions(path: Path = QUESTIONS) -> list[str]:
    rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return list(dict.fromkeys(r["question"] for r in rows))


# ---------------------------------------------------------------------------------------------- HTTP
class AskError(Exception):
    pass


def ask(client, question: str, top_k: int = TOP_K) -> dict:
    """One question through the `/ask` endpoint: POST the call, then read its event stream to the end."""
    r = client.post("/gradio_api/call/ask", json={"data": [question, top_k]})
    if r.status_code != 200:
        raise AskError(f"POST /gradio_api/call/ask: HTTP {r.status_code}: {r.text[:200]}")
    event_id = r.json()["event_id"]
    r = client.get(f"/gradio_api/call/ask/{event_id}")
    if r.status_code != 200:
        raise AskError(f"GET /gradio_api/call/ask/{event_id}: HTTP {r.status_code}: {r.text[:200]}")
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", r.text, re.M)
    if not events or events[-1][0] != "complete":
        raise AskError(f"no answer for {question!r}: {r.text[:300]}")
    return json.loads(events[-1][1])[0]


def wait_until_ready(url: str, deadline: float, proc: subprocess.Popen | None = None) -> None:
    import httpx

    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/config", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"the server at {url} was not ready in time")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(corpus: Path, port: int, index: Path | None = None, log=None) -> subprocess.Popen:
    """`assistant serve` in a child process (its pid is the server's, for the RSS)."""
    cmd = [sys.executable, "-c", "from assistant.cli import main; main()", "serve", "--corpus", str(corpus),
           "--port", str(port)]
    if index is not None:
        cmd += ["--index", str(index)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


# ---------------------------------------------------------------------------------------------- the run
def run(url: str, pid: int | None, questions: Sequence[str], config: LoadConfig = LoadConfig(),
        deadline: float | None = None, progress=None) -> LoadResult:
    """Reference pass, then the concurrent run; see the module docstring."""
    import httpx

    if not is_loopback(url):
        raise ValueError(f"refusing to load {url}: only loopback addresses (127.0.0.0/8, ::1, localhost)")
    deadline = deadline or time.monotonic() + config.time_limit
    url = url.rstrip("/")
    memory = {}

    def note_rss(label: str) -> None:
        if pid is not None:
            memory[label] = rss_mb(pid)

    note_rss("ready")
    reference, ref_ms = {}, []
    with httpx.Client(base_url=url, timeout=config.request_timeout) as c:
        for q in questions:
            t0 = time.perf_counter()
            reference[q] = comparable(ask(c, q))
            ref_ms.append((time.perf_counter() - t0) * 1000)
    note_rss("after_reference")

    plan = schedule(questions, config.questions)
    latencies: list[float] = []
    errors: list[str] = []
    mismatches: list[str] = []
    lock = threading.Lock()
    done = 0
    checkpoint_seen = threading.Event()
    local = threading.local()

    def one(q: str) -> None:
        nonlocal done
        if time.monotonic() > deadline:
            with lock:
                errors.append(f"time limit reached before {q!r} was sent")
            return
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=url, timeout=config.request_timeout)
        t0 = time.perf_counter()
        try:
            got = comparable(ask(client, q))
        except Exception as err:          # any failure is counted, named and the run goes on
            with lock:
                errors.append(f"{type(err).__name__}: {err}"[:300])
            return
        finally:
            ms = (time.perf_counter() - t0) * 1000
        with lock:
            latencies.append(ms)
            if got != reference[q]:
                mismatches.append(q)
            done += 1
            if done == config.checkpoint:
                note_rss("after_checkpoint")
                checkpoint_seen.set()
            if progress and done % 200 == 0:
                progress(f"{done}/{len(plan)} answered")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(config.clients) as pool:
        list(pool.map(one, plan))
    wall = time.perf_counter() - t0
    note_rss("after_run")
    growth = (memory["after_run"] / memory["after_checkpoint"] - 1) if "after_checkpoint" in memory else float("nan")
    passed = (not errors and not mismatches and len(latencies) == len(plan)
              and (pid is None or abs(growth) <= config.rss_tolerance))
    return LoadResult(url, config.clients, len(plan), config.checkpoint, len(questions), len(errors), len(mismatches),
                      tuple(errors[:5] + [f"different answer: {q!r}" for q in mismatches[:5]]),
                      percentile(ref_ms, 50), percentile(latencies, 50), percentile(latencies, 95),
                      max(latencies, default=float("nan")), len(latencies) / wall if wall else 0.0, wall,
                      {k: round(v, 1) for k, v in memory.items()}, growth, passed)


def main(argv: Sequence[str] | None = None) -> int:
    d = LoadConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server (loopback only); default: start `assistant serve`")
    p.add_argument("--pid", type=int, help="the running server's pid, for its memory (with --url)")
    p.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    p.add_argument("--index", type=Path, help="index folder for the server it starts")
    p.add_argument("--clients", type=int, default=d.clients)
    p.add_argument("--questions", type=int, default=d.questions)
    p.add_argument("--checkpoint", type=int, default=d.checkpoint)
    p.add_argument("--time-limit", type=float, default=d.time_limit)
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    args = p.parse_args(argv)
    config = LoadConfig(clients=args.clients, questions=args.questions, checkpoint=args.checkpoint,
                        time_limit=args.time_limit)
    deadline = time.monotonic() + config.time_limit
    say = lambda msg: print(msg, file=sys.stderr, flush=True)     # noqa: E731
    proc = None
    try:
        if args.url:
            url, pid = args.url, args.pid
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            say(f"starting assistant serve --corpus {args.corpus} --port {port} ...")
            proc = start_server(args.corpus, port, args.index)
            pid = proc.pid
        if not is_loopback(url):
            p.error(f"--url must be a loopback address, got {url}")
        wait_until_ready(url, deadline, proc)
        say(f"server ready at {url}; {config.questions} questions from {config.clients} clients ...")
        result = run(url, pid, load_questions(), config, deadline, progress=say)
    finally:
        if proc is not None:
            stop_server(proc)
    print(result.summary())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
