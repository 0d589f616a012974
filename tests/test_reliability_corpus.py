"""Corpus faults at build time: the build finishes with what can be read, names what it skipped, and the
previous index keeps answering until the new one is complete.

Tests run as root here and in CI, where `chmod 000` blocks nothing. Two honest ways around that are used:
a FIFO, a device and `/proc/self/mem` (which even root cannot read from offset 0) stand in for files that
cannot be read; and one test drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH with `setpriv`, so that the
kernel enforces `chmod 000` on root too (skipped, saying so, where setpriv cannot do that).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant import Assistant
from assistant.cli import main
from index import corpus as corpus_mod
from index import store
from index.build import ensure_index

ROOT = Path(__file__).resolve().parents[1]
GBK_TEXT = "关于国有企业党建工作的GBK编码测试文章。\n\n一、背景\n\n本段使用GBK编码保存，检验读取器能否正确解码中文：数字化转型中的党建引领作用。\n"
GBK_MARK = "数字化转型中的党建引领作用"
INNER_TEXT = "# 目录名以txt结尾\n\n这个文件位于一个名为 folder.txt 的目录中，讲述基层党支部标准化规范化建设。\n"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink(target: str):
    return lambda path: path.symlink_to(target)


# name, how to make it, the skip reason that must be reported (None: the file must be indexed)
FAULTS = [
    ("gbk.txt", lambda p: p.write_bytes(GBK_TEXT.encode("gbk")), None),
    ("binary.txt", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8),
     "binary file"),
    ("empty.txt", lambda p: p.write_bytes(b""), "empty file"),
    ("blank.md", lambda p: p.write_bytes(b" \n\t\r\n" + "\u3000".encode("utf-8")), "empty file"),
    ("fifo.txt", _fifo, "not a regular file"),                       # reading would block forever
    ("zero.txt", _symlink("/dev/zero"), "not a regular file"),       # reading would never end
    ("mem.txt", _symlink("/proc/self/mem"), "cannot read: Input/output error"),   # unreadable, even by root
    ("loop-a.txt", _symlink("loop-b.txt"), "broken symlink"),        # a symlink loop (ELOOP)
    ("loop-b.txt", _symlink("loop-a.txt"), "broken symlink"),
]


def _make_faults(root: Path) -> dict[str, str | None]:
    for name, make, _ in FAULTS:
        make(root / name)
    (root / "folder.txt").mkdir()                                    # a directory named *.txt is a folder
    (root / "folder.txt" / "inner.md").write_text(INNER_TEXT, encoding="utf-8")
    (root / "folder.txt" / "again").symlink_to(root, target_is_directory=True)   # a folder loop
    return {name: reason for name, _, reason in FAULTS}


@pytest.fixture
def corpus(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", dst)
    return dst


def _within(seconds: float, fn, *args, fifo: Path | None = None, **kw):
    """fn(*args) or a test failure after `seconds`; a read stuck on `fifo` is released so nothing hangs."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn, *args, **kw)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish in {seconds} s")
    finally:
        pool.shutdown(wait=False)


def test_build_finishes_with_what_can_be_read_and_names_the_rest(corpus, tmp_path, fake_embedder):
    expected = _make_faults(corpus)
    idx = tmp_path / "idx"
    report = _within(120, ensure_index, corpus, idx, lambda: fake_embedder, "fake", progress=False,
                     fifo=corpus / "fifo.txt")
    want_skipped = {name: reason for name, reason in expected.items() if reason}
    assert {s.rel: s.reason for s in report.skipped} == want_skipped
    summary = report.summary()
    for name, reason in want_skipped.items():
        assert f"{name}: {reason}" in summary
    assert f"skipped {len(want_skipped)} files: " in summary
    stored = store.load(idx)
    sources = {c.source for c in stored.chunks}
    assert {"gbk.txt", "folder.txt/inner.md"} <= sources
    assert not sources & set(want_skipped)
    assert any(GBK_MARK in c.text for c in stored.chunks if c.source == "gbk.txt")   # decoded, not mojibake
    assert stored.manifest["corpus"]["skipped"] == want_skipped
    assert report.files == len(list((ROOT / "seeds").iterdir())) + 2
    # nothing changed on disk: the next run is a no-op and does not try the bad files' contents again
    again = _within(60, ensure_index, corpus, idx, lambda: None, "fake", progress=False, fifo=corpus / "fifo.txt")
    assert not again.built


