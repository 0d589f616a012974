"""Tune the fusion knobs and the "not found" threshold on eval/questions.jsonl.

    python -m eval.tune [--index DIR]

Every variant runs the real `Assistant.ask` (query vectors cached, so a variant costs no model calls) and is
scored with the same metrics as eval/run.py. Prints one line per variant, best MRR@10 last, and the abstention
precision/recall of candidate thresholds on the best passage's cosine.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from eval.metrics import first_hit_rank, mrr_at_k

ROOT = Path(__file__).resolve().parents[1]


class CachedQueries:
    """Wraps an embedder so each question is encoded once across all variants."""

    def __init__(self, inner):
        self.inner, self.cache = inner, {}
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint

    def encode_queries(self, texts):
        missing = [t for t in texts if t not in self.cache]
        if missing:
            for t, v in zip(missing, self.inner.encode_queries(missing)):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts])

    def encode_documents(self, texts, show_progress=False):
        return self.inner.encode_documents(texts, show_progress)


def load_questions(path: Path = ROOT / "eval" / "questions.jsonl") -> list[dict]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def score(a, questions, **knobs) -> dict:
    a.config = dataclasses.replace(a.config, **knobs)
    by_kind: dict[str, list[float]] = {}
    for q in questions:
        if not q["anchors"]:
            continue
        ans = a.ask(q["question"], top_k=10)
        rank = first_hit_rank([p.text for p in ans.passages], q["anchors"])
        by_kind.setdefault(q["kind"], []).append(mrr_at_k(rank, 10))
    out = {k: float(np.mean(v)) for k, v in sorted(by_kind.items())}
    out["all"] = float(np.mean([x for v in by_kind.values() for x in v]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default=None)
    args = ap.parse_args()
    from assistant.api import Assistant

    a = Assistant.open(ROOT / "seeds", index=args.index, progress=False)
    a.embedder = CachedQueries(a.embedder)
    questions = load_questions()
    base = a.config
    rows = []
    for ws, wb, k in itertools.product((0.0, 0.5, 1.0), (1.0, 2.0, 3.0), (10, 60)):
        rows.append((f"rrf ws={ws} wb={wb} k={k}", score(a, questions, sentence_weight=ws, bm25_weight=wb, rrf_k=k)))
    for name, s in sorted(rows, key=lambda r: r[1]["all"]):
        print(f"{name:32s} " + " ".join(f"{k}={v:.3f}" for k, v in s.items()))
    a.config = base

    # "Not found": the best support among the top passages, answerable vs unanswerable, per script.
    from assistant.api import is_latin

    ask_top_k = 5
    table = []
    for q in questions:
        ans = a.ask(q["question"], top_k=ask_top_k)
        snap = a._snapshot
        rows_ = {c.id: i for i, c in enumerate(snap.stored.chunks)}
        qv = a.embedder.encode_queries([ans.question])[0]
        terms = set(snap.tokenizer(ans.question))
        latin = is_latin(ans.question)
        best = max((a._evidence(snap, rows_[p.chunk_id], qv, terms, latin)[0] for p in ans.passages), default=0.0)
        table.append((latin, best, bool(q["anchors"])))
    for latin, grid in ((False, np.arange(0.88, 0.95, 0.005)), (True, np.arange(0.74, 0.82, 0.005))):
        sub = [(b, y) for la, b, y in table if la == latin]
        best_ = np.array([b for b, _ in sub])
        labels = np.array([y for _, y in sub])
        print(f"{'English' if latin else 'Chinese'} questions: {labels.sum()} answerable, {(~labels).sum()} not")
        for t in grid:
            abstain = best_ < t
            tp = (abstain & ~labels).sum()
            print(f"  support >= {t:.3f}: abstention precision {tp / max(1, abstain.sum()):.2f} "
                  f"recall {tp / max(1, (~labels).sum()):.2f}; answerable kept {(~abstain & labels).sum() / labels.sum():.2f}")


if __name__ == "__main__":
    main()
