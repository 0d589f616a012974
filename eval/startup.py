"""Cold start of `make run`: seconds from the command to the first answer, over HTTP and in a real browser.

    python -m eval.startup                 # or: make bench-startup (about 2 min); writes eval/results/startup.md
    python -m eval.startup --repeats 5 --out /tmp/s

The target (issue 6): the first answer in the browser within 20 s of `make run`, on a machine that has already
built the index once. So the index is brought up to date first (`assistant build`, untimed), then each run
starts `make -s run` on a free port and times, from the moment the command starts:
  - ready: the server prints its URL;
  - http: the first answer from the `/ask` endpoint (gradio_client, imported beforehand), polled from t=0;
  - browser: Debian's Chromium, already open as a user's would be, opens the page as soon as the server answers
    HTTP, types the question into the chat box, presses Enter and waits for the reply's card with the expected
    title.
Both clients start polling at t=0, as a user who ran the command and switched to the browser at once.
`eval.bench` calls the same functions for its cold-start section.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.request import urlopen

from eval.scale import summary

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "eval" / "results"
QUESTION = "什么是“一岗双责”？"
TITLE = "国企党建与生产经营工作创新融合的探索实践"
TARGET_S = 20.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


@dataclass
class Run:
    """One `make run` in its own process group; `marks` are seconds since the command started."""
    proc: subprocess.Popen
    url: str
    t0: float
    lines: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str) -> float:
        self.marks[name] = time.perf_counter() - self.t0
        return self.marks[name]

    def wait_until_serving(self, timeout: float) -> None:
        """Poll with a cheap HTTP request: on two cores, Chromium rendering an error page ten times a second
        slowed the starting server by 3 s (measured), which no user does."""
        while True:
            if self.proc.poll() is not None or time.perf_counter() - self.t0 > timeout:
                raise RuntimeError("`make run` ended or hung before serving:\n" + "\n".join(self.lines[-15:]))
            try:
                urlopen(self.url, timeout=5).close()
                return
            except OSError:
                time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def make_run(index_dir: Path | None = None):
    """Start `make -s run` (the README's first command) on a free port; stopped, with its children, on exit."""
    port = free_port()
    env = dict(os.environ)
    if index_dir is not None:
        env["ASSISTANT_INDEX"] = str(index_dir)
    t0 = time.perf_counter()
    proc = subprocess.Popen(["make", "-s", "run", f"PORT={port}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    run = Run(proc, f"http://127.0.0.1:{port}/", t0)

    def read():
        for line in run.proc.stdout:
            run.lines.append(line.rstrip())
            if "is ready" in line and "ready_s" not in run.marks:
                run.mark("ready_s")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield run
    finally:
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.proc.wait(30)
        reader.join(5)
        run.marks.setdefault("ready_s", float("nan"))


def first_http_answer(index_dir: Path | None = None, question: str = QUESTION, timeout: float = 300) -> dict:
    """Seconds until the first answer to `question` comes back from `/ask` (what a gradio_client user sees)."""
    from gradio_client import Client

    with make_run(index_dir) as run:
        run.wait_until_serving(timeout)   # as soon as the server answers at all, not once it says it is ready
        answer = Client(run.url, verbose=False).predict(question, api_name="/ask")
        run.mark("first_answer_s")
        if not answer.get("passages"):
            raise RuntimeError(f"the first answer of `make run` had no passages: {str(answer)[:300]}")
    return run.marks


def first_browser_answer(browser, index_dir: Path | None = None, question: str = QUESTION, title: str = TITLE,
                         timeout: float = 300) -> dict:
    """Seconds until the reply to `question`, typed into the chat page, shows a card titled `title`."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = ctx.new_page()
        with make_run(index_dir) as run:
            run.wait_until_serving(timeout)
            page.goto(run.url, timeout=60_000)
            page.wait_for_selector("textarea", timeout=60_000)
            run.mark("page_s")
            page.locator("textarea").first.fill(question)
            page.keyboard.press("Enter")
            page.locator(".pa-answer .pa-title", has_text=title).first.wait_for(timeout=timeout * 1000)
            run.mark("first_answer_s")
    finally:
        ctx.close()
    return run.marks


@contextmanager
def chromium():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def measure(repeats: int, index_dir: Path | None = None, question: str = QUESTION) -> dict:
    """`repeats` runs of each kind, alternating HTTP and browser so that a load spike hits both alike."""
    http, browser_runs = [], []
    with chromium() as browser:
        for _ in range(repeats):
            http.append(first_http_answer(index_dir, question))
            browser_runs.append(first_browser_answer(browser, index_dir, question))
    return {kind: {key: summary([r[key] for r in runs]) for key in runs[0]}
            for kind, runs in (("http", http), ("browser", browser_runs))}


def table(d: dict) -> list[str]:
    """Markdown rows of a `measure` result (shared with eval.bench's report)."""
    def row(label, s, target=""):
        met = ("met" if s["median"] <= TARGET_S else "**missed**") if target else ""
        return f"| {label} | {s['median']:.1f} | {', '.join(f'{x:.1f}' for x in s['runs'])} | {target} | {met} |"

    h, b = d["http"], d["browser"]
    return ["| from `make run` | seconds (median) | runs | target | |", "|---|---:|---|---:|---|",
            row("the server prints its URL", h["ready_s"]),
            row("first answer over HTTP (`/ask`, gradio_client)", h["first_answer_s"]),
            row("the chat page has loaded in Chromium", b["page_s"]),
            row("**first answer in the browser** (question typed, reply card shown)", b["first_answer_s"],
                f"<= {TARGET_S:.0f}"), ""]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m eval.startup", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs of each kind [default: 3]")
    p.add_argument("--out", type=Path, default=OUT, help="output folder [default: eval/results]")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats must be at least 1, got {args.repeats}")
    assistant = Path(sys.executable).parent / "assistant"
    # "On a machine that has already built the index once": build (or find up to date) the default index.
    subprocess.run([str(assistant), "build", "--corpus", str(ROOT / "seeds")], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    started = datetime.now(timezone.utc)
    load = os.getloadavg()
    data = {"started_utc": started.isoformat(timespec="seconds"), "loadavg_start": load,
            "question": QUESTION, **measure(args.repeats)}
    data["loadavg_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "startup.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    md = ["# Cold start of `make run`", "",
          f"`python -m eval.startup --repeats {args.repeats}` at {data['started_utc']}, load average "
          f"{load[0]:.1f} at the start and {data['loadavg_end'][0]:.1f} at the end; index already built, setup "
          f"done. Question: {QUESTION}", "", *table(data)]
    (args.out / "startup.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
