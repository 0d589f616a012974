"""The Milvus backend against a real server the tests start (`milvus-lite server` on 127.0.0.1, a free port).

Oracle: the local backend over the same corpus and embedder. Uses the deterministic FakeEmbedder: the point is
that the two engines store and search alike, not the model's quality (eval/bench_milvus.py runs the real one).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index.backend import BackendError, open_backend, parse_milvus_url

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"

pymilvus = pytest.importorskip("pymilvus", reason="the Milvus tests need the 'scale' extra (pip install -e '.[scale]')")
MILVUS_LITE = Path(sys.executable).parent / "milvus-lite"


# ---------------------------------------------------------------- no server needed

@pytest.mark.parametrize("spec, want", [
    ("milvus://127.0.0.1:19530", ("127.0.0.1", 19530, "default")),
    ("milvus://db.example:1234/library", ("db.example", 1234, "library")),
    ("milvus://host", ("host", 19530, "default")),
])
def test_parse_milvus_url(spec, want):
    assert parse_milvus_url(spec) == want


@pytest.mark.parametrize("spec, match", [
    ("http://127.0.0.1:19530", "unknown index backend"),
    ("milvus://127.0.0.1:notaport", "bad port"),
    ("milvus://127.0.0.1:1/a/b", "bad database name"),
])
def test_bad_backend_is_one_clear_error(spec, match):
    with pytest.raises(BackendError, match=match):
        open_backend(spec, Path("/tmp/unused"), SEEDS)


def test_local_is_the_default_backend(tmp_path):
    from index.store import LocalStore

    assert isinstance(open_backend(None, tmp_path, SEEDS), LocalStore)


# ---------------------------------------------------------------- the server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [str(MILVUS_LITE), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"milvus-lite server exited with {self.proc.returncode}")
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("milvus-lite server did not open its port within 60 s")

    @property
    def url(self) -> str:
        return f"milvus://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not MILVUS_LITE.exists():
        pytest.skip("milvus-lite is not installed (the 'scale' extra)")
    srv = Server(tmp_path_factory.mktemp("milvus"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pair(server, tmp_path_factory):
    """The seeds indexed twice with the same fake embedder: local folder and Milvus."""
    from assistant.api import Assistant

    sys.path.insert(0, str(ROOT / "tests"))   # a module-scoped fixture cannot take the function-scoped fake
    import conftest

    tmp = tmp_path_factory.mktemp("pair")
    local = Assistant.open(SEEDS, index=tmp / "local", embedder=conftest.FakeEmbedder(), progress=False)
    milvus = Assistant.open(SEEDS, index=tmp / "milvus", embedder=conftest.FakeEmbedder(), progress=False,
                            backend=server.url)
    return local, milvus


@pytest.mark.slow
def test_answers_agree_with_the_local_backend(pair):
    from eval.metrics import first_hit_rank, mrr_at_k

    local, milvus = pair
    questions = [json.loads(ln) for ln in QUESTIONS.read_text(encoding="utf-8").splitlines() if ln.strip()]
    same_top1 = overlap = 0.0
    mrr = {"local": [], "milvus": []}
    for q in questions:
        a, b = local.ask(q["question"], top_k=5), milvus.ask(q["question"], top_k=5)
        ia, ib = [p.chunk_id for p in a.passages], [p.chunk_id for p in b.passages]
        same_top1 += ia[:1] == ib[:1]
        overlap += len(set(ia) & set(ib)) / max(1, len(ia))
        if q.get("anchors"):
            for name, ans in (("local", local.ask(q["question"], top_k=10)), ("milvus", milvus.ask(q["question"], top_k=10))):
                mrr[name].append(mrr_at_k(first_hit_rank([p.text for p in ans.passages], q["anchors"]), 10))
    n = len(questions)
    assert same_top1 / n >= 0.9, f"top-1 identical on {same_top1}/{n}"
    assert overlap / n >= 0.8, f"top-5 overlap {overlap / n:.3f}"
    m_local, m_milvus = (sum(v) / len(v) for v in (mrr["local"], mrr["milvus"]))
    assert abs(m_local - m_milvus) <= 0.02, (m_local, m_milvus)
    # the hybrid fusion of a Chinese question ran in Milvus (RRF over the dense and BM25 requests) ...
    stages = []
    milvus.ask("党组织前置研究讨论重大事项应如何落实？", trace=lambda stage, s: stages.append(stage))
    assert "rank: milvus hybrid" in stages and "rank: bm25" not in stages
    # ... an English one is fused here (its script penalty reorders the dense ranking first)
    stages.clear()
    milvus.ask("How do SOEs integrate Party building with business?", trace=lambda stage, s: stages.append(stage))
    assert "rank: milvus hybrid" not in stages and "rank: bm25" in stages
    # same records: passages and citations come back whole
    a, b = local.ask("什么是“一岗双责”？", top_k=3), milvus.ask("什么是“一岗双责”？", top_k=3)
    assert [p.citation.reference() for p in a.passages] == [p.citation.reference() for p in b.passages]
    assert [p.highlights for p in a.passages] == [p.highlights for p in b.passages]


@pytest.mark.slow
def test_source_filter_runs_in_milvus(pair):
    local, milvus = pair
    source = sorted(local.manifest["corpus"]["files"])[1]
    a = local.ask("党建与生产经营融合", top_k=5, sources=[source])
    b = milvus.ask("党建与生产经营融合", top_k=5, sources=[source])
    assert b.passages and {p.citation.source for p in b.passages} == {source}
    assert [p.chunk_id for p in a.passages] == [p.chunk_id for p in b.passages]


@pytest.mark.slow
def test_manifest_lives_with_the_collection(pair):
    _, milvus = pair
    m = milvus.backend.read_manifest()
    assert m["backend"]["engine"] == "milvus" and m["counts"]["chunks"] == len(milvus._snapshot.stored.chunks)
    assert m["corpus"]["files"] == pair[0].manifest["corpus"]["files"]
    assert milvus.backend.live_generation() == m["backend"]["generation"]
    # ef was tuned at build until recall@10 against exact search reached the target, and is what searches use
    assert m["index"]["probe_recall"] >= m["index"]["target_recall"] == 0.98
    assert milvus._snapshot.stored.dense.ef == m["index"]["ef_search"] >= 128


def _copy_seeds(dst: Path) -> Path:
    shutil.copytree(SEEDS, dst)
    return dst


@pytest.mark.slow
def test_incremental_build_embeds_only_changes_and_switches_by_alias(server, tmp_path, fake_embedder):
    from index.build import ensure_index

    corpus = _copy_seeds(tmp_path / "corpus")
    be = open_backend(server.url, tmp_path / "idx", corpus)
    first = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False, backend=be)
    gen1 = be.live_generation()
    assert first.built and be.load().manifest["counts"]["chunks"] == first.chunks
    noop = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False, backend=be)
    assert not noop.built
    victim = sorted(p for p in corpus.iterdir() if p.suffix in (".txt", ".md"))[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\n\n新增一段关于“党建引领”的测试文字，用来检验增量构建。\n",
                      encoding="utf-8")
    before = len(fake_embedder.encoded)
    second = ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False, backend=be)
    assert second.built and 0 < second.embedded < first.embedded / 2          # only the changed texts
    assert len(fake_embedder.encoded) - before == second.embedded
    gen2 = be.live_generation()
    assert gen2 != gen1
    stored = be.load()
    assert any("党建引领" in c.text for c in stored.chunks)
    # one more build: the oldest generation is dropped, the previous one kept for readers still on it
    (corpus / "extra.txt").write_text("# 补充\n\n国有企业党建工作的又一段测试文字。\n", encoding="utf-8")
    ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", progress=False, backend=be)
    names = be.call("list_collections")
    assert f"{gen2}_chunks" in names and f"{gen1}_chunks" not in names


_KILLED_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    import conftest
    from index import milvus_store
    from index.backend import open_backend
    from index.build import ensure_index

    real = milvus_store.MilvusGeneration._insert
    def insert(self, collection, rows):
        real(self, collection, rows)
        print("INSERTED", flush=True)
        time.sleep(60)
    milvus_store.MilvusGeneration._insert = insert
    corpus, idx = Path(sys.argv[1]), Path(sys.argv[2])
    ensure_index(corpus, idx, conftest.FakeEmbedder, "fake", force=True, progress=False,
                 backend=open_backend(sys.argv[3], idx, corpus))
""")