def test_chunks_command_names_skipped_files(corpus):
    expected = _make_faults(corpus)
    result = _within(120, CliRunner().invoke, main, ["chunks", "--corpus", str(corpus)], fifo=corpus / "fifo.txt")
    assert result.exit_code == 0, result.output
    for name, reason in expected.items():
        if reason:
            assert f"skipped {name}: {reason}" in result.stderr
    assert "folder.txt/inner.md:" in result.stdout and "gbk.txt:" in result.stdout


def test_build_command_names_skipped_files(corpus, tmp_path, fake_embedder, monkeypatch):
    import index.embed
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: fake_embedder)
    monkeypatch.setattr(index.embed, "model_name", lambda model=None: fake_embedder.name, raising=False)
    expected = _make_faults(corpus)
    args = ["build", "--corpus", str(corpus), "--index", str(tmp_path / "idx")]
    result = _within(120, CliRunner().invoke, main, args, fifo=corpus / "fifo.txt")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("index built:")
    for name, reason in expected.items():
        if reason:
            assert f"{name}: {reason}" in line


class GatedEmbedder:
    """Wraps the fake embedder; document embedding waits until the test opens the gate."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint
        self.building = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts, show_progress=False):
        self.building.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return self.inner.encode_documents(texts)


def test_previous_index_answers_until_the_new_one_is_complete(corpus, tmp_path, fake_embedder):
    gated = GatedEmbedder(fake_embedder)
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=gated, progress=False)
    questions = ["党建", "一岗双责", GBK_MARK, "基层党支部标准化规范化建设"]
    before = {q: [p.chunk_id for p in a.ask(q).passages] for q in questions}
    old_sources, old_gen = a.sources(), store.current_generation(a.index_dir)
    expected = _make_faults(corpus)

    gated.gate.clear()
    box = {}
    builder = threading.Thread(target=lambda: box.setdefault("report", a.rebuild()))
    builder.start()
    try:
        assert gated.building.wait(60), "the rebuild never started embedding"
        for _ in range(3):                       # while the new generation is half written ...
            assert {q: [p.chunk_id for p in a.ask(q).passages] for q in questions} == before
            assert a.sources() == old_sources
            assert store.current_generation(a.index_dir) == old_gen
            assert store.load(a.index_dir).path == old_gen      # ... a new reader gets the old one whole
    finally:
        gated.gate.set()
        builder.join(120)
    report = box["report"]
    assert report.built and {s.rel for s in report.skipped} == {n for n, r in expected.items() if r}
    assert store.current_generation(a.index_dir) != old_gen
    assert {"gbk.txt", "folder.txt/inner.md"} <= set(a.sources())
    assert any(p.citation.source == "gbk.txt" for p in a.ask(GBK_MARK, sources=["gbk.txt"]).passages)


def test_file_deleted_between_listing_and_reading(corpus, tmp_path, fake_embedder, monkeypatch):
    victim = corpus / "002_aafc08028407862a.txt"
    real = corpus_mod._read_bytes

    def racing_read(path: Path) -> bytes:
        if path == victim:
            path.unlink()            # another program removes the file just after the folder was listed
        return real(path)

    monkeypatch.setattr(corpus_mod, "_read_bytes", racing_read)
    report = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False)
    assert report.built and [(s.rel, s.reason) for s in report.skipped] == [
        (victim.name, "file not found (a broken symlink?)")]
    assert victim.name in report.summary()
    assert victim.name not in {c.source for c in store.load(tmp_path / "idx").chunks}


def test_file_changed_or_deleted_during_the_build(corpus, tmp_path, fake_embedder):
    """The generation records exactly the bytes it indexed, so the next build sees what changed meanwhile."""
    changed, deleted = corpus / "001_96c08fcecc05a0af.txt", corpus / "003_8a33f948501c2c2d.txt"
    idx = tmp_path / "idx"
    ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    (corpus / "new.md").write_text("# 新增\n\n构建开始前新增的一篇短文，讨论党建品牌。\n", encoding="utf-8")
    read_bytes = changed.read_bytes()
    gated = GatedEmbedder(fake_embedder)
    gated.gate.clear()
    builder = threading.Thread(target=ensure_index, args=(corpus, idx, lambda: gated, "fake"),
                               kwargs={"progress": False})
    builder.start()
    try:
        assert gated.building.wait(60)
        changed.write_text(changed.read_text(encoding="utf-8") + "\n\n构建期间追加的一段：红色引擎工程。\n",
                           encoding="utf-8")
        deleted.unlink()
    finally:
        gated.gate.set()
        builder.join(120)
    first = store.load(idx)
    assert first.manifest["corpus"]["files"][changed.name] == f"sha256:{hashlib.sha256(read_bytes).hexdigest()}"
    assert deleted.name in first.manifest["corpus"]["files"]
    assert not any("红色引擎工程" in c.text for c in first.chunks)
    report = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert report.built
    assert f"changed: {changed.name}" in report.reasons and f"removed: {deleted.name}" in report.reasons
    second = store.load(idx)
    assert any("红色引擎工程" in c.text for c in second.chunks)
    assert deleted.name not in {c.source for c in second.chunks}


_AS_UNPRIVILEGED_ROOT = textwrap.dedent("""
    import importlib.util, json, logging, sys
    from pathlib import Path
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    spec = importlib.util.spec_from_file_location("_conftest", sys.argv[1])
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    from index.build import ensure_index
    report = ensure_index(Path(sys.argv[2]), Path(sys.argv[3]), conftest.FakeEmbedder, "fake", progress=False)
    print(json.dumps({"skipped": {s.rel: s.reason for s in report.skipped}, "files": report.files,
                      "summary": report.summary()}, ensure_ascii=False))
