"""The public Python API: `Assistant.open(...)` then `ask(...)` for cited passages.

Loads the model once, brings the index up to date, and answers from an immutable in-memory snapshot of it,
so many threads can ask at once and a rebuild swaps the snapshot without making anyone wait.
"""
from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant import evidence, retrieve
from assistant.cite import citation_for
from assistant.errors import (EmptyQueryError, InvalidOptionError, QueryTooLongError,
                              UnknownSourceError)
from assistant.records import Answer, Passage
from index import dense, store
from index.build import BuildConfig, BuildReport, ensure_index
from index.tokenize import Tokenizer

log = logging.getLogger("assistant")
# What opening does and how long it takes: `assistant serve` shows these lines, one-shot commands do not.
startup_log = logging.getLogger("assistant.startup")

MODES = ("hybrid", "dense", "bm25")
BLOCKS = ("body", "abstract", "keywords", "front", "references", "caption", "bio")
NOT_FOUND = "语料中没有找到可靠的答案；以下是最接近的段落，仅供参考。"
FOUND = "找到 {n} 段相关原文（按相关度排序）。"

EXAMPLE_QUESTIONS = (
    "如何把党组织前置研究程序融入公司治理？",
    "什么是“一岗双责”？",
    "党建与生产经营“两张皮”问题的根源是什么？",
    "如何发挥党员先锋模范作用推动生产经营？",
    "北起院哪一年利润总额首次突破一亿元？",
    "How can Party building be integrated with business operations in state-owned enterprises?",
)


@dataclass(frozen=True, slots=True)
class AskConfig:
    """Query-time knobs; the defaults were tuned on eval/questions.jsonl (see eval/results/latest.md)."""
    top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 2000
    candidates: int = 60           # per retriever, before fusion
    # Weighted RRF: on the eval set BM25's ranking deserved twice the dense one's weight, and a small k
    # (trusting the first ranks) beat the customary 60 (python -m eval.tune).
    rrf_k: int = 10
    dense_weight: float = 1.0
    # A question's best-matching sentence ranks passages too; across languages it is the strongest signal.
    sentence_weight: float = 0.5
    sentence_weight_latin: float = 2.0
    bm25_weight: float = 2.0
    duplicate_jaccard: float = 0.8
    demoted_blocks: tuple[str, ...] = ("references", "caption", "bio")
    # e5 rates an English question closer to any English text (here: the one English abstract) than to the
    # Chinese passage that answers it; this much cosine is taken off same-script matches for Latin questions.
    latin_penalty: float = 0.06
    # "Not found" and the confidence labels. Support of a passage = its best sentence's cosine to the question
    # + coverage_weight x the share of the question's terms it contains. A question is answered when the best
    # support reaches found_support (Chinese) or found_support_latin (English: no shared terms, lower cosines).
    # Calibrated on the answerable vs unanswerable eval questions (python -m eval.tune).
    coverage_weight: float = 0.06
    found_support: float = 0.92
    found_support_latin: float = 0.775
    high_margin: float = 0.03


MEMO_MAX = 4096   # chunks whose ask-time work is remembered; far more than the candidates of many asks


def _remember(memo: dict, key, value) -> None:
    if len(memo) >= MEMO_MAX:
        memo.clear()     # start over rather than track recency: refilling costs ~0.2 ms a chunk
    memo[key] = value


