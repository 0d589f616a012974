"""Index faults: SIGKILL at every step of a build, damaged files, a newer format, a read-only folder, two
builds at once. Whatever happens, the index in use keeps answering and is never left half written.

Builds that are killed or raced run in child processes (tests/conftest.py's fake embedder, loaded by path),
so a SIGKILL is real. The read-only folder is a read-only bind mount in a private mount namespace
(`unshare -m`), which binds root too; the test skips, saying why, where that is not permitted.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import index.embed
from assistant import Assistant
from assistant.cli import main
from index import store
from index.build import BuildConfig, ensure_index, passage_text
from index.errors import CorruptIndexError

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = ROOT / "tests" / "conftest.py"
NEW_FILE = "new.md"
NEW_TEXT = "# 新增文章\n\n## 一、背景\n\n" + "新增文件中的段落，讨论国有企业党建品牌与红色引擎工程的建设经验。" * 3 + "\n"
QUESTIONS = ["党建", "一岗双责", "两张皮", "红色引擎工程"]

_DRIVER = textwrap.dedent("""
    # A build in its own process, with pauses at named points where the test kills it.
    import importlib.util, json, os, sys, time
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("_conftest", sys.argv[1])
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    import faiss
    from index import build, store
    from index.errors import AssistantError

    corpus, idx, kill_at = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    lock_wait, embed_pause = float(sys.argv[5]), float(sys.argv[6])

    def pause(name):
        print("AT", name, flush=True)
        print("T", name, time.time(), flush=True)
        if name == kill_at:
            time.sleep(600)               # the test kills us here

    def after(name, fn):
        def wrapped(*a, **kw):
            out = fn(*a, **kw)
            pause(name)
            return out
        return wrapped

    class Embedder(conftest.FakeEmbedder):
        def encode_documents(self, texts, show_progress=False):
            pause("embedding")
            time.sleep(embed_pause)
            return super().encode_documents(texts)

    build.scan_corpus = after("scanned", build.scan_corpus)
    real_previous = build._previous_vectors
    build._previous_vectors = lambda d: (pause("locked"), real_previous(d))[1]
    faiss.write_index = after("faiss-written", faiss.write_index)
    store.Generation.save_arrays = after("arrays-saved", store.Generation.save_arrays)
    real_write_json = store.write_json
    def write_json(path, obj):
        real_write_json(path, obj)
        if Path(path).name == "manifest.json":
            pause("manifest-written")
    store.write_json = write_json
    real_replace = os.replace
    def replace(src, dst):
        if Path(src).name.startswith(".tmp-CURRENT"):
            pause("pointer-written")
            real_replace(src, dst)
            pause("current-swapped")
        else:
            real_replace(src, dst)
            if Path(src).name.startswith(".tmp-"):
                pause("generation-renamed")
    os.replace = replace
    prunes = []
    real_prune = store.prune
    def prune(d, keep=2):
        prunes.append(1)
        if len(prunes) == 2:
            pause("final-prune")
        return real_prune(d, keep)
    store.prune = prune

    config = build.BuildConfig(lock_wait_seconds=lock_wait)
    try:
        report = build.ensure_index(corpus, idx, Embedder, Embedder.name, config, force=True, progress=False)
    except AssistantError as err:
        print("ERROR", type(err).__name__, err, flush=True)
        sys.exit(2)
    print("DONE", json.dumps({"built": report.built, "chunks": report.chunks}), flush=True)