""")
_DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _setpriv_enforces_permissions(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        return subprocess.run([*_DROP, "cat", str(probe)], capture_output=True).returncode != 0
    except OSError:
        return False
    finally:
        probe.chmod(0o600)


def test_chmod_000_file_and_folder_are_skipped_by_a_root_without_dac_override(corpus, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("not root: tests/index/test_corpus.py::test_unreadable_file_on_disk covers chmod 000")
    if not shutil.which("setpriv") or not _setpriv_enforces_permissions(tmp_path):
        pytest.skip("setpriv cannot drop CAP_DAC_OVERRIDE here, and root reads chmod 000 files anyway")
    locked = corpus / "locked.txt"
    locked.write_text("锁定的文件。" * 20, encoding="utf-8")
    folder = corpus / "private"
    folder.mkdir()
    (folder / "inside.txt").write_text("锁定目录中的文件。" * 20, encoding="utf-8")
    script = tmp_path / "build.py"
    script.write_text(_AS_UNPRIVILEGED_ROOT, encoding="utf-8")
    idx = tmp_path / "idx"
    locked.chmod(0)
    folder.chmod(0)
    try:
        proc = subprocess.run([*_DROP, sys.executable, str(script), str(ROOT / "tests" / "conftest.py"),
                               str(corpus), str(idx)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        locked.chmod(0o644)
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["skipped"] == {"locked.txt": "permission denied"}
    assert "locked.txt: permission denied" in got["summary"]
    assert got["files"] == len(list((ROOT / "seeds").iterdir()))
    # The unreadable folder is only a log warning: its files are not listed, so the report cannot name them.
    assert "skipping folder private: permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_50_mb_file_is_indexed(corpus, tmp_path, fake_embedder):
    """A 50 MB text file (the seeds repeated) among the seeds: built, searchable; the time is reported.
    ~50 s with the fake embedder (87,197 chunks, 714 distinct texts embedded, 1.1 GB peak RSS)."""
    seed = b"".join(p.read_bytes() for p in sorted((ROOT / "seeds").iterdir()))
    size = 50 * 2**20
    big = corpus / "big.txt"
    big.write_bytes((seed * (size // len(seed) + 1))[:size].decode("utf-8", "ignore").encode("utf-8"))
    t0 = time.perf_counter()
    report = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, fake_embedder.name, progress=False)
    seconds = time.perf_counter() - t0
    print(f"\n50 MB build: {seconds:.0f} s, {report.chunks} chunks, {report.embedded} texts embedded")
    assert report.built and not report.skipped
    assert sum(c.source == "big.txt" for c in store.load(tmp_path / "idx").chunks) > 10_000
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, rebuild=False)
    assert a.ask("一岗双责", sources=["big.txt"]).passages
