"""Hostile input through every door: the Python API, the `assistant` CLI and the HTTP `/ask` endpoint.

One table drives all three. Each row gets a clear message (or an ordinary answer) and never a traceback,
a hang, a 5xx, a file read outside the corpus, or a change to the index folder. Reads are watched with
a Python audit hook (`sys.addaudithook`): every `open()` made in this process, by the API, the CLI or the
in-process Gradio server, is recorded while a case runs. A file `secret.txt` lies beside the corpus, where
a `../` in a filter would reach.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import index.embed
from assistant import Assistant, ui
from assistant.cli import main
from assistant.errors import AssistantError

ROOT = Path(__file__).resolve().parents[1]

EMPTY = r"问题为空.*\(the question is empty\)"
BAD_CHAR = r"控制字符或无效字符.*\(the question contains a control or invalid character"
TOO_LONG = r"问题过长：100000 个字符，上限 2000.*\(question too long: 100000 characters, limit 2000\)"
UNKNOWN_SOURCE = r"unknown source '.*'; the index has: 000_"
UNKNOWN_ARTICLE = r"unknown article '.*'; the index has: 000_"


def top_k_error(value) -> str:
    return rf"top_k must be an integer between 1 and 50, got {re.escape(repr(value))}"


ANSWER = None    # the row is ordinary (if odd) text: it must be answered
# id, question, top_k, filters, the message that must come back (ANSWER: an answer must)
CASES = [
    ("empty", "", 5, {}, EMPTY),
    ("whitespace", " \t\r\n\u3000\u00a0 ", 5, {}, EMPTY),
    ("100k-chars", "党建与生产经营融合" * 11_111 + "党", 5, {}, TOO_LONG),
    ("nul", "党建\x00融合", 5, {}, BAD_CHAR),
    ("controls", "\x1b[31m党建\x07\x08\x7f", 5, {}, BAD_CHAR),
    ("c1-control", "党建\x85\x9b融合", 5, {}, BAD_CHAR),
    ("lone-high-surrogate", "党建\ud83d", 5, {}, BAD_CHAR),
    ("lone-low-surrogate", "\udcff党建", 5, {}, BAD_CHAR),
    ("emoji", "党建🚩🇨🇳👨‍👩‍👧融合？", 5, {}, ANSWER),
    ("zero-width", "\u200b\u200d\ufeff", 5, {}, ANSWER),
    ("right-to-left", "\u202eمرحبا 党建\u202c עברית", 5, {}, ANSWER),
    ("sql", "党建'; DROP TABLE chunks; --", 5, {}, ANSWER),
    ("html", '<img src=x onerror="alert(1)"><b>党建</b>', 5, {}, ANSWER),
    ("script", "<script>fetch('/gradio_api/file=/etc/passwd')</script>", 5, {}, ANSWER),
    ("path-as-question", "../../etc/passwd", 5, {}, ANSWER),
    ("format-string", "{0.__class__} %s%n %(x)s 党建", 5, {}, ANSWER),
    ("top_k=-1", "党建", -1, {}, top_k_error(-1)),
    ("top_k=0", "党建", 0, {}, top_k_error(0)),
    ("top_k=10^9", "党建", 10**9, {}, top_k_error(10**9)),
    ("top_k=abc", "党建", "abc", {}, top_k_error("abc")),
    ("source=../../etc/passwd", "党建", 5, {"sources": ["../../etc/passwd"]}, UNKNOWN_SOURCE),
    ("source=/etc/passwd", "党建", 5, {"sources": ["/etc/passwd"]}, UNKNOWN_SOURCE),
    ("source=../secret.txt", "党建", 5, {"sources": ["../secret.txt"]}, UNKNOWN_SOURCE),
    ("source=unknown", "党建", 5, {"sources": ["no-such-file.txt"]}, UNKNOWN_SOURCE),
    ("article=../../etc/passwd#0", "党建", 5, {"articles": ["../../etc/passwd#0"]}, UNKNOWN_ARTICLE),
]
IDS = [c[0] for c in CASES]
# What click itself says for a non-integer --top-k (before our code runs).
CLI_MESSAGES = {"top_k=abc": r"Invalid value for '--top-k' / '-k': 'abc' is not a valid integer"}


# ---------------------------------------------------------------------------------------------- watching
class Opens:
    """Every path `open()`ed in this process while recording (an audit hook cannot be removed: it idles)."""

    def __init__(self):
        self.paths: list[str] = []
        self.on = False
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if self.on and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            self.paths.append(os.fsdecode(args[0]))

    def __enter__(self):
        self.paths.clear()
        self.on = True
        return self

    def __exit__(self, *exc):
        self.on = False


_OPENS: list[Opens] = []


def opens() -> Opens:
    if not _OPENS:
        _OPENS.append(Opens())
    return _OPENS[0]


def folder_state(path: Path) -> dict:
    """Every file and folder under `path` with its mtime, and every file's size and content hash."""
    state = {}
    for p in sorted(path.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        state[str(p.relative_to(path))] = (st.st_mtime_ns, st.st_size if p.is_file() else 0, digest)
    state["."] = (path.stat().st_mtime_ns, 0, "dir")
    return state


def outside_reads(paths: list[str], world) -> list[str]:
    """Paths read that a traversal would reach: the secret beside the corpus, /etc/passwd, the index."""
    bad = []
    for p in paths:
        real = os.path.realpath(p)
        if real in (str(world.secret), "/etc/passwd") or real.startswith(str(world.tmp) + os.sep) and not (
                real.startswith(str(world.corpus) + os.sep) or real.startswith(str(world.index_dir) + os.sep)):
            bad.append(p)
    return bad


# ---------------------------------------------------------------------------------------------- world
class World:
    """One corpus, one index, one Assistant, one in-process server: shared by the module's tests."""
    tmp: Path
    corpus: Path
    index_dir: Path
    secret: Path
    assistant: Assistant
    url: str
    demo: object


@pytest.fixture(scope="module")
def _world(tmp_path_factory):
    world = World()
    yield world
    if getattr(world, "demo", None) is not None:
        world.demo.close(verbose=False)


@pytest.fixture
def world(_world, fake_embedder, tmp_path_factory):
    """Built on first use with the first test's fake embedder (conftest's fixture is function-scoped)."""
    if not hasattr(_world, "assistant"):
        tmp = tmp_path_factory.mktemp("hostile")
        corpus = tmp / "corpus"
        shutil.copytree(ROOT / "seeds", corpus)
        secret = tmp / "secret.txt"
        secret.write_text("TOP-SECRET 不在语料中的文件\n", encoding="utf-8")
        _world.tmp, _world.corpus, _world.secret = tmp.resolve(), corpus.resolve(), secret.resolve()
        _world.index_dir = (tmp / "idx").resolve()
        _world.assistant = Assistant.open(corpus, index=_world.index_dir, embedder=fake_embedder, progress=False)
        _world.embedder = fake_embedder
    return _world


@pytest.fixture
def server(world):
    if not hasattr(world, "url"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        world.demo = ui.start(world.assistant, host="127.0.0.1", port=port)
        world.url = world.demo.local_url.rstrip("/")
        call_ask(world.url, "预热", 3)      # the first request pays Gradio's start-up costs
    return world


def assert_clean(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[-2000:]


# ---------------------------------------------------------------------------------------------- API
@pytest.mark.parametrize("case_id, question, top_k, filters, want", CASES, ids=IDS)
def test_api(world, case_id, question, top_k, filters, want):
    before = folder_state(world.index_dir)
    with opens() as seen:
        t0 = time.perf_counter()
        try:
            answer = world.assistant.ask(question, top_k=top_k, **filters)
            outcome = None
        except AssistantError as err:
            outcome = str(err)
        elapsed = time.perf_counter() - t0
    if want is ANSWER:
        assert outcome is None, outcome
        assert 1 <= len(answer.passages) <= top_k and answer.message
        json.dumps(answer.to_dict(), ensure_ascii=False)
    else:
        assert outcome is not None and re.search(want, outcome), outcome
        assert "\n" not in outcome          # one line, for the CLI and the UI alike
    assert elapsed < 1.0, f"{case_id} took {elapsed:.2f} s"
    assert seen.paths == []                 # the index is in memory: nothing is read to answer
    assert folder_state(world.index_dir) == before


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def cli(world, monkeypatch):
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: world.embedder)
    monkeypatch.setattr(index.embed, "model_name", lambda model=None: world.embedder.name, raising=False)

    def run(question, top_k, filters):
        args = ["ask", question, "--top-k", str(top_k), "--json", "--corpus", str(world.corpus),
                "--index", str(world.index_dir)]
        for name in filters.get("sources", ()):
            args += ["--source", name]
        for name in filters.get("articles", ()):
            args += ["--article", name]
        t0 = time.perf_counter()
        result = CliRunner().invoke(main, args)
        return result, time.perf_counter() - t0
    return run


@pytest.mark.parametrize("case_id, question, top_k, filters, want", CASES, ids=IDS)
def test_cli(world, cli, case_id, question, top_k, filters, want):
    if not hasattr(world, "cli_baseline"):   # opening (corpus scan, index check) costs the same every run
        world.cli_baseline = sorted(cli("党建", 5, {})[1] for _ in range(3))[1]
    baseline = world.cli_baseline
    before = folder_state(world.index_dir)
    with opens() as seen:
        result, elapsed = cli(question, top_k, filters)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert_clean(result.output + result.stderr)
    if want is ANSWER:
        assert result.exit_code == 0, result.stderr
        got = json.loads(result.stdout)
        assert 1 <= len(got["passages"]) <= top_k
    else:
        assert result.exit_code == 2
        want = CLI_MESSAGES.get(case_id, want)
        if case_id in CLI_MESSAGES:          # click's own usage error: usage line, hint, error line
            assert re.search(want, result.stderr), result.stderr
        else:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(want, lines[0]), lines
        assert result.stdout == ""
    assert elapsed < baseline + 1.0, f"{case_id}: {elapsed:.2f} s against {baseline:.2f} s for a plain question"
    assert outside_reads(seen.paths, world) == []
    assert folder_state(world.index_dir) == before


_CLI_DRIVER = textwrap.dedent("""
    # `assistant` with the tests' fake embedder, so the real argv decoding and exit path run in a process.
    import importlib.util, sys
    import index.embed
    spec = importlib.util.spec_from_file_location("_conftest", sys.argv.pop(1))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    fake = conftest.FakeEmbedder()
    index.embed.load_embedder = lambda model=None, cache_dir=None: fake
    index.embed.model_name = lambda model=None: fake.name      # (`build` needs it; `ask` does not)
    from assistant.cli import main
    main(prog_name="assistant")
""")


@pytest.mark.parametrize("raw, want", [
    (b"\xff\xfe\xbd", BAD_CHAR),             # not UTF-8: Python turns argv bytes into lone surrogates
    (b"a" * 100_000, TOO_LONG),              # one argv string may hold 128 KiB
    (b"\xe5\x85\x9a\xe5\xbb\xba \x1b]0;pwned\x07", BAD_CHAR),   # a terminal title escape
])
def test_cli_process_with_raw_argv_bytes(world, tmp_path, raw, want):
    script = tmp_path / "driver.py"
    script.write_text(_CLI_DRIVER, encoding="utf-8")
    cmd = [sys.executable, str(script), str(ROOT / "tests" / "conftest.py"), "ask", raw, "--corpus",
           str(world.corpus), "--index", str(world.index_dir)]
    before = folder_state(world.index_dir)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(want, lines[0]), lines
    assert proc.stdout == b""
    assert b"\x1b" not in proc.stderr        # the escape is shown as '\x1b', not sent to the terminal
    assert folder_state(world.index_dir) == before


# ---------------------------------------------------------------------------------------------- HTTP /ask
def call_ask(url: str, question, top_k) -> tuple[str, object, list[int]]:
    """POST /gradio_api/call/ask, then read its event stream: ("complete", answer) or ("error", message).

    The body is built with json.dumps (ASCII escapes), so lone surrogates travel as `\\udXXX` escapes the
    way any JSON client would send them.
    """
    with httpx.Client(base_url=url, timeout=30) as c:
        body = json.dumps({"data": [question, top_k]}).encode()
        r = c.post("/gradio_api/call/ask", content=body, headers={"content-type": "application/json"})
        statuses = [r.status_code]
        if r.status_code != 200:
            return "http", r.text, statuses
        r2 = c.get(f"/gradio_api/call/ask/{r.json()['event_id']}")
        statuses.append(r2.status_code)
    event = re.search(r"^event: (\w+)$", r2.text, re.M).group(1)
    data = json.loads(re.search(r"^data: (.*)$", r2.text, re.M).group(1))
    if event == "complete":
        return event, data[0], statuses
    return event, (data or {}).get("error") if isinstance(data, dict) else data, statuses


@pytest.mark.parametrize("case_id, question, top_k, filters, want", [c for c in CASES if not c[3]],
                         ids=[c[0] for c in CASES if not c[3]])
def test_http_ask(server, capfd, case_id, question, top_k, filters, want):
    before = folder_state(server.index_dir)
    with opens() as seen:
        t0 = time.perf_counter()
        event, payload, statuses = call_ask(server.url, question, top_k)
        elapsed = time.perf_counter() - t0
    assert all(s < 500 for s in statuses) and statuses[0] == 200, (statuses, payload)
    if want is ANSWER:
        assert event == "complete", payload
        assert 1 <= len(payload["passages"]) <= top_k and payload["question"]
    else:
        assert event == "error" and isinstance(payload, str) and re.search(want, payload), payload
    assert elapsed < 1.0 if case_id == "100k-chars" else elapsed < 10, f"{case_id} took {elapsed:.2f} s"
    assert outside_reads(seen.paths, server) == []
    assert folder_state(server.index_dir) == before
    out = capfd.readouterr()
    assert_clean(out.out + out.err)       # nothing alarming in the server's log either


@pytest.mark.parametrize("question", [None, 42, ["党建"], {"q": "党建"}])
def test_http_ask_question_of_the_wrong_type(server, question):
    event, payload, statuses = call_ask(server.url, question, 5)
    assert statuses == [200, 200] and event == "error"
    assert re.search(r"the question must be text, got \w+", payload), payload


def test_http_ask_refuses_quickly_many_times_and_still_answers(server):
    """The server survives a burst of hostile calls: afterwards an ordinary question gets its usual answer."""
    want = server.assistant.ask("一岗双责", top_k=3).to_dict()
    for case_id, question, top_k, filters, _ in CASES:
        if not filters:
            call_ask(server.url, question, top_k)
    event, got, _ = call_ask(server.url, "一岗双责", 3)
    assert event == "complete"
    assert [p["chunk_id"] for p in got["passages"]] == [p["chunk_id"] for p in want["passages"]]


# ---------------------------------------------------------------------------------------------- HTTP chat
def call_chat(url: str, question, top_k, scope) -> dict:
    """The chat window's own event, the way the browser calls it (queue/join + the SSE stream).

    It is hidden from API clients but reachable over HTTP, so it gets the hostile table too; its last
    message is returned: {"msg": "process_completed", "success": ..., "output": ...}.
    """
    with httpx.Client(base_url=url, timeout=30) as c:
        deps = c.get("/config").json()["dependencies"]
        fn_index = next((i for i, d in enumerate(deps) if d.get("api_name") == "respond"), None)
        if fn_index is None:
            pytest.skip("the chat window has no `respond` event any more (assistant/ui.py changed)")
        session = uuid.uuid4().hex[:12]
        # inputs of `respond`: question, history, the session's answers (a gr.State: null over HTTP), top_k, scope, refs
        body = {"data": [question, [], None, top_k, scope, False], "fn_index": fn_index, "session_hash": session,
                "event_data": None, "trigger_id": None}
        r = c.post("/gradio_api/queue/join", content=json.dumps(body).encode(),
                   headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        last = {"msg": "stream ended without a result"}
        try:
            with c.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        last = json.loads(line[5:])
                        if last.get("msg") in ("process_completed", "unexpected_error"):
                            break
        except httpx.HTTPError as err:      # the server cut the stream
            last = {"msg": f"stream cut: {type(err).__name__}: {err}"}
    return last


def _chat_reply(last: dict) -> str:
    """The assistant's HTML in a successful chat result."""
    history = last["output"]["data"][0]
    return history[-1]["content"][0]["text"] if isinstance(history[-1]["content"], list) else history[-1]["content"]


@pytest.mark.parametrize("question, top_k, scope, want", [
    ("", 5, [], EMPTY),
    ("党" * 100_000, 5, [], TOO_LONG),
    ("党建\x00", 5, [], BAD_CHAR),
    ("党建\ud83d", 5, [], BAD_CHAR),
    ('<img src=x onerror="alert(1)">党建', 5, [], ANSWER),
    ("党建", -1, [], r"Value -1 is less than minimum value 1"),
    ("党建", 10**9, [], r"Value 1000000000 is greater than maximum value 10"),
    ("党建", 5, ["source:../../etc/passwd"], r"Value: 'source:\.\./\.\./etc/passwd' .*is not in the list of choices"),
    ("党建", 5, ["article:../secret.txt#0"], r"Value: 'article:\.\./secret\.txt#0' .*is not in the list of choices"),
], ids=["empty", "100k", "nul", "lone-surrogate", "html", "top_k=-1", "top_k=10^9", "scope=passwd", "scope=secret"])
def test_http_chat_event(server, question, top_k, scope, want):
    before = folder_state(server.index_dir)
    with opens() as seen:
        t0 = time.perf_counter()
        last = call_chat(server.url, question, top_k, scope)
        elapsed = time.perf_counter() - t0
    assert last.get("msg") == "process_completed", last
    if last.get("success"):
        markup = _chat_reply(last)
        if want is ANSWER:
            assert 'class="pa-answer"' in markup and "<img" not in _chat_question(last)
        else:
            assert 'class="pa-error"' in markup and re.search(want, html.unescape(markup)), markup[:500]
    else:
        message = (last.get("output") or {}).get("error")
        assert want is not ANSWER and isinstance(message, str) and re.search(want, message), last
    assert elapsed < 10, f"took {elapsed:.2f} s"
    assert outside_reads(seen.paths, server) == []
    assert folder_state(server.index_dir) == before


def _chat_question(last: dict) -> str:
    content = last["output"]["data"][0][0]["content"]
    return content[0]["text"] if isinstance(content, list) else content