""")

# In build order. Before "current-swapped" the old generation must still be live; from it on, the new one.
KILL_POINTS = ["scanned", "locked", "embedding", "faiss-written", "arrays-saved", "manifest-written",
               "generation-renamed", "pointer-written", "current-swapped", "final-prune"]
SWAPPED_FROM = KILL_POINTS.index("current-swapped")


@pytest.fixture
def corpus(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", dst)
    return dst


@pytest.fixture
def live(corpus, tmp_path, fake_embedder):
    """An Assistant serving from a built index, and its answers to QUESTIONS."""
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    return a, answers(a)


def answers(a: Assistant) -> dict:
    return {q: [p.chunk_id for p in a.ask(q).passages] for q in QUESTIONS}


def start_build(tmp_path: Path, corpus: Path, idx: Path, kill_at: str = "-", lock_wait: float = 600,
                embed_pause: float = 0.0) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER, encoding="utf-8")
    return subprocess.Popen([sys.executable, str(script), str(CONFTEST), str(corpus), str(idx), kill_at,
                             str(lock_wait), str(embed_pause)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for(proc: subprocess.Popen, marker: str, timeout: float = 300) -> list[str]:
    """Lines of the child's stdout up to and including `marker` (a whole line)."""
    seen, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line.strip())
        if line.strip() == marker:
            return seen
        assert time.monotonic() < deadline, f"no {marker!r} within {timeout} s: {seen}"
    raise AssertionError(f"the build ended before {marker!r}: {seen}\n{proc.stderr.read()}")


def assert_whole(idx: Path) -> store.StoredIndex:
    """The live generation loads and every file matches its manifest (store.load hashes them all)."""
    stored = store.load(idx)
    assert stored.dense.ntotal == len(stored.chunks) == len(stored.vectors) > 0
    return stored


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_step_of_a_build(live, corpus, tmp_path, fake_embedder, point):
    a, before = live
    old = store.current_generation(a.index_dir)
    (corpus / NEW_FILE).write_text(NEW_TEXT, encoding="utf-8")
    proc = start_build(tmp_path, corpus, a.index_dir, kill_at=point)
    try:
        wait_for(proc, f"AT {point}")
        assert answers(a) == before             # mid-build, the running assistant is untouched
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    stored = assert_whole(a.index_dir)
    swapped = KILL_POINTS.index(point) >= SWAPPED_FROM
    assert (stored.path != old) is swapped
    assert (NEW_FILE in {c.source for c in stored.chunks}) is swapped
    assert answers(a) == before
    # A fresh start: the dead build's lock is free, its leftovers are cleared, the corpus is indexed.
    b = Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, progress=False,
                       build_config=BuildConfig(lock_wait_seconds=5))
    assert NEW_FILE in b.sources() and b.ask("红色引擎工程", sources=[NEW_FILE]).passages
    ensure_index(corpus, a.index_dir, lambda: fake_embedder, fake_embedder.name, force=True, progress=False,
                 config=BuildConfig(lock_wait_seconds=5))
    assert not list(a.index_dir.glob(".tmp-*"))
    assert len(list(a.index_dir.glob("gen-*"))) <= 2
    assert_whole(a.index_dir)


# ---------------------------------------------------------------------------------------------- damage
def _overwrite_data(name: str, fill: float):
    """Keep the .npy header (so the shape still parses) and replace every value."""
    def damage(gen: Path):
        path = gen / name
        arr = np.load(path, allow_pickle=False)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) - arr.nbytes] + np.full(arr.shape, fill, arr.dtype).tobytes())
    return damage


def _garbage(name: str):
    def damage(gen: Path):
        path = gen / name
        path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))
    return damage


DAMAGE = [
    ("faiss-truncated", lambda g: (g / "dense.faiss").write_bytes((g / "dense.faiss").read_bytes()[:777]),
     "dense.faiss is missing or truncated"),
    ("faiss-garbage", _garbage("dense.faiss"), "dense.faiss does not match its checksum"),
    ("faiss-empty", lambda g: (g / "dense.faiss").write_bytes(b""), "dense.faiss is missing or truncated"),
    ("bm25-garbage", lambda g: _garbage(next(p.name for p in (g / "bm25").iterdir()))(g / "bm25"),
     "does not match its checksum"),
    ("chunks-garbage", _garbage("chunks.jsonl"), "chunks.jsonl does not match its checksum"),
    ("vectors-values", _overwrite_data("vectors.npy", 7.0), "vectors.npy does not match its checksum"),
    ("sentence-vectors-values", _overwrite_data("sentence_vectors.npy", float("nan")),
     "sentence_vectors.npy does not match its checksum"),
]


