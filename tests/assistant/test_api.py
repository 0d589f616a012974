"""The public API with the fake embedder: validation, filters, context, threads, swaps during rebuilds."""
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.errors import (AssistantError, EmptyQueryError, InvalidOptionError, QueryTooLongError,
                              UnknownSourceError)
from index import store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", dst)
    return dst


@pytest.fixture
def a(corpus, tmp_path, fake_embedder):
    return Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)


def _snapshot(path: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in path.rglob("*")}


@pytest.mark.parametrize("question, top_k, kw, error, match", [
    ("", None, {}, EmptyQueryError, "empty"),
    ("   \n\t ", None, {}, EmptyQueryError, "empty"),
    ("党" * 2001, None, {}, QueryTooLongError, "2001 characters, limit 2000"),
    ("党建\x00融合", None, {}, InvalidOptionError, "control"),
    ("党建\x1b[31m", None, {}, InvalidOptionError, "control"),
    ("党建\ud800", None, {}, InvalidOptionError, "invalid"),
    ("党建", 0, {}, InvalidOptionError, "between 1 and 50, got 0"),
    ("党建", 51, {}, InvalidOptionError, "got 51"),
    ("党建", -1, {}, InvalidOptionError, "got -1"),
    ("党建", "abc", {}, InvalidOptionError, "got 'abc'"),
    ("党建", True, {}, InvalidOptionError, "got True"),
    ("党建", None, {"sources": ["../../etc/passwd"]}, UnknownSourceError, "unknown source '../../etc/passwd'"),
    ("党建", None, {"articles": ["nope#3"]}, UnknownSourceError, "unknown article"),
    ("党建", None, {"include": ["secrets"]}, InvalidOptionError, "unknown: 'secrets'"),
    ("党建", None, {"mode": "magic"}, InvalidOptionError, "mode must be one of"),
    (None, None, {}, EmptyQueryError, "must be text"),
])
def test_bad_input_raises_named_error_and_writes_nothing(a, question, top_k, kw, error, match):
    before = _snapshot(a.index_dir)
    with pytest.raises(error, match=match):
        a.ask(question, top_k=top_k, **kw)
    assert _snapshot(a.index_dir) == before
    assert issubclass(error, AssistantError)


def test_huge_question_refused_fast(a):
    t = time.perf_counter()
    with pytest.raises(QueryTooLongError):
        a.ask("党建" * 50_000)
    assert time.perf_counter() - t < 1


@pytest.mark.parametrize("q", ["党建 🚩 融合", "مرحبا بالعالم", "'; DROP TABLE chunks; --", "<script>alert(1)</script>"])
def test_odd_but_valid_text_is_answered(a, q):
    ans = a.ask(q, top_k=3)
    assert len(ans.passages) <= 3
    json.dumps(ans.to_dict(), ensure_ascii=False)


def test_answer_shape_and_citations(a):
    ans = a.ask("一岗双责", top_k=5)
    assert 1 <= len(ans.passages) <= 5
    d = ans.to_dict()
    assert set(d) >= {"question", "found", "message", "passages"}
    for p in ans.passages:
        c = p.citation
        assert c.source in a.sources() and 1 <= c.line_start <= c.line_end
        assert p.text and all(0 <= s < e <= len(p.text) for s, e in p.highlights)
        assert c.source in c.reference() and f":{c.line_start}-{c.line_end}" in c.reference()
    assert [p.score for p in ans.passages] == sorted((p.score for p in ans.passages), reverse=True)


def test_source_and_article_filters(a):
    ans = a.ask("党建", top_k=10, sources=["003_8a33f948501c2c2d.txt"])
    assert ans.passages and {p.citation.source for p in ans.passages} == {"003_8a33f948501c2c2d.txt"}
    key = next(x["key"] for x in a.articles() if x["source"].startswith("004") and x["kind"] == "article")
    ans = a.ask("党建", top_k=10, articles=[key])
    assert ans.passages and all(p.citation.source.startswith("004") for p in ans.passages)


def test_references_rank_below_body_unless_included(a):
    # words of the reference lists, without naming the block (a question asking for 参考文献 gets them first)
    ans = a.ask("国有企业党建 研究 实践 探讨", top_k=10)
    blocks = [p.block for p in ans.passages]
    demoted = [i for i, b in enumerate(blocks) if b in ("references", "caption", "bio")]
    body = [i for i, b in enumerate(blocks) if b not in ("references", "caption", "bio")]
    assert not demoted or not body or max(body) < min(demoted)
    with_refs = a.ask("国有企业党建 研究 实践 探讨", top_k=10, include=["references"])
    assert with_refs.passages


def test_context_returns_neighbours_of_the_same_section(a):
    ans = a.ask("党员先锋模范作用", top_k=3)
    p = ans.passages[0]
    around = a.context(p, before=1, after=1)
    assert p in around and 1 <= len(around) <= 3
    assert all(n.citation.section == p.citation.section and n.citation.source == p.citation.source for n in around)
    lines = [n.citation.line_start for n in around]
    assert lines == sorted(lines)
    with pytest.raises(InvalidOptionError):
        a.context(p, before=-1)


