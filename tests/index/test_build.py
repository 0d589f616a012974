"""The index folder: self-description, incremental builds, corruption and crash safety."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import build, store
from index.build import BuildConfig, ensure_index
from index.dense import DenseConfig
from index.errors import CorruptIndexError, IndexBusyError, IndexMismatchError

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"


def _never():
    raise AssertionError("the model must not be loaded for a no-op build")


@pytest.fixture
def corpus(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(SEEDS, dst)
    return dst


@pytest.fixture
def built(corpus, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    report = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    return corpus, idx, report


def test_index_folder_describes_itself(built, fake_embedder):
    corpus, idx, report = built
    gen = store.current_generation(idx)
    names = {p.name for p in gen.iterdir()}
    assert {"manifest.json", "chunks.jsonl", "vectors.npy", "dense.faiss", "bm25", "terms.txt",
            "sentences.npy", "sentence_vectors.npy", "keys.json"} <= names
    m = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    assert m["format_version"] == store.FORMAT_VERSION
    assert m["embedder"]["fingerprint"] == fake_embedder.fingerprint and m["embedder"]["dim"] == fake_embedder.dim
    assert set(m["corpus"]["files"]) == {p.name for p in SEEDS.iterdir()}
    assert all(v.startswith("sha256:") for v in m["corpus"]["files"].values())
    assert m["tokenizer"]["userdict_sha256"] and m["chunker"]["max_chars"] == 400
    assert m["counts"]["chunks"] == report.chunks > 50 and m["counts"]["articles"] >= 9
    assert m["index"]["type"] == "flat"
    assert not [p for p in gen.rglob("*") if p.suffix in (".pkl", ".pickle")]
    terms = (gen / "terms.txt").read_text(encoding="utf-8").split()
    assert {"一岗双责", "两张皮", "三重一大", "第一议题"} <= set(terms)


def test_unchanged_corpus_is_a_noop_without_the_model(built):
    corpus, idx, _ = built
    before = store.current_generation(idx)
    t = time.perf_counter()
    report = ensure_index(corpus, idx, _never, "fake", progress=False)
    assert not report.built and report.embedded == 0
    assert store.current_generation(idx) == before
    assert time.perf_counter() - t < 2


def _texts_of(fake_embedder):
    return fake_embedder.encoded


def test_changed_added_removed_file_embeds_only_that_file(built, fake_embedder):
    corpus, idx, first = built
    calls_before = len(_texts_of(fake_embedder))
    assert calls_before == first.embedded
    # changed: one paragraph appended to one file
    path = corpus / "001_96c08fcecc05a0af.txt"
    path.write_text(path.read_text(encoding="utf-8") + "\n\n新增一段关于党建品牌建设的测试文字，用来验证增量构建只嵌入变化的内容。\n",
                    encoding="utf-8")
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert r.built and any("changed: 001_96c08fcecc05a0af.txt" in x for x in r.reasons)
    new_texts = _texts_of(fake_embedder)[calls_before:]
    assert 0 < r.embedded == len(new_texts) <= 4
    assert any("党建品牌建设" in t for t in new_texts)
    # added: a new file; only its texts are embedded
    calls = len(_texts_of(fake_embedder))
    (corpus / "new.md").write_text("# 新文章\n\n## 一、背景\n\n" + "这是一个新增文件中的段落，讨论基层党组织标准化建设。" * 3 + "\n",
                                   encoding="utf-8")
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    added = _texts_of(fake_embedder)[calls:]
    assert r.built and added and all("标准化建设" in t or "背景" in t or "新文章" in t for t in added)
    # removed: nothing to embed at all
    calls = len(_texts_of(fake_embedder))
    (corpus / "new.md").unlink()
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert r.built and r.embedded == 0 and len(_texts_of(fake_embedder)) == calls
    assert any("removed: new.md" in x for x in r.reasons)


def test_mismatch_without_rebuild_names_the_difference(built, fake_embedder):
    corpus, idx, _ = built
    (corpus / "000_f25ebb76fa63945c.txt").write_text("改动后的内容。" * 30, encoding="utf-8")
    with pytest.raises(IndexMismatchError, match=r"changed: 000_f25ebb76fa63945c\.txt.*assistant build"):
        ensure_index(corpus, idx, _never, "fake", rebuild=False)
    with pytest.raises(IndexMismatchError, match="model 'fake' -> 'other'"):
        ensure_index(corpus, idx, _never, "other", rebuild=False)
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False, fingerprint="different")
    assert r.built and any("weights" in x for x in r.reasons)


def test_chunker_settings_change_forces_rebuild(built, fake_embedder):
    corpus, idx, _ = built
    from index.chunk import ChunkConfig
    cfg = BuildConfig(chunker=ChunkConfig(min_chars=60, max_chars=300))
    with pytest.raises(IndexMismatchError, match="chunker settings"):
        ensure_index(corpus, idx, _never, "fake", cfg, rebuild=False)


@pytest.mark.parametrize("damage, message", [
    (lambda g: (g / "dense.faiss").write_bytes((g / "dense.faiss").read_bytes()[:100]), "missing or truncated"),
    (lambda g: (g / "dense.faiss").write_bytes(b"\0" * (g / "dense.faiss").stat().st_size), "checksum"),
    (lambda g: (g / "chunks.jsonl").unlink(), "missing or truncated"),
    (lambda g: (g / "manifest.json").write_text(
        (g / "manifest.json").read_text(encoding="utf-8").replace('"chunks": ', '"chunks": 1', 1), encoding="utf-8"),
     "modified after the build"),
    (lambda g: (g / "manifest.json").write_text("{not json", encoding="utf-8"), "unreadable manifest"),
])
def test_corrupt_index_gives_a_clear_error(built, damage, message):
    _, idx, _ = built
    damage(store.current_generation(idx))
    with pytest.raises(CorruptIndexError, match=f"{message}.*assistant build --force"):
        store.load(idx)


def test_newer_format_version_is_refused_clearly(built):
    _, idx, _ = built
    path = store.current_generation(idx) / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    m["format_version"] = store.FORMAT_VERSION + 1
    m["checksum"] = store._checksum(m)
    path.write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(CorruptIndexError, match="newer version"):
        store.load(idx)


def test_corrupt_index_is_rebuilt_when_allowed(built, fake_embedder):
    corpus, idx, _ = built
    (store.current_generation(idx) / "manifest.json").write_text("garbage", encoding="utf-8")
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert r.built and store.load(idx).manifest["counts"]["chunks"] == r.chunks


def test_second_build_waits_then_says_busy(built):
    corpus, idx, _ = built
    cfg = BuildConfig(lock_wait_seconds=0.3)
    with store.build_lock(idx, 1):
        t = time.perf_counter()
        with pytest.raises(IndexBusyError, match="another build"):
            ensure_index(corpus, idx, _never, "fake", cfg, force=True)
        assert time.perf_counter() - t < 5


_KILLABLE_BUILD = textwrap.dedent("""
    import sys, time, hashlib
    import numpy as np
    from pathlib import Path
    from index.build import ensure_index

    class Slow:
        name, dim, fingerprint = "slow", 16, "slow-v1"
        def encode_documents(self, texts, show_progress=False):
            print("EMBEDDING", flush=True)
            time.sleep(0.5)
            out = np.zeros((len(texts), 16), np.float32)
            for i, t in enumerate(texts):
                out[i, int(hashlib.md5(t.encode()).hexdigest(), 16) % 16] = 1
            return out
        encode_queries = encode_documents

    ensure_index(Path(sys.argv[1]), Path(sys.argv[2]), Slow, "fake", force=True, progress=False)
    print("DONE", flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_batches", [1, 4])
def test_sigkill_mid_build_leaves_previous_index_answering(built, tmp_path, kill_after_batches):
    corpus, idx, first = built
    before = store.load(idx)
    script = tmp_path / "build.py"
    script.write_text(_KILLABLE_BUILD, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(idx)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    seen = 0
    for line in proc.stdout:
        seen += line.startswith("EMBEDDING")
        if seen >= kill_after_batches:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    after = store.load(idx)
    assert after.path == before.path and len(after.chunks) == first.chunks
    assert list(idx.glob(".tmp-*"))                      # the dead build's folder is still there ...
    D, I = after.dense.search(after.vectors[:1], 3)
    assert I[0][0] == 0                                    # ... and the old index answers
    ensure_index(corpus, idx, lambda: None, "fake", progress=False)   # up to date: a no-op
    assert store.load(idx).path == before.path


def test_next_build_cleans_dead_temporary_folders(built, fake_embedder):
    corpus, idx, _ = built
    (idx / ".tmp-999-dead").mkdir()
    ensure_index(corpus, idx, lambda: fake_embedder, "fake", force=True, progress=False)
    assert not list(idx.glob(".tmp-*"))
    assert len(list(idx.glob("gen-*"))) <= 2


def test_round_trip_vectors_identical(built, fake_embedder):
    corpus, idx, _ = built
    loaded = store.load(idx)
    from index.build import passage_text
    again = fake_embedder.encode_documents([passage_text(c) for c in loaded.chunks[:10]])
    assert np.allclose(loaded.vectors[:10], again)
    q = loaded.vectors[5]
    D, I = loaded.dense.search(q[None, :], 5)
    brute = np.argsort(-(loaded.vectors @ q), kind="stable")[:5]
    assert set(I[0].tolist()) == set(brute.tolist())


def test_large_corpus_switches_to_tuned_ivf(built, fake_embedder):
    corpus, idx, _ = built
    # max_scan=1: keep the IVF whatever share of its lists the tuning needs (the fallback is tested below)
    cfg = BuildConfig(dense=DenseConfig(flat_max=10, max_scan=1.0))
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", cfg, force=True, progress=False)
    loaded = store.load(idx)
    settings = loaded.manifest["index"]
    assert settings["type"] == "ivf" and loaded.dense.ntotal == r.chunks
    assert settings["nlist"] == loaded.dense.nlist and 8 <= settings["nprobe"] <= settings["nlist"]
    assert loaded.dense.nprobe == settings["nprobe"]
    assert settings["probe_recall"] >= 0.98 and settings["probes"] == 256 and settings["target_recall"] == 0.98
    assert f"nprobe {settings['nprobe']}" in r.summary()
    # the recall measured at build time holds for queries the build did not probe
    queries = loaded.vectors[:50] + 0.05 * np.random.default_rng(0).standard_normal((50, 64)).astype(np.float32)
    _, found = loaded.dense.search(queries, 10)
    truth = np.argsort(-(queries @ loaded.vectors.T), axis=1)[:, :10]
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.tolist(), truth.tolist())]) >= 0.95


