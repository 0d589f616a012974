"""The public Python API: `Assistant.open(...)` then `ask(...)` for cited passages.

Loads the model once, brings the index up to date, and answers from an immutable in-memory snapshot of it,
so many threads can ask at once and a rebuild swaps the snapshot without making anyone wait.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Sequence

from assistant import calibrate, dictionary, evidence, query, retrieve
from assistant.cite import citation_for
from assistant.errors import InvalidOptionError
from assistant.query import BLOCKS, MODES, AskConfig, Query, is_latin  # noqa: F401  (public names)
from assistant.records import Answer, Passage
from assistant.retrieve import Clock, LoadedIndex, Trace
from index import store
from index.build import BuildConfig, BuildReport, ensure_index

log = logging.getLogger("assistant")
# What opening does and how long it takes: `assistant serve` shows these lines, one-shot commands do not.
startup_log = logging.getLogger("assistant.startup")

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
        self.backend = store.LocalStore(index_dir)    # open(backend=...) may put Milvus here (index.backend)
        self._snapshot: LoadedIndex | None = None
        self._rebuild_lock = threading.Lock()

    # ---------------------------------------------------------------- opening and rebuilding
    @classmethod
    def open(cls, corpus: str | Path = "seeds", index: str | Path | None = None, model: str | None = None,
             rebuild: bool = True, *, embedder=None, config: AskConfig | None = None,
             build_config: BuildConfig | None = None, cache_dir: str | Path | None = None,
             progress: bool | None = None, backend: str | None = None) -> "Assistant":
        """Load the model once and open the index of `corpus`, building or updating it when needed.

        corpus: a folder of .txt/.md files. index: where the index lives (default: a folder per corpus in
        the user cache). model: a sentence-transformers name or folder (default: the bundled
        multilingual-e5-small). rebuild=False raises IndexMismatchError instead of updating a stale index.
        embedder: an already loaded Embedder (tests pass a fake; the model argument is then ignored).
        backend: where the index lives: None for the local folder, "milvus://HOST:PORT[/db]" for a Milvus
        server (the local folder then only caches read documents; see docs/milvus.md).
        """
        from index.backend import open_backend
        from index.corpus import check_corpus
        from index.embed import BUNDLED, load_embedder

        corpus = Path(corpus).expanduser().resolve()
        check_corpus(corpus)     # a wrong folder is told at once, not after seconds of model loading
        cache = Path(cache_dir).expanduser() if cache_dir else None
        index_dir = Path(index).expanduser().resolve() if index else store.default_index_dir(corpus, cache)
        store_backend = open_backend(backend, index_dir, corpus)    # a bad --backend is told before the model loads
        t0 = time.perf_counter()
        if embedder is None:
            startup_log.info("loading the embedding model %s ...", model or BUNDLED)
            embedder = load_embedder(model, cache_dir=cache)
            model_name = embedder.name
            startup_log.info("      model loaded in %.1f s", time.perf_counter() - t0)
        else:
            model_name = getattr(embedder, "name", model or BUNDLED)
        self = cls(corpus, index_dir, embedder, model_name, config or AskConfig(), build_config or BuildConfig())
        self.backend = store_backend
        startup_log.info("checking the index of %s ...", corpus)
        report = self._ensure(force=False, rebuild=rebuild, progress=progress)
        (log if report.built else startup_log).info("      %s", report.summary())
        self._snapshot = self._load()
        return self

    def _load(self) -> LoadedIndex:
        """Load the index and attach its self-calibrated thresholds (computed once per index, then cached)."""
        index = LoadedIndex.of(self.backend.load())
        if not self.config.self_calibrate:
            return index
        return dataclasses.replace(index, thresholds=calibrate.thresholds_for(index, self.embedder, self.config,
                                                                            self.index_dir))

    def _ensure(self, force: bool, rebuild: bool, progress: bool | None, on_progress=None) -> BuildReport:
        return ensure_index(self.corpus, self.index_dir, lambda: self.embedder, self.model_name,
                            self.build_config, force=force, rebuild=rebuild,
                            fingerprint=self.embedder.fingerprint, progress=progress, on_progress=on_progress,
                            backend=self.backend)

    def rebuild(self, force: bool = False, progress: bool | None = None, on_progress=None) -> BuildReport:
        """Bring the index up to date with the corpus; queries meanwhile are answered from the old snapshot.

        on_progress(stage, done, total): told each step of the build (see `index.build.ensure_index`)."""
        with self._rebuild_lock:
            report = self._ensure(force=force, rebuild=True, progress=progress, on_progress=on_progress)
            if report.built:
                self._snapshot = self._load()
        return report

    def warm_up(self) -> None:
        """Do now the one-off work of a first question (tracing the model, jieba's dictionary), not on it."""
        warm = getattr(self.embedder, "warm_up", None)
        if warm is not None:
            warm()
        self._snapshot.tokenizer("党建")
        if self.config.dictionary_terms:
            # CC-CEDICT takes ~0.5 s to read: in the background, so that neither start-up nor the first English
            # question waits for it (a question that comes first reads it itself; the work is only done twice)
            threading.Thread(target=dictionary.translations, args=("", 1), name="cc-cedict", daemon=True).start()

    @property
    def manifest(self) -> dict:
        return self._snapshot.stored.manifest

    # ---------------------------------------------------------------- questions
    def ask(self, question: str, top_k: int | None = None, *, sources: Sequence[str] | None = None,
            articles: Sequence[str] | None = None, include: Sequence[str] = (),
            mode: str | None = None, trace: Trace | None = None) -> Answer:
        """The passages that answer `question`, best first, each with evidence highlights and a citation.

        top_k: 1..50 passages (default 5). sources: file names (relative to the corpus) to search in;
        articles: article keys "file#n" (see `articles()`). include: block kinds normally ranked below body
        text ("references", "caption", "bio") to rank like body text. mode: "hybrid" (default), "dense" or
        "bm25", for evaluation. trace: called as trace(stage, seconds) after each stage (benchmarks, tuning).

        The stages: validate -> encode -> rank -> collapse -> evidence -> records.
        """
        t0 = time.perf_counter()
        cfg, index = self.config, self._snapshot        # one snapshot for the whole question
        clock = Clock(trace)
        text = query.check_question(question, cfg.max_question_chars)
        top_k = query.check_top_k(cfg.top_k if top_k is None else top_k, cfg.max_top_k)
        mode = query.check_mode(mode)
        include = query.check_include(include)
        allowed = index.allowed(sources, articles)
        clock.lap("validate")
        q = query.encode(text, self.embedder, index.tokenizer, cfg, top_k=top_k, mode=mode, allowed=allowed,
                         include=include)
        clock.lap("encode")
        scores, ids = retrieve.rank(index, q, cfg, trace)
        clock.restart()
        kept = retrieve.collapse(index, ids, top_k, cfg)
        clock.lap("collapse")
        evidence.prefetch(index, [int(i) for i in kept])
        found_evidence = [evidence.assess(index, int(i), q, cfg) for i in kept]
        verdict = evidence.judge(index, q, found_evidence, self.thresholds(index), cfg)
        clock.lap("evidence")
        answer = _records(index, q, dict(zip(ids.tolist(), scores.tolist())), found_evidence, verdict, t0)
        clock.lap("records")
        return answer

    def thresholds(self, index: LoadedIndex | None = None) -> evidence.Thresholds:
        """The "not found" thresholds in force: the index's own calibration, else the global ones."""
        index = index or self._snapshot
        if self.config.self_calibrate and index.thresholds is not None:
            return index.thresholds
        return evidence.global_thresholds(self.config)

    @property
    def loaded(self) -> LoadedIndex:
        """The index being answered from (replaced as a whole by a rebuild)."""
        return self._snapshot

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

def _records(index: LoadedIndex, q: Query, score_of: dict[int, float], found_evidence: list[evidence.Evidence],
             verdict: evidence.Verdict, t0: float) -> Answer:
    """The records stage: passages with citations, the message, the time taken."""
    passages = []
    for ev, label in zip(found_evidence, verdict.labels):
        chunk = index.stored.chunks[ev.row]
        passages.append(Passage(chunk.id, chunk.text, score_of[ev.row], label, ev.spans, chunk.block,
                                citation_for(chunk)))
    message = FOUND.format(n=len(passages)) if verdict.found else NOT_FOUND
    return Answer(q.text, verdict.found, tuple(passages), message, (time.perf_counter() - t0) * 1000,
                  verdict.reason)