def test_articles_listing(a):
    arts = a.articles()
    assert len([x for x in arts if x["kind"] == "article"]) == 9
    assert all(set(x) >= {"key", "source", "title", "authors", "kind"} for x in arts)


def test_many_threads_get_the_single_threaded_answers(a):
    qs = ["党建", "一岗双责", "两张皮", "工会工作", "思想政治工作", "北起院", "前置研究", "考核评价"] * 3
    want = {q: [p.chunk_id for p in a.ask(q).passages] for q in qs}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: (q, [p.chunk_id for p in a.ask(q).passages]), qs))
    assert all(ids == want[q] for q, ids in got)


def test_queries_during_a_rebuild_are_answered_from_the_old_index(a, corpus, fake_embedder):
    before = [p.chunk_id for p in a.ask("党建").passages]
    old_gen = store.current_generation(a.index_dir)
    started = threading.Event()
    real_encode = fake_embedder.encode_documents

    def slow_encode(texts, show_progress=False):
        started.set()
        time.sleep(0.3)
        return real_encode(texts)

    fake_embedder.encode_documents = slow_encode
    (corpus / "extra.txt").write_text("一段新增的关于党建工作与生产经营融合的材料。" * 5, encoding="utf-8")
    t = threading.Thread(target=a.rebuild)
    t.start()
    assert started.wait(30)
    t0 = time.perf_counter()
    during = [p.chunk_id for p in a.ask("党建").passages]
    assert time.perf_counter() - t0 < 0.5 and during == before
    t.join(60)
    assert store.current_generation(a.index_dir) != old_gen
    assert "extra.txt" in a.sources()


def test_open_without_rebuild_on_stale_index_fails_clearly(corpus, tmp_path, fake_embedder):
    Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    (corpus / "001_96c08fcecc05a0af.txt").unlink()
    from assistant.errors import IndexMismatchError
    with pytest.raises(IndexMismatchError, match="removed: 001_96c08fcecc05a0af.txt"):
        Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, rebuild=False)


def test_missing_corpus_is_a_clear_error(tmp_path, fake_embedder):
    from assistant.errors import CorpusError
    with pytest.raises(CorpusError, match="nowhere"):
        Assistant.open(tmp_path / "nowhere", index=tmp_path / "idx", embedder=fake_embedder)


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: (p / "empty").mkdir() or p / "empty",
                                  lambda p: (p / "f.txt").write_text("x") and p / "f.txt"])
def test_a_bad_corpus_folder_is_refused_before_the_model_loads(tmp_path, make):
    from index.errors import CorpusError

    # A model that cannot load: the corpus error must come first, without the seconds a real model takes.
    with pytest.raises(CorpusError, match="corpus|no .txt/.md files"):
        Assistant.open(make(tmp_path), index=tmp_path / "idx", model=str(tmp_path / "no-such-model"))
    assert not (tmp_path / "idx").exists()


def test_ask_is_a_sequence_of_named_stages_seen_through_trace(a):
    seen = []
    ans = a.ask("党建与生产经营如何融合？", trace=lambda stage, s: seen.append((stage, s)))
    stages = [s for s, _ in seen]
    assert stages == ["validate", "encode", "rank: dense", "rank: sentences", "rank: bm25", "rank: fusion",
                      "collapse", "evidence", "records"]
    assert all(s >= 0 for _, s in seen)
    assert sum(s for _, s in seen) <= ans.elapsed_ms / 1000 + 1e-3
    bm25_only = []
    a.ask("党建", mode="bm25", trace=lambda stage, s: bm25_only.append(stage))
    assert "rank: dense" not in bm25_only and "rank: bm25" in bm25_only


def test_traditional_question_gets_the_simplified_answer(a):
    simp = a.ask("什么是“一岗双责”？如何落实党建工作责任制？")
    trad = a.ask("什麼是“一崗雙責”？如何落實黨建工作責任制？")
    assert trad.question == "什麼是“一崗雙責”？如何落實黨建工作責任制？"     # shown as written
    assert [p.chunk_id for p in trad.passages] == [p.chunk_id for p in simp.passages]
    assert [p.confidence for p in trad.passages] == [p.confidence for p in simp.passages]
    assert trad.found == simp.found


def test_a_question_naming_a_document_the_corpus_lacks_is_not_found(a):
    ans = a.ask("《中央企业合规管理办法》要求设立首席合规官吗？")
    assert ans.found is False and all(p.confidence == "low" for p in ans.passages)
    assert "没有找到" in ans.message and ans.reason == "《中央企业合规管理办法》不在语料中"
    # the rule is about names: a title the corpus holds does not trigger it
    title = next(x["title"] for x in a.articles() if len(x["title"]) >= 6)
    assert a.loaded.holds_document(title)


def test_thresholds_are_the_index_own_unless_disabled(corpus, tmp_path, fake_embedder):
    from assistant import AskConfig

    own = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    assert own.thresholds().origin.startswith("self-calibrated")
    fixed = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False,
                           config=AskConfig(self_calibrate=False, found_support=0.5))
    assert fixed.thresholds().origin == "global" and fixed.thresholds().found == 0.5