def test_ivf_that_must_scan_most_lists_keeps_exact_search(built, fake_embedder):
    corpus, idx, _ = built
    cfg = BuildConfig(dense=DenseConfig(flat_max=10, max_scan=0.01))
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", cfg, force=True, progress=False)
    settings = store.load(idx).manifest["index"]
    assert settings["type"] == "flat" and "hardly faster than exact search" in settings["reason"]
    assert settings["ivf_tried"]["nprobe"] >= 8
    assert "exact index kept" in r.summary()


def test_load_sets_nprobe_from_the_manifest(built, fake_embedder):
    corpus, idx, _ = built
    ensure_index(corpus, idx, lambda: fake_embedder, "fake", BuildConfig(dense=DenseConfig(flat_max=10, max_scan=1.0)),
                 force=True, progress=False)
    path = store.current_generation(idx) / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    m["index"]["nprobe"] = 3           # not what the build wrote into dense.faiss
    m["checksum"] = store._checksum(m)
    path.write_text(json.dumps(m), encoding="utf-8")
    assert store.load(idx).dense.nprobe == 3


def test_obsolete_index_type_is_rebuilt(built, fake_embedder):
    corpus, idx, _ = built
    path = store.current_generation(idx) / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    m["index"] = {"type": "hnsw", "metric": "inner_product", "m": 32}    # written by an older version
    m["checksum"] = store._checksum(m)
    path.write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(IndexMismatchError, match="dense index type 'hnsw' is no longer built"):
        ensure_index(corpus, idx, _never, "fake", rebuild=False)
    r = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert r.built and r.embedded == 0 and store.load(idx).manifest["index"]["type"] == "flat"