@pytest.mark.parametrize("name, damage, message", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_file_keeps_the_running_assistant_and_force_rebuild_restores_it(
        live, corpus, fake_embedder, monkeypatch, name, damage, message):
    a, before = live
    damage(store.current_generation(a.index_dir))
    assert answers(a) == before                               # served from memory, untouched
    assert not a.rebuild().built and answers(a) == before     # the manifest is intact: nothing to rebuild
    with pytest.raises(CorruptIndexError, match=f"{message}.*assistant build --force"):
        Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)
    # The CLI says the same in one line.
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: fake_embedder)
    result = CliRunner().invoke(main, ["ask", "党建", "--corpus", str(corpus), "--index", str(a.index_dir)])
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "assistant build --force" in result.stderr
    # The advised remedy gives back exactly the index an undamaged build gives.
    ensure_index(corpus, a.index_dir, lambda: fake_embedder, fake_embedder.name, force=True, progress=False)
    stored = assert_whole(a.index_dir)
    fresh = fake_embedder.encode_documents([passage_text(c) for c in stored.chunks])
    assert np.allclose(stored.vectors, fresh)
    assert np.isfinite(stored.sentence_vectors).all()
    assert answers(Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)) == before




@pytest.mark.parametrize("name, damage, message", [
    ("current-garbage", lambda idx: (idx / "CURRENT").write_bytes(b"\xff\xfe\x00garbage"), "cannot read CURRENT"),
    ("current-traversal", lambda idx: (idx / "CURRENT").write_text("gen-../../etc\n"), "names a missing generation"),
    ("generation-deleted", lambda idx: shutil.rmtree(store.current_generation(idx)), "names a missing generation"),
], ids=["current-garbage", "current-traversal", "generation-deleted"])
def test_damaged_pointer_is_a_clear_error_and_a_build_repairs_it(live, corpus, fake_embedder, name, damage, message):
    a, before = live
    damage(a.index_dir)
    assert answers(a) == before
    with pytest.raises(CorruptIndexError, match=f"{message}.*assistant build --force"):
        Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)
    ensure_index(corpus, a.index_dir, lambda: fake_embedder, fake_embedder.name, force=True, progress=False)
    b = Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)
    assert answers(b) == before
    assert_whole(a.index_dir)


def _bump_format(gen: Path) -> None:
    path = gen / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    m["format_version"] = store.FORMAT_VERSION + 1
    m["checksum"] = store._checksum(m)
    path.write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")


