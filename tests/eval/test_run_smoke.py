"""The runner end to end: fast with a fake assistant over tiny corpora, and (slow) for real with `--limit 5`."""
import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from eval.run import (
    Question,
    QueryCache,
    Retrieval,
    _payload,
    load_meta,
    load_questions,
    loco_splits,
    main,
    manifest_sha256,
    question_records,
    render_markdown,
    run_corpus,
    run_eval,
    score,
    structure_metrics,
    summarize,
    winners,
    write_results,
)

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ["baseline-bm25", "baseline-dense", "ours-hybrid", "ours-dense", "ours-bm25"]


CHUNKS = [("a.txt", "工会被称为职工的娘家人。"), ("a.txt", "党建考核与经营业绩考核有机结合。"),
          ("b.txt", "北起院2023年利润总额首次突破一亿元大关。")]


def _chunk(i, source, text, title="", authors=(), fallback=False, article=0):
    return SimpleNamespace(id=f"c{i}", source=source, article=article, title=title, title_is_fallback=fallback,
                           authors=tuple(authors), text=text)


class FakeAssistant:
    """Ranks CHUNKS by shared characters; "bm25" mode returns them reversed, to tell modes apart."""

    manifest = {"format_version": 1, "n_chunks": len(CHUNKS)}
    model_name = "fake"

    def __init__(self, embedder, chunks=CHUNKS):
        self.embedder = embedder
        self.calls = []
        self.chunks = chunks
        self.loaded = SimpleNamespace(stored=SimpleNamespace(chunks=[
            _chunk(i, s, t, title="工会的娘家人" if s == "a.txt" else "北起院", authors=("张三",) if s == "a.txt" else ())
            for i, (s, t) in enumerate(chunks)]))

    def ask(self, question, top_k=None, mode="hybrid"):
        self.calls.append((question, top_k, mode))
        self.embedder.encode_queries([question])   # like the real ask: one query vector per call
        ranked = sorted(self.chunks, key=lambda c: -len(set(question) & set(c[1])))
        best = len(set(question) & set(ranked[0][1]))
        if mode == "bm25":
            ranked = ranked[::-1]
        passages = tuple(SimpleNamespace(chunk_id=f"id-{t[:2]}", text=t, score=1.0, confidence="high",
                                         citation=SimpleNamespace(source=s)) for s, t in ranked[:top_k])
        return SimpleNamespace(found=best >= 4, passages=passages, support=0.5 + best / 100)


QUESTIONS = [
    Question("q001", "职工的娘家人是谁？", "direct", ("职工的娘家人",), "a.txt"),
    Question("q002", "党建考核如何与经营业绩结合？", "paraphrased", ("经营业绩考核有机结合",), "a.txt"),
    Question("q003", "What profit did Beiqi reach in 2023?", "english", ("利润总额首次突破",), "b.txt"),
    Question("q004", "光伏逆变器如何选型？", "unanswerable", (), ""),
]
META = [
    {"path": "a.txt", "genre": "article", "title": "工会的娘家人", "title_stated": True, "authors": ["张三", "李四"]},
    {"path": "b.txt", "genre": "news", "title": "北起院利润", "title_stated": True, "authors": []},
]


@pytest.fixture
def tiny_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for source in {s for s, _ in CHUNKS}:
        (corpus / source).write_text("\n\n".join(t for s, t in CHUNKS if s == source), encoding="utf-8")
    return corpus