# --- build speed (issue 16): repeats embedded once, parallel BM25 tokens, progress with rates and ETA ----

def test_a_repeated_text_is_embedded_once_and_gets_the_same_vector(corpus, tmp_path, fake_embedder):
    first = sorted(p for p in corpus.iterdir() if p.suffix == ".txt")[0]
    shutil.copy(first, corpus / "copy_of_first.txt")            # the same file under another name
    report = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False)
    assert len(fake_embedder.encoded) == len(set(fake_embedder.encoded)) == report.embedded
    loaded = store.load(tmp_path / "idx")
    rows = {}
    for i, c in enumerate(loaded.chunks):
        rows.setdefault((c.title, c.headings, c.text), []).append(i)
    pairs = [r for r in rows.values() if len(r) > 1]
    assert len(pairs) >= 10                                      # the copy's chunks repeat the original's
    for r in pairs:
        np.testing.assert_array_equal(loaded.vectors[r[0]], loaded.vectors[r[1]])
        np.testing.assert_allclose(loaded.vectors[r[0]], fake_embedder.encode_documents(
            [build.passage_text(loaded.chunks[r[0]])])[0], atol=1e-6)
    assert report.reused == report.chunks + int(loaded.manifest["counts"]["sentences"]) - report.embedded


@pytest.mark.slow
def test_bm25_tokens_in_worker_processes_equal_the_serial_ones():
    from index.tokenize import Tokenizer

    texts = [p.read_text(encoding="utf-8")[i:i + 300] for p in sorted(SEEDS.glob("*.txt")) for i in (0, 900, 1800)]
    texts += texts[:3] + ["落实党风廉政建设“一岗双责”", ""]          # repeats, a user term, an empty text
    tokenizer = Tokenizer(["一岗双责", "两张皮"])
    serial = build.bm25_tokens(tokenizer, texts, workers=1)
    assert serial == build.bm25_tokens(tokenizer, texts, workers=2)
    assert len(serial) == len(texts) and serial[-1] == () and any("一岗双责" in t for t in serial)