@pytest.mark.slow
def test_killed_build_leaves_the_old_generation_answering(server, tmp_path, fake_embedder):
    from assistant.api import Assistant
    from index.build import ensure_index

    corpus = _copy_seeds(tmp_path / "corpus")
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False, backend=server.url)
    live = a.backend.live_generation()
    before = [p.chunk_id for p in a.ask("如何把党组织前置研究程序融入公司治理？").passages]
    script = tmp_path / "killed.py"
    script.write_text(_KILLED_BUILD, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(tmp_path / "idx"), server.url,
                             str(ROOT / "tests")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("INSERTED"):
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    names = a.backend.call("list_collections")
    dead = [n for n in names if n.startswith(a.backend.prefix + "_g") and not n.startswith(live)]
    assert dead, "the killed build should have left a half-written generation"
    assert a.backend.live_generation() == live
    fresh = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False,
                           backend=server.url, rebuild=False)
    assert [p.chunk_id for p in fresh.ask("如何把党组织前置研究程序融入公司治理？").passages] == before
    ensure_index(corpus, tmp_path / "idx", lambda: fake_embedder, "fake", force=True, progress=False,
                 backend=a.backend)
    names = a.backend.call("list_collections")
    assert not any(n in names for n in dead if not n.startswith(live))


@pytest.mark.slow
def test_server_gone_mid_query_is_a_named_error(tmp_path, fake_embedder):
    from assistant.api import Assistant
    from index.milvus_store import BackendUnavailableError, MilvusConfig

    srv = Server(tmp_path / "data")
    try:
        a = Assistant.open(SEEDS, index=tmp_path / "idx", embedder=fake_embedder, progress=False, backend=srv.url)
        a.backend.config = MilvusConfig(timeout=3.0)
        assert a.ask("党建").passages
    finally:
        srv.stop()
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"Milvus server at 127\.0\.0\.1:\d+ did not answer"):
        a.ask("党建与生产经营融合")
    assert time.monotonic() - t0 < 30
    with pytest.raises(BackendUnavailableError, match="did not answer"):
        Assistant.open(SEEDS, index=tmp_path / "idx2", embedder=fake_embedder, progress=False, backend=srv.url)


