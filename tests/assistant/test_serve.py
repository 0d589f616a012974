"""`assistant serve` as a user runs it: a real process with the bundled model, read from its terminal output."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.ui import WARM_UP_JOIN_S

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ASSISTANT = Path(sys.executable).parent / "assistant"
# The start-up steps, in the order a user sees them before the URL.
STEPS = ["loading the embedding model multilingual-e5-small (bundled) ...", "model loaded in",
         "checking the index of", "index built: 1 files", "starting the chat interface ...", "is ready: http://"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses in LISTEN state on `port`, from /proc/net/tcp{,6} (hex, little-endian)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]) if len(addr) == 8 else addr)
    return found


class Served:
    """`assistant serve` in its own process group, its merged output collected line by line."""

    def __init__(self, args: list[str], env: dict):
        self.lines: list[str] = []
        # A suite started in the background by a shell without job control inherits SIGINT ignored, and so
        # would the server: it gets Ctrl-C's default back, as in a terminal.
        self.proc = subprocess.Popen([str(ASSISTANT), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 240) -> None:
        end = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < end, f"no {text!r} within {timeout} s:\n" + "\n".join(self.lines)
            time.sleep(0.1)

    def stop(self, sig=signal.SIGINT) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            # a stop may wait WARM_UP_JOIN_S for the model's warm-up (a trace on the torch path, slow under load)
            code = self.proc.wait(WARM_UP_JOIN_S + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.reader.join(10)
            pytest.fail(f"still running {WARM_UP_JOIN_S + 30} s after {sig!r}:\n" + "\n".join(self.lines))
        self.reader.join(10)
        return code


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(ROOT / "seeds" / "001_96c08fcecc05a0af.txt", folder)
    return folder


def test_serve_shows_its_steps_listens_on_loopback_answers_and_stops_cleanly(tmp_path, corpus, real_embedder):
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}
    served = Served(["serve", "--corpus", str(corpus), "--port", str(port)], env)
    try:
        served.wait_for("is ready: http://")
        text = "\n".join(served.lines)
        positions = [text.find(step) for step in STEPS]
        assert -1 not in positions and positions == sorted(positions), text
        assert f"http://127.0.0.1:{port}/" in text
        assert listening_addresses(port) == {"127.0.0.1"}        # loopback only, never 0.0.0.0
        answer = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("一岗双责", 3, api_name="/ask")
        assert answer["passages"] and all(p["citation"]["source"] == corpus.joinpath(
            "001_96c08fcecc05a0af.txt").name for p in answer["passages"])
    finally:
        code = served.stop(signal.SIGINT)     # Ctrl-C
    out = "\n".join(served.lines)
    assert code in (0, 130, -signal.SIGINT) and "Traceback" not in out, out


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path, corpus, real_embedder):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "ASSISTANT_INDEX": str(tmp_path / "index")}
        served = Served(["serve", "--corpus", str(corpus), "--port", str(port)], env)
        code = served.proc.wait(240)
        served.reader.join(10)
    out = "\n".join(served.lines)
    assert code == 2 and "Traceback" not in out, out
    error = [line for line in served.lines if line.startswith("error: ")]
    assert len(error) == 1 and re.search(rf"cannot listen on 127\.0\.0\.1:{port} .*--port {port + 1}", error[0])