def test_run_eval_writes_three_files_with_every_system_on_every_question(tiny_corpus, tmp_path, fake_embedder):
    fake = FakeAssistant(fake_embedder)
    out = tmp_path / "results"
    run_eval(fake, QUESTIONS, tiny_corpus, out, name="tiny", meta=META, questions_sha256="abc")
    data = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    block = data["corpora"]["tiny"]
    assert list(block["rows"]) == SYSTEMS
    assert all([r["id"] for r in rows] == ["q001", "q002", "q003", "q004"] for rows in block["rows"].values())
    assert block["meta"]["index_manifest_sha256"] == manifest_sha256(FakeAssistant.manifest)
    assert block["meta"]["kinds"] == {"direct": 1, "paraphrased": 1, "english": 1, "unanswerable": 1}
    # Each of our modes was asked every question, for the top 10.
    assert sorted({m for _, _, m in fake.calls}) == ["bm25", "dense", "hybrid"]
    assert len(fake.calls) == 3 * len(QUESTIONS) and {k for _, k, _ in fake.calls} == {10}
    # ...but each question was embedded once, for all four dense systems, and the embedder is restored.
    assert fake_embedder.queries == [q.question for q in QUESTIONS] and fake.embedder is fake_embedder
    # Abstention exists for our modes only; genre and format come from the metadata of the gold file.
    assert "abstention" in block["summary"]["ours-hybrid"] and "abstention" not in block["summary"]["baseline-bm25"]
    assert set(block["summary"]["ours-hybrid"]["by_genre"]) == {"article", "news", "all"}
    assert block["summary"]["ours-hybrid"]["by_format"]["txt"]["n"] == 3
    md = (out / "latest.md").read_text(encoding="utf-8")
    for needle in ("## Corpus `tiny`", "### MRR@10 by question kind", "### MRR@10 by genre of the gold document",
                   "### Abstention", "### Structure", "### Winner per kind", "| ours-bm25 |", "hit_at_k.png",
                   "#### all answerable questions (n=3)"):
        assert needle in md, needle
    assert (out / "hit_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rows_keep_what_a_tuner_needs(tiny_corpus, tmp_path, fake_embedder):
    seen = []
    block = run_corpus(FakeAssistant(fake_embedder), QUESTIONS[:1], tiny_corpus,
                       probe=lambda a, q, ans: seen.append(q) or {"n": len(ans.passages)})
    row = block["rows"]["ours-hybrid"][0]
    assert row["support"] == pytest.approx(0.5 + len(set("职工的娘家人是谁？") & set(CHUNKS[0][1])) / 100)
    assert row["probe"] == {"n": 3} and seen == ["职工的娘家人是谁？"] * 3   # one probe call per mode
    first = row["passages"][0]
    assert (first["chunk_id"], first["source"], first["confidence"], first["hit"]) == ("id-工会", "a.txt", "high", True)
    assert [p["hit"] for p in row["passages"]] == [True, False, False]
    base = block["rows"]["baseline-bm25"][0]["passages"]
    assert base[0]["chunk_id"] is None and base[0]["source"] == "a.txt" and isinstance(base[0]["score"], float)


def test_modes_are_scored_separately(tiny_corpus, tmp_path, fake_embedder):
    block = run_corpus(FakeAssistant(fake_embedder), QUESTIONS[:1], tiny_corpus)
    rows = block["rows"]
    assert rows["ours-hybrid"][0]["rank"] == 1 and rows["ours-hybrid"][0]["mrr@10"] == 1.0
    assert rows["ours-bm25"][0]["rank"] == 3 and rows["ours-bm25"][0]["mrr@10"] == pytest.approx(1 / 3)


def test_two_corpora_in_one_report_and_loco_splits(tiny_corpus, tmp_path, fake_embedder):
    other = tmp_path / "other"
    other.mkdir()
    (other / "page.html").write_text("<html><body><p>北起院2023年利润总额首次突破一亿元大关。</p>"
                                     "<script>var x=1;</script></body></html>", encoding="utf-8")
    one = run_corpus(FakeAssistant(fake_embedder), QUESTIONS, tiny_corpus, meta=META)
    two = run_corpus(FakeAssistant(fake_embedder, [("page.html", CHUNKS[2][1])]), QUESTIONS[2:], other)
    data = _payload({"seeds": one, "dev": two}, "fake", 0.0, [{"name": "x", "reason": "no folder /x"}])
    write_results(tmp_path / "out", data)
    md = (tmp_path / "out" / "latest.md").read_text(encoding="utf-8")
    assert "## Corpus `seeds`" in md and "## Corpus `dev`" in md and "Corpus `x` skipped: no folder /x." in md
    # The html baseline window is the page's visible text only.
    assert two["rows"]["baseline-bm25"][0]["passages"][0]["source"] == "page.html"
    assert two["meta"]["baseline"]["n_windows"] == 1 and two["meta"]["baseline"]["junk_windows"] == 0
    records = question_records(json.loads((tmp_path / "out" / "latest.json").read_text(encoding="utf-8")))
    assert {k: len(v) for k, v in records.items()} == {"seeds": 4, "dev": 2}
    splits = loco_splits(records)
    assert [(held, len(fit), len(test)) for held, fit, test in splits] == [("seeds", 2, 4), ("dev", 4, 2)]
    with pytest.raises(ValueError, match="at least two corpora"):
        loco_splits({"seeds": records["seeds"]})
    with pytest.raises(KeyError, match="no system 'nope'"):
        question_records(data, "nope")


def test_structure_metrics_count_titles_authors_and_junk():
    chunks = [_chunk(0, "a.txt", "正文一。", title="《工会的娘家人》", authors=("张三",)),
              _chunk(1, "a.txt", "首页 > 新闻 > 正文"),                                  # navigation
              _chunk(2, "b.txt", "正文二。", title="第一章", fallback=True),
              _chunk(3, "b.txt", "下一段。", title="另一篇", article=1)]                    # a second segment
    s = structure_metrics(chunks, META)
    assert (s["all"]["titles_correct"], s["all"]["titles_stated"]) == (1, 2)   # b's title was not found
    assert s["all"]["titles_exact"] == 1
    assert (s["all"]["authors_found"], s["all"]["authors"]) == (1, 2)
    assert (s["all"]["chunks"], s["all"]["junk_chunks"]) == (4, 1)
    assert s["by_genre"]["article"]["junk_chunks"] == 1 and s["by_genre"]["news"]["junk_chunks"] == 0
    assert (s["all"]["files_segmented_as_expected"], s["all"]["files"]) == (1, 2)   # b split in two
    assert s["junk_reasons"] == {"navigation: breadcrumb": 1} and s["junk_examples"][0]["chunk_id"] == "c1"
    assert s["by_format"]["txt"]["title_accuracy"] == 0.5
    assert [d["got_title"] for d in s["documents"]] == ["《工会的娘家人》", ""]


def test_exact_title_accepts_only_the_documents_own_title():
    meta = [{"path": "a.txt", "genre": "regulation", "title": "中国共产党纪律处分条例", "title_stated": True,
             "title_alternates": ["中国共产党纪律处分条例 2023"], "authors": []}]
    s = structure_metrics([_chunk(0, "a.txt", "第一条　正文。", title="中国共产党纪律处分条例 2023")], meta)
    assert (s["all"]["titles_correct"], s["all"]["titles_exact"]) == (1, 0)


def test_query_cache_embeds_each_text_once_and_returns_the_same_vectors(fake_embedder):
    cache = QueryCache(fake_embedder)
    want = fake_embedder.encode_queries(["甲乙", "丙丁"])
    fake_embedder.queries.clear()
    got = cache.encode_queries(["甲乙", "丙丁", "甲乙"])
    cache.encode_queries(["丙丁"])
    assert fake_embedder.queries == ["甲乙", "丙丁"]
    assert np.array_equal(got, np.stack([want[0], want[1], want[0]]))
    assert cache.dim == fake_embedder.dim                     # everything else is delegated
    assert cache.encode_documents(["甲乙"]).shape == (1, fake_embedder.dim)


def test_score_rows():
    q = QUESTIONS[0]
    row = score(q, Retrieval(("无关的文字", "职工的 娘家人"), True, 1.234), labels={"a.txt": {"genre": "article",
                                                                                     "format": "txt"}})
    assert (row["rank"], row["hit@1"], row["hit@5"], row["chars_before_first_hit"]) == (2, 0.0, 1.0, 5)
    assert row["mean_passage_chars"] == 5.5 and row["found"] is True
    assert (row["genre"], row["format"]) == ("article", "txt") and [p["hit"] for p in row["passages"]] == [False, True]
    un = score(QUESTIONS[3], Retrieval(("任何文字",), False, 0.0))
    assert un["rank"] is None and un["mrr@10"] is None and un["found"] is False and un["genre"] is None


def test_summary_winners_and_markdown_handle_ties_and_nan():
    rows = {
        "a": [score(QUESTIONS[0], Retrieval(("职工的娘家人",), None, 1.0))],
        "b": [score(QUESTIONS[0], Retrieval(("职工的娘家人",), True, 1.0))],
    }
    summary = summarize(rows)
    assert winners(summary) == {"direct": "a = b", "all": "a = b"}
    # b answered the only (answerable) question: it never abstained, so precision is undefined.
    assert math.isnan(summary["b"]["abstention"]["precision"])
    meta = {"elapsed_s": 1.0, "n_questions": 1, "kinds": {"direct": 1}, "questions_sha256": "0" * 64,
            "corpus": "seeds", "index_manifest_sha256": "f" * 64, "model": "fake", "baseline": {}}
    data = {"meta": {"finished_utc": "now", "elapsed_s": 1.0, "model": "fake"},
            "corpora": {"seeds": {"meta": meta, "summary": summary, "winners": winners(summary), "rows": rows}}}
    md = render_markdown(data)
    assert "| b | — | — | — | 0 | 0 | none |" in md and "- direct: **a = b**" in md


def test_abstention_reports_recall_on_near_domain_traps():
    trap = Question("q9", "《某某办法》要求什么？", "unanswerable", (), "", note="near-domain trap: not held")
    other = Question("q8", "如何用Python读取Excel文件？", "unanswerable", (), "", note="out of domain")
    rows = {"ours": [score(trap, Retrieval(("x",), True, 0.0)), score(other, Retrieval(("x",), False, 0.0)),
                     score(QUESTIONS[0], Retrieval(("职工的娘家人",), True, 0.0))]}
    a = summarize(rows)["ours"]["abstention"]
    assert (a["traps"], a["recall_traps"], a["recall"]) == (1, 0.0, 0.5)


def test_load_questions_reads_both_real_sets():
    seeds = load_questions()
    dev = load_questions(ROOT / "eval" / "dev_questions.jsonl")
    assert len(seeds) >= 130 and seeds[0].id == "q001"
    assert len(dev) >= 180 and dev[0].id == "d-01"


def test_load_questions_names_the_bad_line(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "q001", "question": "x", "kind": "direct", "anchors": [], "source": ""}\n'
                   '{"id": "q002", "question": "y", "kind": "guess", "anchors": [], "source": ""}\n',
                   encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:2: kind must be one of .*got 'guess'"):
        load_questions(bad)


def test_load_meta_reads_the_real_files_and_names_a_bad_one(tmp_path):
    assert len(load_meta(ROOT / "eval" / "dev_meta.json")) == 38
    assert len(load_meta(ROOT / "eval" / "seeds_meta.json")) == 11
    bad = tmp_path / "m.json"
    bad.write_text('{"documents": [{"path": "a.txt"}]}', encoding="utf-8")
    with pytest.raises(ValueError, match="m.json: document 'a.txt' lacks path, genre, title or authors"):
        load_meta(bad)


@pytest.mark.parametrize("argv, message", [
    (["--corpora", "seeds,nope"], "--corpora: unknown nope; choose from seeds, dev"),
    (["--questions", "q.jsonl"], "--questions, --meta and --index go with --corpus"),
    (["--limit", "0"], "--limit must be a positive integer, got 0"),
])
def test_main_rejects_bad_arguments_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_runner_smoke_with_the_real_assistant(tmp_path):
    """`python -m eval.run --corpora seeds --limit 5` with the real model, into a fresh output folder.

    It uses the assistant's default index (as `make eval` does): built once, then reused."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "eval.run", "--corpora", "seeds", "--limit", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    block = data["corpora"]["seeds"]
    assert block["meta"]["n_questions"] == 5 and len(block["meta"]["index_manifest_sha256"]) == 64
    assert list(block["rows"]) == SYSTEMS and all(len(r) == 5 for r in block["rows"].values())
    assert block["structure"]["all"]["documents"] == 11
    assert "### Winner per kind" in (out / "latest.md").read_text(encoding="utf-8")
    assert (out / "hit_at_k.png").stat().st_size > 1000