def test_newer_format_is_refused_and_not_destroyed(live, corpus, fake_embedder, monkeypatch):
    a, before = live
    newer = store.current_generation(a.index_dir)
    _bump_format(newer)
    assert answers(a) == before
    with pytest.raises(CorruptIndexError, match=r"newer version of the assistant \(format 2, this one reads 1\)"):
        Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: fake_embedder)
    result = CliRunner().invoke(main, ["ask", "党建", "--no-rebuild", "--corpus", str(corpus),
                                       "--index", str(a.index_dir)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "newer version" in result.stderr
    # Opening with rebuild=True (the CLI's default) builds a generation this version can read; the newer
    # generation stays on disk beside it (prune keeps two), so a newer assistant has not lost it.
    report = ensure_index(corpus, a.index_dir, lambda: fake_embedder, fake_embedder.name, progress=False)
    assert report.built and any("newer version" in r for r in report.reasons)
    assert newer.is_dir() and store.current_generation(a.index_dir) != newer
    assert answers(Assistant.open(corpus, index=a.index_dir, embedder=fake_embedder, rebuild=False)) == before


# ---------------------------------------------------------------------------------------------- read-only
_READ_ONLY = textwrap.dedent("""
    # Runs inside `unshare -m` after the index folder was bind-mounted read-only.
    import importlib.util, json, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("_conftest", sys.argv[1])
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    from assistant import Assistant
    corpus, idx, rebuild = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4] == "rebuild"
    try:
        a = Assistant.open(corpus, index=idx, embedder=conftest.FakeEmbedder(), rebuild=rebuild, progress=False)
        print(json.dumps({"ok": [p.chunk_id for p in a.ask("党建").passages]}))
    except Exception as err:
        print(json.dumps({"error": type(err).__name__, "message": str(err),
                          "assistant_error": isinstance(err, __import__("index.errors").errors.AssistantError)}))
""")


def _read_only_run(tmp_path: Path, corpus: Path, idx: Path, mode: str) -> dict:
    script = tmp_path / "ro.py"
    script.write_text(_READ_ONLY, encoding="utf-8")
    shell = (f'mount --bind -o ro "{idx}" "{idx}" && touch "{idx}/probe" 2>/dev/null && exit 97; '
             f'exec "{sys.executable}" "{script}" "{CONFTEST}" "{corpus}" "{idx}" {mode}')
    proc = subprocess.run(["unshare", "-m", "sh", "-c", shell], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode != 97, "the bind mount was not read-only"
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def read_only_ok(tmp_path):
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1): a read-only bind mount is not possible here")
    probe = tmp_path / "probe-dir"
    probe.mkdir()
    rc = subprocess.run(["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{probe}" "{probe}" && '
                         f'! touch "{probe}/x" 2>/dev/null'], capture_output=True).returncode
    if rc != 0:
        pytest.skip("no permission for a private read-only bind mount (needs CAP_SYS_ADMIN)")


def test_read_only_index_folder_still_answers(live, corpus, tmp_path, read_only_ok):
    a, before = live
    state = sorted((str(p), p.stat().st_mtime_ns) for p in a.index_dir.rglob("*"))
    got = _read_only_run(tmp_path, corpus, a.index_dir, "rebuild")
    assert got == {"ok": before["党建"]}
    (corpus / NEW_FILE).write_text(NEW_TEXT, encoding="utf-8")          # now the index is stale
    got = _read_only_run(tmp_path, corpus, a.index_dir, "no-rebuild")
    assert got["error"] == "IndexMismatchError" and f"added: {NEW_FILE}" in got["message"]
    assert sorted((str(p), p.stat().st_mtime_ns) for p in a.index_dir.rglob("*")) == state


def test_read_only_stale_index_is_a_clear_error(live, corpus, tmp_path, read_only_ok):
    a, _ = live
    (corpus / NEW_FILE).write_text(NEW_TEXT, encoding="utf-8")
    got = _read_only_run(tmp_path, corpus, a.index_dir, "rebuild")
    assert got.get("assistant_error") is True, got
    assert "read-only" in got["message"].lower() and str(a.index_dir) in got["message"]


# ---------------------------------------------------------------------------------------------- two builds
@pytest.mark.slow
def test_two_builds_at_once_wait_for_each_other(live, corpus, tmp_path, fake_embedder):
    a, before = live
    (corpus / NEW_FILE).write_text(NEW_TEXT, encoding="utf-8")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = start_build(tmp_path / "one", corpus, a.index_dir, embed_pause=0.3)
    wait_for(first, "AT locked")                  # the first holds the lock
    second = start_build(tmp_path / "two", corpus, a.index_dir)
    wait_for(second, "AT scanned")               # the second reached the lock and must wait
    assert answers(a) == before
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and "DONE" in out1, err1
    assert second.returncode == 0 and "DONE" in out2, err2
    # The second took the lock only after the first had made its generation live.
    first_live = _time_of(out1, "current-swapped")
    assert _time_of(out2, "locked") > first_live
    assert answers(a) == before
    stored = assert_whole(a.index_dir)
    assert NEW_FILE in {c.source for c in stored.chunks}
    assert not list(a.index_dir.glob(".tmp-*")) and len(list(a.index_dir.glob("gen-*"))) <= 2


def _time_of(stdout: str, point: str) -> float:
    return next(float(ln.split()[2]) for ln in stdout.splitlines() if ln.startswith(f"T {point} "))


@pytest.mark.slow
def test_second_build_process_says_busy(live, corpus, tmp_path):
    a, before = live
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    holder = start_build(tmp_path / "one", corpus, a.index_dir, kill_at="locked")
    try:
        wait_for(holder, "AT locked")
        t0 = time.perf_counter()
        busy = start_build(tmp_path / "two", corpus, a.index_dir, lock_wait=1.0)
        out, err = busy.communicate(timeout=300)
        assert busy.returncode == 2, err
        assert f"ERROR IndexBusyError another build of {a.index_dir} is running" in out
        assert "Traceback" not in err
        assert time.perf_counter() - t0 < 120
    finally:
        holder.kill()
        holder.wait(30)
    assert answers(a) == before
    assert_whole(a.index_dir)