@dataclass(frozen=True)
class _Snapshot:
    """One loaded index and what is derived from it; replaced as a whole, never mutated."""
    stored: store.StoredIndex
    tokenizer: Tokenizer
    sentence_starts: np.ndarray                      # first sentence row of each chunk (len n + 1)
    sentence_index: object                           # faiss index over the sentence vectors
    by_source: dict[str, np.ndarray]
    by_article: dict[str, np.ndarray]
    blocks: np.ndarray                               # block kind of each chunk (str array)
    latin: np.ndarray                                # bool: the chunk is mostly Latin script
    # Memos of per-chunk work done at ask time, for the chunks asks actually return. Bounded: at a million
    # chunks, memos of every chunk would outgrow the index itself (bigram sets ~12 KB a chunk).
    terms_cache: dict = field(default_factory=dict)  # row -> term sets of its sentences
    bigrams_cache: dict = field(default_factory=dict)  # row -> character bigrams

    def bigrams(self, row: int) -> frozenset[str]:
        """Character bigrams of chunk `row`, for the near-duplicate test; computed when first compared."""
        grams = self.bigrams_cache.get(row)
        if grams is None:
            grams = retrieve.char_bigrams(self.stored.chunks[row].text)
            _remember(self.bigrams_cache, row, grams)
        return grams

    def sentence_terms(self, row: int) -> list[set[str]]:
        """The jieba terms of each sentence of chunk `row`; cut once, then reused (jieba is most of a query's cost)."""
        terms = self.terms_cache.get(row)
        if terms is None:
            text = self.stored.chunks[row].text
            a, b = self.sentence_starts[row], self.sentence_starts[row + 1]
            terms = [set(self.tokenizer(text[s:e])) for s, e in self.stored.sentences[a:b, 1:]]
            _remember(self.terms_cache, row, terms)   # a race only computes the same value twice
        return terms

    @classmethod
    def of(cls, stored: store.StoredIndex) -> "_Snapshot":
        chunks = stored.chunks
        counts = np.bincount(stored.sentences[:, 0], minlength=len(chunks)) if len(stored.sentences) else \
            np.zeros(len(chunks), np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        by_source: dict[str, list[int]] = {}
        by_article: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_source.setdefault(c.source, []).append(i)
            by_article.setdefault(f"{c.source}#{c.article}", []).append(i)
        sentence_index = dense.flat_index(stored.sentence_vectors)
        return cls(stored, Tokenizer(list(stored.terms)), starts, sentence_index,
                   {k: np.asarray(v) for k, v in by_source.items()},
                   {k: np.asarray(v) for k, v in by_article.items()},
                   np.asarray([c.block for c in chunks]), np.asarray([is_latin(c.text) for c in chunks]))


class Assistant:
    """Cited lookups over one corpus. Create it with `Assistant.open()`; share one instance between threads."""

    def __init__(self, corpus: Path, index_dir: Path, embedder, model_name: str, config: AskConfig,
                 build_config: BuildConfig):
        self.corpus = corpus
        self.index_dir = index_dir
        self.embedder = embedder
        self.model_name = model_name
        self.config = config
        self.build_config = build_config
        self._snapshot: _Snapshot | None = None
        self._rebuild_lock = threading.Lock()

    # ---------------------------------------------------------------- opening and rebuilding
    @classmethod
    def open(cls, corpus: str | Path = "seeds", index: str | Path | None = None, model: str | None = None,
             rebuild: bool = True, *, embedder=None, config: AskConfig | None = None,
             build_config: BuildConfig | None = None, cache_dir: str | Path | None = None,
             progress: bool | None = None) -> "Assistant":
        """Load the model once and open the index of `corpus`, building or updating it when needed.

        corpus: a folder of .txt/.md files. index: where the index lives (default: a folder per corpus in
        the user cache). model: a sentence-transformers name or folder (default: the bundled
        multilingual-e5-small). rebuild=False raises IndexMismatchError instead of updating a stale index.
        embedder: an already loaded Embedder (tests pass a fake; the model argument is then ignored).
        """
        from index.corpus import check_corpus
        from index.embed import BUNDLED, load_embedder

        corpus = Path(corpus).expanduser().resolve()
        check_corpus(corpus)     # a wrong folder is told at once, not after seconds of model loading
        cache = Path(cache_dir).expanduser() if cache_dir else None
        index_dir = Path(index).expanduser().resolve() if index else store.default_index_dir(corpus, cache)
        t0 = time.perf_counter()
        if embedder is None:
            startup_log.info("loading the embedding model %s ...", model or BUNDLED)
            embedder = load_embedder(model, cache_dir=cache)
            model_name = embedder.name
            startup_log.info("      model loaded in %.1f s", time.perf_counter() - t0)
        else:
            model_name = getattr(embedder, "name", model or BUNDLED)
        self = cls(corpus, index_dir, embedder, model_name, config or AskConfig(), build_config or BuildConfig())
        startup_log.info("checking the index of %s ...", corpus)
        report = self._ensure(force=False, rebuild=rebuild, progress=progress)
        (log if report.built else startup_log).info("      %s", report.summary())
        self._snapshot = _Snapshot.of(store.load(index_dir))
        return self

    def _ensure(self, force: bool, rebuild: bool, progress: bool | None, on_progress=None) -> BuildReport:
        return ensure_index(self.corpus, self.index_dir, lambda: self.embedder, self.model_name,
                            self.build_config, force=force, rebuild=rebuild,
                            fingerprint=self.embedder.fingerprint, progress=progress, on_progress=on_progress)

    def rebuild(self, force: bool = False, progress: bool | None = None, on_progress=None) -> BuildReport:
        """Bring the index up to date with the corpus; queries meanwhile are answered from the old snapshot.

        on_progress(stage, done, total): told each step of the build (see `index.build.ensure_index`)."""
        with self._rebuild_lock:
            report = self._ensure(force=force, rebuild=True, progress=progress, on_progress=on_progress)
            if report.built:
                self._snapshot = _Snapshot.of(store.load(self.index_dir))
        return report

    def warm_up(self) -> None:
        """Do now the one-off work of a first question (tracing the model, jieba's dictionary), not on it."""
        warm = getattr(self.embedder, "warm_up", None)
        if warm is not None:
            warm()
        self._snapshot.tokenizer("党建")

    @property
    def manifest(self) -> dict:
        return self._snapshot.stored.manifest

    # ---------------------------------------------------------------- questions
    def ask(self, question: str, top_k: int | None = None, *, sources: Sequence[str] | None = None,
            articles: Sequence[str] | None = None, include: Sequence[str] = (),
            mode: str | None = None) -> Answer:
        """The passages that answer `question`, best first, each with evidence highlights and a citation.

        top_k: 1..50 passages (default 5). sources: file names (relative to the corpus) to search in;
        articles: article keys "file#n" (see `articles()`). include: block kinds normally ranked below body
        text ("references", "caption", "bio") to rank like body text. mode: "hybrid" (default), "dense" or
        "bm25", for evaluation.
        """
        t0 = time.perf_counter()
        cfg = self.config
        question = self._check_question(question)
        top_k = self._check_top_k(cfg.top_k if top_k is None else top_k)
        mode = mode or "hybrid"
        if mode not in MODES:
            raise InvalidOptionError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        include = self._check_include(include)
        snap = self._snapshot
        allowed = self._allowed(snap, sources, articles)

        qvec = np.asarray(self.embedder.encode_queries([question])[0], dtype=np.float32)
        terms = snap.tokenizer(question)
        latin = is_latin(question)
        rankings, weights = [], []
        if mode in ("hybrid", "dense"):
            dist, ids = retrieve.dense_ranking(snap.stored.dense, qvec, cfg.candidates, allowed)
            if latin:
                dist = dist - cfg.latin_penalty * snap.latin[ids]
                ids = ids[np.lexsort((ids, -dist))]
            rankings.append(ids)
            weights.append(cfg.dense_weight)
            rankings.append(self._sentence_ranking(snap, qvec, allowed, latin))
            weights.append(cfg.sentence_weight_latin if latin else cfg.sentence_weight)
        if mode in ("hybrid", "bm25"):
            _, ids = retrieve.sparse_ranking(_bm25_scores(snap, terms), cfg.candidates, allowed)
            rankings.append(ids)
            weights.append(cfg.bm25_weight)
        scores, ids = retrieve.rrf(rankings, weights, cfg.rrf_k)
        if len(ids) and cfg.demoted_blocks:
            demoted = np.isin(snap.blocks[ids], [b for b in cfg.demoted_blocks if b not in include])
            order = np.lexsort((-scores, demoted))   # body text first, fused order within each group
            scores, ids = scores[order], ids[order]
        ids = _one_per_front_block(snap, ids)
        head = ids[: top_k * 3]
        kept = retrieve.collapse_duplicates(head, (snap.bigrams(i) for i in head.tolist()), cfg.duplicate_jaccard,
                                            limit=top_k)
        score_of = dict(zip(ids.tolist(), scores.tolist()))

        threshold = cfg.found_support_latin if latin else cfg.found_support
        term_set = set(terms)
        evidence_of = [self._evidence(snap, int(i), qvec, term_set, latin) for i in kept]
        found = any(support >= threshold for support, _ in evidence_of)
        passages = []
        for i, (support, spans) in zip(kept, evidence_of):
            chunk = snap.stored.chunks[int(i)]
            label = evidence.confidence(support, threshold + cfg.high_margin, threshold) if found else "low"
            passages.append(Passage(chunk.id, chunk.text, score_of[int(i)], label, spans, chunk.block,
                                    citation_for(chunk)))
        message = FOUND.format(n=len(passages)) if found else NOT_FOUND
        return Answer(question, found, tuple(passages), message, (time.perf_counter() - t0) * 1000)

    def _sentence_ranking(self, snap: _Snapshot, qvec: np.ndarray, allowed: np.ndarray | None,
                          latin: bool) -> np.ndarray:
        """Chunks ranked by their best sentence's cosine to the question (ids, best first).

        A question usually matches one sentence of a passage; the whole passage's vector dilutes that match,
        most of all across languages (eval: MRR@10 of English questions 0.20 by passage vectors, 0.40 by
        best sentence).
        """
        cfg = self.config
        rows = snap.stored.sentences[:, 0]
        if allowed is not None:
            starts = snap.sentence_starts
            allowed = np.concatenate([np.arange(starts[r], starts[r + 1]) for r in allowed] or [np.zeros(0, int)])
        dist, sids = retrieve.dense_ranking(snap.sentence_index, qvec, cfg.candidates * 4, allowed)
        if latin:
            dist = dist - cfg.latin_penalty * snap.latin[rows[sids]]
        return retrieve.group_ranking(dist, rows[sids], cfg.candidates)[1]

    def _evidence(self, snap: _Snapshot, row: int, qvec: np.ndarray, terms: set[str],
                  latin: bool) -> tuple[float, tuple[tuple[int, int], ...]]:
        """(support, highlight spans) of one chunk: how well its best sentence answers, and which to mark."""
        a, b = snap.sentence_starts[row], snap.sentence_starts[row + 1]
        spans = snap.stored.sentences[a:b, 1:]
        if b == a:
            return 0.0, ()
        sent_terms = snap.sentence_terms(row)
        scores = evidence.sentence_scores(qvec, snap.stored.sentence_vectors[a:b], terms, sent_terms)
        cos = snap.stored.sentence_vectors[a:b] @ qvec
        if latin and snap.latin[row]:
            cos = cos - self.config.latin_penalty
        coverage = len(terms & set().union(*sent_terms)) / len(terms) if terms else 0.0
        support = float(cos.max()) + self.config.coverage_weight * coverage
        return support, evidence.pick(scores, spans)

    def context(self, passage: Passage, before: int = 1, after: int = 1) -> list[Passage]:
        """The passage with up to `before`/`after` neighbouring chunks of the same section, in document order."""
        for name, v in (("before", before), ("after", after)):
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 20:
                raise InvalidOptionError(f"{name} must be an integer between 0 and 20, got {v!r}")
        snap = self._snapshot
        rows = {c.id: i for i, c in enumerate(snap.stored.chunks)}
        if passage.chunk_id not in rows:
            raise InvalidOptionError("this passage is not in the current index (was the index rebuilt?)")
        row = rows[passage.chunk_id]
        me = snap.stored.chunks[row]
        same = [i for i in snap.by_article[f"{me.source}#{me.article}"]
                if snap.stored.chunks[i].headings == me.headings]
        pos = same.index(row)
        out = []
        for i in same[max(0, pos - before): pos + after + 1]:
            if i == row:
                out.append(passage)
            else:
                c = snap.stored.chunks[i]
                out.append(Passage(c.id, c.text, 0.0, "low", (), c.block, citation_for(c)))
        return out

    def articles(self) -> list[dict]:
        """Every segment of the corpus: {"key": "file#n", "source", "title", "authors", "kind"}, in file order."""
        seen: dict[str, dict] = {}
        for c in self._snapshot.stored.chunks:
            key = f"{c.source}#{c.article}"
            if key not in seen:
                seen[key] = {"key": key, "source": c.source, "title": c.title, "authors": list(c.authors),
                             "kind": c.segment_kind}
        return list(seen.values())

    def sources(self) -> list[str]:
        return sorted(self._snapshot.by_source)

    def example_questions(self) -> list[str]:
        return list(EXAMPLE_QUESTIONS)

    # ---------------------------------------------------------------- the document library (assistant/library.py)
    def documents(self):
        """Every indexed file: `library.DocumentInfo` (title, authors, genre, format, date, pages, chunks)."""
        from assistant import library
        return library.documents(self)

    def document(self, name: str):
        """One indexed file with the metadata its reader found and its chunks in reading order."""
        from assistant import library
        return library.document(self, name)

    def add_documents(self, files, *, replace: bool = False, limits=None, on_progress=None):
        """Check files (paths or (name, bytes) pairs), copy them into the corpus and re-index: `AddReport`."""
        from assistant import library
        return library.add_documents(self, files, replace=replace, limits=limits or library.UploadLimits(),
                                     on_progress=on_progress)

    def remove_document(self, name: str, *, on_progress=None):
        """Take a file (as `documents()` names it) out of the corpus and re-index: `RemoveReport`."""
        from assistant import library
        return library.remove_document(self, name, on_progress=on_progress)

    # ---------------------------------------------------------------- validation
    def _check_question(self, question) -> str:
        if not isinstance(question, str):
            raise EmptyQueryError(f"the question must be text, got {type(question).__name__}")
        limit = self.config.max_question_chars
        if len(question) > limit:
            raise QueryTooLongError(f"问题过长：{len(question)} 个字符，上限 {limit}。"
                                    f" (question too long: {len(question)} characters, limit {limit})")
        bad = [ch for ch in question if _is_bad_char(ch)]
        if bad:
            raise InvalidOptionError(f"问题含有控制字符或无效字符 {bad[0]!r}，请删除后重试。"
                                     f" (the question contains a control or invalid character {bad[0]!r})")
        question = " ".join(question.split())
        if not question:
            raise EmptyQueryError("问题为空，请输入一个问题。 (the question is empty)")
        return question

    def _check_top_k(self, top_k) -> int:
        hi = self.config.max_top_k
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= hi:
            raise InvalidOptionError(f"top_k must be an integer between 1 and {hi}, got {top_k!r}")
        return top_k

    def _check_include(self, include) -> tuple[str, ...]:
        if isinstance(include, str):
            include = (include,)
        include = tuple(include or ())
        unknown = [b for b in include if b not in BLOCKS]
        if unknown:
            raise InvalidOptionError(f"include= takes block kinds {', '.join(BLOCKS)}; unknown: {unknown[0]!r}")
        return include

    def _allowed(self, snap: _Snapshot, sources, articles) -> np.ndarray | None:
        if not sources and not articles:
            return None
        parts = []
        for names, table, label in ((sources, snap.by_source, "source"), (articles, snap.by_article, "article")):
            if isinstance(names, str):
                names = [names]
            for name in names or ():
                if not isinstance(name, str) or name not in table:
                    known = ", ".join(sorted(table)[:12])
                    raise UnknownSourceError(f"unknown {label} {name!r}; the index has: {known}")
                parts.append(table[name])
        return np.unique(np.concatenate(parts))


def _one_per_front_block(snap: _Snapshot, ids: np.ndarray) -> np.ndarray:
    """Keep only the best chunk of each article's abstract, keywords, front matter, references or bio.

    Those blocks summarise or list; their chunks are near-interchangeable answers, and without this an English
    question fills every slot with pieces of the one English abstract.
    """
    seen, keep = set(), []
    for i in ids.tolist():
        c = snap.stored.chunks[i]
        if c.block != "body":
            key = (c.source, c.article, c.block)
            if key in seen:
                continue
            seen.add(key)
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _bm25_scores(snap: _Snapshot, terms: list[str]) -> np.ndarray:
    bm25 = snap.stored.bm25
    ids = bm25.get_tokens_ids(terms)
    if not ids:
        return np.zeros(len(snap.stored.chunks), dtype=np.float32)
    return np.asarray(bm25.get_scores_from_ids(ids), dtype=np.float32)


def is_latin(text: str) -> bool:
    """Mostly Latin letters (an English question, an English abstract) rather than CJK."""
    latin = sum(ch.isascii() and ch.isalpha() for ch in text)
    cjk = sum("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
    return latin > 2 * cjk


def _is_bad_char(ch: str) -> bool:
    """Control characters (other than tab and newlines) and lone surrogates, which no corpus text contains."""
    if ch in "\t\n\r":
        return False
    cat = unicodedata.category(ch)
    return cat == "Cc" or cat == "Cs"