def test_progress_shows_rates_and_eta_and_feeds_the_hook(capsys):
    seen = []
    p = build.Progress(True, lambda *a: seen.append(a))
    for n in range(1, 4):
        p("reading", n, 3)
    p.embed_total = 10
    p("embedding chunks", 4, 4)
    p("embedding sentences", 3, 6)
    p("ocr scan.pdf", 1, 2)                                      # a reader's own stage: the hook only
    p.close()
    err = capsys.readouterr().err
    assert "reading: 100%" in err and "file/s" in err
    assert "embedding:  70%" in err and "7/10" in err and "text/s" in err     # both passes on one bar
    assert seen[-1] == ("ocr scan.pdf", 1, 2) and ("embedding sentences", 3, 6) in seen and len(seen) == 6
    quiet = build.Progress(False, None)
    quiet("reading", 1, 1)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_dry_run_estimates_from_a_timed_sample_and_builds_nothing(corpus, tmp_path, fake_embedder):
    idx = tmp_path / "idx"
    est = build.estimate_build(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert store.current_generation(idx) is None                      # nothing written
    report = ensure_index(corpus, idx, lambda: fake_embedder, "fake", progress=False)
    assert (est.files, est.chunks, est.to_embed) == (report.files, report.chunks, report.embedded)
    assert est.reasons == ("no index yet",) and est.texts_per_second > 0 and est.embed_seconds > 0
    assert f"{est.to_embed} texts to embed" in est.summary() and "because no index yet" in est.summary()
    again = build.estimate_build(corpus, idx, lambda: _never(), "fake", progress=False)
    assert again.reasons == () and "up to date" in again.summary()
    forced = build.estimate_build(corpus, idx, lambda: fake_embedder, "fake", force=True, progress=False)
    assert forced.to_embed == 0 and forced.cached == est.to_embed     # every vector is in the live index


class _PreparingEmbedder:
    """The fake embedder with the bundled one's document-path hooks, recording when they are called."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.name, self.dim, self.fingerprint = inner, inner.name, inner.dim, inner.fingerprint
        self.events: list = []
        self.fail_after = fail_after

    def prepare_documents(self, texts):
        self.events.append(("prepare", len(texts)))
        return "fake path"

    def release_documents(self):
        self.events.append(("release",))

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def encode_documents(self, texts, show_progress=False):
        self.events.append(("encode", len(texts)))
        if self.fail_after is not None and sum(e[0] == "encode" for e in self.events) > self.fail_after:
            raise RuntimeError("the model went away")
        return self.inner.encode_documents(texts)


def test_a_build_prepares_the_document_path_for_exactly_what_it_embeds_and_releases_it(corpus, tmp_path,
                                                                                      fake_embedder):
    idx = tmp_path / "idx"
    e = _PreparingEmbedder(fake_embedder)
    report = ensure_index(corpus, idx, lambda: e, "fake", progress=False)
    assert e.events[0] == ("prepare", report.embedded) and e.events[-1] == ("release",)
    assert sum(ev[1] for ev in e.events if ev[0] == "encode") == report.embedded
    # a changed file: only its texts are announced
    victim = sorted(p for p in corpus.iterdir() if p.suffix == ".txt")[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\n\n新增一段：党建与生产经营深度融合的新做法。\n",
                      encoding="utf-8")
    e2 = _PreparingEmbedder(fake_embedder)
    again = ensure_index(corpus, idx, lambda: e2, "fake", progress=False)
    assert e2.events[0] == ("prepare", again.embedded) and 0 < again.embedded < report.embedded
    # a build that fails mid-way still releases what it loaded, and leaves the index as it was
    victim.write_text(victim.read_text(encoding="utf-8") + "\n\n再加一段：把党的领导融入公司治理各环节。\n",
                      encoding="utf-8")
    e3 = _PreparingEmbedder(fake_embedder, fail_after=0)
    with pytest.raises(RuntimeError, match="went away"):
        ensure_index(corpus, idx, lambda: e3, "fake", progress=False)
    assert [ev[0] for ev in e3.events] == ["prepare", "encode", "release"]
    assert store.load(idx).manifest["counts"]["chunks"] == again.chunks
    # the dry run prepares (it times the path the build would take) and releases too
    e4 = _PreparingEmbedder(fake_embedder)
    est = build.estimate_build(corpus, tmp_path / "other", lambda: e4, "fake", progress=False)
    assert e4.events[0] == ("prepare", est.to_embed) and e4.events[-1] == ("release",)