@pytest.mark.slow
def test_cli_with_a_dead_server_is_one_line(tmp_path):
    """`assistant build --backend` at a server that is not there: one line, exit 2, no traceback."""
    dead = f"milvus://127.0.0.1:{_free_port()}"
    proc = subprocess.run([str(Path(sys.executable).parent / "assistant"), "build", "--corpus", str(SEEDS),
                           "--index", str(tmp_path / "i"), "--backend", dead],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the Milvus server at 127.0.0.1:") and "did not answer" in last


@pytest.mark.slow
def test_milvus_bm25_and_dense_scores_match_the_local_engines(pair):
    """Oracle: bm25s' scores over the same tokens (up to Milvus' constant factor k1 + 1 = 2.5, which no ranking
    sees), and FAISS' exact top-10 (HNSW over 152 chunks is exact)."""
    import numpy as np

    from assistant.retrieve import dense_ranking

    local, milvus = pair
    ls, ms = local._snapshot.stored, milvus._snapshot.stored
    tok = local._snapshot.tokenizer
    for question in ("国有企业党建工作与生产经营融合存在哪些问题？", "一岗双责", "党委书记和董事长应不应该由同一个人担任？"):
        terms = tok(question)
        want = np.asarray(ls.bm25.get_scores_from_ids(ls.bm25.get_tokens_ids(terms)), dtype=np.float32)
        got = ms.bm25.get_scores_from_ids(ms.bm25.get_tokens_ids(terms))
        assert (want > 0).sum() >= 2
        assert np.array_equal(got > 0, want > 0)          # the same chunks match ...
        ratio = got[want > 0] / want[want > 0]            # ... with proportional scores: Milvus' BM25 keeps the
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)   # (k1 + 1) factor that Lucene's drops
        assert ratio[0] == pytest.approx(2.5, rel=1e-4)
        q = local.embedder.encode_queries([question])[0]
        assert dense_ranking(ms.dense, q, 10, None)[1].tolist() == dense_ranking(ls.dense, q, 10, None)[1].tolist()


@pytest.mark.slow
def test_evidence_reads_an_answers_vectors_in_one_query_per_table(pair):
    """The support mixes each passage's own vector with its best sentence's: in Milvus both are fetched for all the
    passages of an answer at once, and the supports equal the local ones."""
    from assistant import evidence, query, retrieve

    local, milvus = pair
    index, st = milvus.loaded, milvus.loaded.stored.vectors.st
    q = query.encode("党组织前置研究讨论重大事项应如何落实？", milvus.embedder, index.tokenizer, milvus.config, top_k=5)
    rows = [int(i) for i in retrieve.collapse(index, retrieve.rank(index, q, milvus.config)[1], 5, milvus.config)]
    index.stored.vectors._memo.clear()
    index.stored.sentence_vectors._memo.clear()
    calls = []
    real = st.call
    st.call = lambda op, *a, **k: (calls.append(op), real(op, *a, **k))[1]
    try:
        evidence.prefetch(index, rows)
        got = [evidence.assess(index, r, q, milvus.config).support for r in rows]
    finally:
        st.call = real
    assert calls == ["query", "query"]
    want = [evidence.assess(local.loaded, r, q, local.config).support for r in rows]
    assert got == pytest.approx(want, abs=1e-5)
