"""The runner end to end: fast with a fake assistant, and (slow) for real with `--limit 5`."""
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
    load_questions,
    manifest_sha256,
    render_markdown,
    run_eval,
    score,
    summarize,
    winners,
)

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ["baseline-bm25", "baseline-dense", "ours-hybrid", "ours-dense", "ours-bm25"]


CHUNKS = [("a.txt", "工会被称为职工的娘家人。"), ("a.txt", "党建考核与经营业绩考核有机结合。"),
          ("b.txt", "北起院2023年利润总额首次突破一亿元大关。")]


class FakeAssistant:
    """Ranks CHUNKS by shared characters; "bm25" mode returns them reversed, to tell modes apart."""

    manifest = {"format_version": 1, "n_chunks": len(CHUNKS)}
    model_name = "fake"

    def __init__(self, embedder):
        self.embedder = embedder
        self.calls = []

    def ask(self, question, top_k=None, mode="hybrid"):
        self.calls.append((question, top_k, mode))
        self.embedder.encode_queries([question])   # like the real ask: one query vector per call
        ranked = sorted(CHUNKS, key=lambda c: -len(set(question) & set(c[1])))
        best = len(set(question) & set(ranked[0][1]))
        if mode == "bm25":
            ranked = ranked[::-1]
        passages = tuple(SimpleNamespace(text=t, score=1.0, citation=SimpleNamespace(source=s))
                         for s, t in ranked[:top_k])
        return SimpleNamespace(found=best >= 4, passages=passages)


QUESTIONS = [
    Question("q001", "职工的娘家人是谁？", "direct", ("职工的娘家人",), "a.txt"),
    Question("q002", "党建考核如何与经营业绩结合？", "paraphrased", ("经营业绩考核有机结合",), "a.txt"),
    Question("q003", "What profit did Beiqi reach in 2023?", "english", ("利润总额首次突破",), "b.txt"),
    Question("q004", "光伏逆变器如何选型？", "unanswerable", (), ""),
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
    meta = run_eval(fake, QUESTIONS, tiny_corpus, out, questions_sha256="abc")
    data = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert list(data["rows"]) == SYSTEMS
    assert all([r["id"] for r in rows] == ["q001", "q002", "q003", "q004"] for rows in data["rows"].values())
    assert data["meta"]["index_manifest_sha256"] == manifest_sha256(FakeAssistant.manifest) == \
        meta["index_manifest_sha256"]
    assert data["meta"]["kinds"] == {"direct": 1, "paraphrased": 1, "english": 1, "unanswerable": 1}
    # Each of our modes was asked every question, for the top 10.
    assert sorted({m for _, _, m in fake.calls}) == ["bm25", "dense", "hybrid"]
    assert len(fake.calls) == 3 * len(QUESTIONS) and {k for _, k, _ in fake.calls} == {10}
    # ...but each question was embedded once, for all four dense systems, and the embedder is restored.
    assert fake_embedder.queries == [q.question for q in QUESTIONS] and fake.embedder is fake_embedder
    # Abstention exists for our modes only.
    assert "abstention" in data["summary"]["ours-hybrid"] and "abstention" not in data["summary"]["baseline-bm25"]
    md = (out / "latest.md").read_text(encoding="utf-8")
    for needle in ("## direct (n=1)", "## all answerable questions (n=3)", "## Abstention",
                   "## Winner per kind", "| ours-bm25 |", "hit_at_k.png"):
        assert needle in md, needle
    assert (out / "hit_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_modes_are_scored_separately(tiny_corpus, tmp_path, fake_embedder):
    run_eval(FakeAssistant(fake_embedder), QUESTIONS[:1], tiny_corpus, tmp_path)
    rows = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))["rows"]
    assert rows["ours-hybrid"][0]["rank"] == 1 and rows["ours-hybrid"][0]["mrr@10"] == 1.0
    assert rows["ours-bm25"][0]["rank"] == 3 and rows["ours-bm25"][0]["mrr@10"] == pytest.approx(1 / 3)


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
    row = score(q, Retrieval(("无关的文字", "职工的 娘家人"), True, 1.234))
    assert (row["rank"], row["hit@1"], row["hit@5"], row["chars_before_first_hit"]) == (2, 0.0, 1.0, 5)
    assert row["mean_passage_chars"] == 5.5 and row["found"] is True
    un = score(QUESTIONS[3], Retrieval(("任何文字",), False, 0.0))
    assert un["rank"] is None and un["mrr@10"] is None and un["found"] is False


def test_summary_winners_and_markdown_handle_ties_and_nan():
    rows = {
        "a": [score(QUESTIONS[0], Retrieval(("职工的娘家人",), None, 1.0))],
        "b": [score(QUESTIONS[0], Retrieval(("职工的娘家人",), True, 1.0))],
    }
    summary = summarize(rows)
    assert winners(summary) == {"direct": "a = b", "all": "a = b"}
    # b answered the only (answerable) question: it never abstained, so precision is undefined.
    assert math.isnan(summary["b"]["abstention"]["precision"])
    meta = {"finished_utc": "now", "elapsed_s": 1.0, "n_questions": 1, "kinds": {"direct": 1},
            "questions_sha256": "0" * 64, "corpus": "seeds", "index_manifest_sha256": "f" * 64, "model": "fake"}
    md = render_markdown(summary, meta)
    assert "| b | — | — | 0 | 0 |" in md and "- direct: **a = b**" in md


def test_load_questions_reads_the_real_set():
    questions = load_questions()
    assert len(questions) >= 130 and questions[0].id == "q001"


def test_load_questions_names_the_bad_line(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": "q001", "question": "x", "kind": "direct", "anchors": [], "source": ""}\n'
                   '{"id": "q002", "question": "y", "kind": "guess", "anchors": [], "source": ""}\n',
                   encoding="utf-8")
    with pytest.raises(ValueError, match=r"q.jsonl:2: kind must be one of .*got 'guess'"):
        load_questions(bad)


@pytest.mark.slow
def test_runner_smoke_with_the_real_assistant(tmp_path):
    """`python -m eval.run --limit 5` with the real model, into a fresh output folder.

    It uses the assistant's default index (as `make eval` does): built once, then reused."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "eval.run", "--limit", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert data["meta"]["n_questions"] == 5 and len(data["meta"]["index_manifest_sha256"]) == 64
    assert list(data["rows"]) == SYSTEMS and all(len(r) == 5 for r in data["rows"].values())
    assert "## Winner per kind" in (out / "latest.md").read_text(encoding="utf-8")
    assert (out / "hit_at_k.png").stat().st_size > 1000
