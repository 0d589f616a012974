"""Orchestration only: corpus -> chunks -> embeddings (cached) -> FAISS + BM25 -> a new generation.

`ensure_index` is the one entry point: it compares the live manifest with the corpus and the configuration,
does nothing when they agree, and otherwise builds a new generation, embedding only texts it has not
embedded before with the same model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from index import store
from index.backend import GenerationData, IndexBackend
from index.chunk import CHUNKER_VERSION, Chunk, ChunkConfig, chunk_document
from index.corpus import Skipped, SourceFile, scan_corpus
from index.dense import TYPES, DenseConfig, describe
from index.errors import AssistantError, IndexMismatchError, IndexWriteError
from index.normalize import searchable, simplified
from index.sentences import split_sentences
from index.tokenize import Tokenizer, mine_terms
from index.tokenize import settings as tokenizer_settings

log = logging.getLogger("assistant")

EMBED_BATCH = 64      # texts per encode call: the ONNX embedder sub-batches by tokens; also the progress step


@dataclass(frozen=True, slots=True)
class BuildConfig:
    chunker: ChunkConfig = field(default_factory=ChunkConfig)
    dense: DenseConfig = field(default_factory=DenseConfig)   # exact or IVF, and how the IVF is tuned
    lock_wait_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class BuildReport:
    index_dir: Path
    built: bool                   # False: the live index already matched (a no-op)
    reasons: tuple[str, ...]      # why it was (re)built
    files: int
    articles: int
    chunks: int
    embedded: int                 # texts sent to the model in this build
    reused: int                   # texts whose vectors came from the previous generation
    skipped: tuple[Skipped, ...]
    seconds: float
    dense: str = ""               # the approximate index, or why exact search was kept above flat_max

    def summary(self) -> str:
        counts = f"{self.files} files, {self.articles} articles, {self.chunks} chunks"
        if self.built:
            line = (f"index built: {counts} ({self.embedded} texts embedded, {self.reused} reused) "
                    f"in {self.seconds:.1f} s -> {self.index_dir}")
        else:
            line = f"index up to date: {counts}, checked in {self.seconds:.1f} s -> {self.index_dir}"
        if self.dense:
            line += f"; {self.dense}"
        if self.skipped:
            n = len(self.skipped)
            line += f"; skipped {n} file{'s' if n > 1 else ''}: " + "; ".join(f"{s.rel}: {s.reason}"
                                                                           for s in self.skipped)
        return line


def passage_text(chunk: Chunk) -> str:
    """What the model embeds for a chunk: its text with the title and heading path as context.

    The context lets a chunk that only says “二是……” be found by what its section is about; the stored and
    displayed text stays the chunk's own.
    """
    # simplified like the text: a document in traditional characters embeds as its simplified form
    context = simplified("｜".join([chunk.title, *chunk.headings]) if chunk.title else "｜".join(chunk.headings))
    return f"{context}\n{searchable(chunk.text)}" if context else searchable(chunk.text)


def bm25_text(chunk: Chunk) -> str:
    """What BM25 indexes for a chunk: title, heading path and text.

    The title and headings say what a passage is about even where its own words do not (measured on
    eval/questions.jsonl: MRR@10 of BM25 alone on direct questions 0.62 with the text alone, 0.76 with the
    headings, 0.79 with title and headings).
    """
    return "\n".join([chunk.title, *chunk.headings, searchable(chunk.text)])


def _key(fingerprint: str, kind: str, text: str) -> str:
    return hashlib.sha256(f"{fingerprint}\0{kind}\0{text}".encode()).hexdigest()


def wanted_settings(config: BuildConfig, model_name: str, terms: list[str]) -> dict:
    return {
        "embedder": {"name": model_name},
        "tokenizer": tokenizer_settings(terms),
        "chunker": {**asdict(config.chunker), "version": CHUNKER_VERSION,
                    "context": "title+headings", "bm25_context": "title+headings"},
    }


def stale_reasons(manifest: dict | None, wanted: dict, files: list[SourceFile], skipped: list[Skipped],
                  fingerprint: str | None = None) -> list[str]:
    """Human-readable differences between the live index and what the corpus and configuration ask for."""
    if manifest is None:
        return ["no index yet"]
    reasons = []
    have_model = manifest.get("embedder", {})
    if have_model.get("name") != wanted["embedder"]["name"]:
        reasons.append(f"model {have_model.get('name')!r} -> {wanted['embedder']['name']!r}")
    elif fingerprint and have_model.get("fingerprint") != fingerprint:
        reasons.append(f"the weights of model {have_model.get('name')!r} changed")
    if manifest.get("tokenizer") != wanted["tokenizer"]:
        reasons.append("tokenizer settings or user dictionary changed")
    if manifest.get("chunker") != wanted["chunker"]:
        reasons.append(f"chunker settings {manifest.get('chunker')} -> {wanted['chunker']}")
    kind = manifest.get("index", {}).get("type")
    # e.g. "hnsw" from an older version, which the search path no longer handles (a Milvus index names its own)
    if kind not in TYPES and manifest.get("backend", {}).get("engine") != "milvus":
        reasons.append(f"dense index type {kind!r} is no longer built ({' or '.join(TYPES)} now)")
    have = manifest.get("corpus", {}).get("files", {})
    now = {f.rel: f"sha256:{f.sha256}" for f in files}
    added = sorted(now.keys() - have.keys())
    removed = sorted(have.keys() - now.keys())
    changed = sorted(k for k in now.keys() & have.keys() if now[k] != have[k])
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            reasons.append(f"{label}: {', '.join(names[:5])}" + (f" (+{len(names) - 5} more)" if len(names) > 5 else ""))
    if sorted(manifest.get("corpus", {}).get("skipped", {})) != sorted(s.rel for s in skipped) and not reasons:
        reasons.append("the set of unreadable files changed")
    return reasons


def ensure_index(corpus: Path, index_dir: Path, get_embedder: Callable[[], object], model_name: str,
                 config: BuildConfig = BuildConfig(), *, force: bool = False, rebuild: bool = True,
                 fingerprint: str | None = None, progress: bool | None = None,
                 on_commit: Callable[[], None] | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None,
                 backend: IndexBackend | None = None) -> BuildReport:
    """Bring the index at `index_dir` up to date with `corpus`; a no-op when nothing differs.

    `get_embedder` is called only when something must be embedded, so a no-op never loads the model.
    With `rebuild=False` a difference raises `IndexMismatchError` naming it instead.
    `on_commit` runs after the new generation is live (tests use it to observe the swap).
    `on_progress(stage, done, total)` is told each step ("reading", "chunking", "embedding chunks", "embedding sentences";
    readers may add "ocr <file>"), so a UI can draw its own progress bar; it must be quick and must not raise.
    `backend` is where the index lives (default: the local folder `index_dir`; `index.backend.open_backend`);
    `index_dir` also holds the cache of read documents.
    """
    t0 = time.perf_counter()
    backend = backend if backend is not None else store.LocalStore(Path(index_dir))
    show = bool(progress) if progress is not None else sys.stderr.isatty()
    display = Progress(show, on_progress)
    try:
        files, skipped = scan_corpus(corpus, Path(index_dir), progress=show, on_progress=display)
    finally:
        display.close()
    terms = mine_terms(f.text for f in files)
    wanted = wanted_settings(config, model_name, terms)
    try:
        manifest = backend.read_manifest()
    except AssistantError as e:
        if not rebuild:
            raise
        manifest, reasons = None, [str(e)]
    else:
        reasons = ["forced"] if force else stale_reasons(manifest, wanted, files, skipped, fingerprint)
    if not reasons:
        return BuildReport(index_dir, False, (), len(files), manifest["counts"]["articles"],
                           manifest["counts"]["chunks"], 0, 0, tuple(skipped), time.perf_counter() - t0)
    if not rebuild:
        raise IndexMismatchError(
            f"the index at {index_dir} does not match: {'; '.join(reasons)}. "
            "Run `assistant build` (or open with rebuild=True) to update it")
    log.info("rebuilding the index at %s: %s", index_dir, "; ".join(reasons))
    try:
        with backend.lock(config.lock_wait_seconds):
            backend.prune()
            previous = _previous_vectors(backend)
            report = _build(files, skipped, terms, wanted, backend, get_embedder(), config, previous,
                            reasons, show, t0, on_progress)
            report = replace(report, index_dir=index_dir)
            backend.prune()
    except OSError as e:
        raise IndexWriteError(
            f"cannot write the index at {index_dir} ({e.strerror or e}); make the folder writable or pass "
            "--index with another folder") from None
    if on_commit:
        on_commit()
    return report


@dataclass(frozen=True, slots=True)
class BuildEstimate:
    """What a build would do and how long it would take, from throughput measured on this machine now."""
    reasons: tuple[str, ...]      # why it would build (empty: the index is up to date, nothing to do)
    files: int
    chunks: int
    to_embed: int                 # distinct texts the model would encode (the rest are cached or repeats)
    cached: int
    texts_per_second: float       # measured on a sample of the texts to embed, lengths as in the whole set
    embed_seconds: float
    other_seconds: float          # reading and chunking (measured, done), BM25 tokens (sampled), writing
    seconds_so_far: float         # this estimate's own time

    @property
    def seconds(self) -> float:
        return self.embed_seconds + self.other_seconds

    def summary(self) -> str:
        if not self.reasons:
            return f"index up to date: {self.files} files, {self.chunks} chunks; a build would do nothing"
        eta = f"{self.seconds / 60:.1f} min" if self.seconds >= 120 else f"{self.seconds:.0f} s"
        return (f"a build would take about {eta}: {self.files} files, {self.chunks} chunks, {self.to_embed} texts "
                f"to embed at {self.texts_per_second:.1f} texts/s (measured on a sample just now) = "
                f"{self.embed_seconds:.0f} s, plus {self.other_seconds:.0f} s for reading, chunking, BM25 and "
                f"writing ({self.cached} texts cached or repeated); because {'; '.join(self.reasons)}")


def estimate_build(corpus: Path, index_dir: Path, get_embedder: Callable[[], object], model_name: str,
                   config: BuildConfig = BuildConfig(), *, force: bool = False, fingerprint: str | None = None,
                   progress: bool | None = None, backend: IndexBackend | None = None,
                   sample: int = 48) -> BuildEstimate:
    """`assistant build --dry-run`: read and chunk the corpus, time the model on a sample, build nothing.

    The sample is spread over the texts sorted by length, so its mean length is the whole set's; the time
    of the rest is extrapolated by characters. Loads the model only when there is something to embed.
    """
    t0 = time.perf_counter()
    backend = backend if backend is not None else store.LocalStore(Path(index_dir))
    show = bool(progress) if progress is not None else sys.stderr.isatty()
    display = Progress(show)
    try:
        files, skipped = scan_corpus(corpus, Path(index_dir), progress=show, on_progress=display)
        terms = mine_terms(f.text for f in files)
        wanted = wanted_settings(config, model_name, terms)
        try:
            manifest = backend.read_manifest()
        except AssistantError as e:
            manifest, reasons = None, [str(e)]
        else:
            reasons = ["forced"] if force else stale_reasons(manifest, wanted, files, skipped, fingerprint)
        if not reasons:
            return BuildEstimate((), len(files), manifest["counts"]["chunks"], 0, 0, 0.0, 0.0, 0.0,
                                 time.perf_counter() - t0)
        chunks = _chunks(files, config, display)
    finally:
        display.close()
    read_seconds = time.perf_counter() - t0
    embedder = get_embedder()
    fp = embedder.fingerprint
    cache = _previous_vectors(backend)
    texts = {_key(fp, "passage", t): t for t in map(passage_text, chunks)}
    for c in chunks:
        texts.update((_key(fp, "sentence", t), t) for t in
                     (searchable(c.text[s:e]) for s, e in split_sentences(c.text)))
    todo = sorted((t for k, t in texts.items() if k not in cache), key=len)
    n_all = len(chunks) + sum(len(split_sentences(c.text)) for c in chunks)
    rate, embed_seconds = 0.0, 0.0
    if todo:
        t = time.perf_counter()
        _prepare(embedder, todo)                   # the path the build would take (bf16 for large ones)
        prepare_seconds = time.perf_counter() - t
        try:
            picked = todo[::max(1, len(todo) // sample)][:sample]
            embedder.encode_documents(picked[-8:])     # first-call costs (buffers sized for the longest) are not throughput
            t = time.perf_counter()
            for start in range(0, len(picked), 8):     # neighbours in length, as a build's length-sorted calls are
                embedder.encode_documents(picked[start:start + 8])
            chars_per_s = sum(map(len, picked)) / max(time.perf_counter() - t, 1e-9)
        finally:
            _release(embedder)
        embed_seconds = sum(map(len, todo)) / chars_per_s
        rate = len(todo) / embed_seconds
        embed_seconds += prepare_seconds
    bm25 = [bm25_text(c) for c in chunks]
    probe = bm25[::max(1, len(bm25) // 200)][:200]
    tokenizer = Tokenizer(terms)
    tokenizer("党建")                                              # the dictionary loads once, not per text
    t = time.perf_counter()
    for text in probe:
        tokenizer(text)
    per_char = (time.perf_counter() - t) / max(1, sum(map(len, probe)))
    workers = _cores() if len(set(bm25)) >= POOL_MIN_TEXTS else 1
    bm25_seconds = per_char * sum(map(len, set(bm25))) / workers
    write_seconds = 3e-4 * len(chunks) + 0.5    # chunk table and BM25 index: ~0.3 ms a chunk (profiled, 8 MB build)
    return BuildEstimate(tuple(reasons), len(files), len(chunks), len(todo), n_all - len(todo), rate,
                         embed_seconds, read_seconds + bm25_seconds + write_seconds, time.perf_counter() - t0)


def _prepare(embedder, texts: list[str]) -> None:
    """Let the embedder choose its document path for this much text (the bundled model: bf16 on large builds)."""
    prepare = getattr(embedder, "prepare_documents", None)
    if prepare is not None and texts:
        log.info("documents: %s", prepare(texts))


def _release(embedder) -> None:
    """Drop what `_prepare` loaded for the build, so that a serving process does not keep it."""
    release = getattr(embedder, "release_documents", None)
    if release is not None:
        release()


def _previous_vectors(backend: IndexBackend) -> dict[str, np.ndarray]:
    """Embedding cache: cache key -> vector, from the live generation (if it is readable)."""
    try:
        keys, vectors, sentence_vectors = backend.load_vectors()
    except AssistantError:
        return {}
    cache = dict(zip(keys["chunks"], vectors))
    cache.update(zip(keys["sentences"], sentence_vectors))
    return cache


def _embed(embedder, texts: list[str], keys: list[str], cache: dict[str, np.ndarray], display: "Progress",
           label: str) -> tuple[np.ndarray, int]:
    """Vectors for `texts`, from the cache where the key is known; returns (vectors, how many were embedded).

    A text that occurs several times (a boilerplate sentence, a file copied into two folders) is embedded
    once. The texts go to the model longest first, so each call's batch pads little.
    """
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    first: dict[str, int] = {}             # key -> the row that is embedded for it
    for i, k in enumerate(keys):
        if k in cache:
            out[i] = cache[k]
        else:
            first.setdefault(k, i)
    todo = sorted(first.values(), key=lambda i: -len(texts[i]))
    step = getattr(embedder, "documents_per_call", EMBED_BATCH)   # a Ray embedder takes a whole pass at once
    for start in range(0, len(todo), step):
        batch = todo[start:start + step]
        out[batch] = embedder.encode_documents([texts[i] for i in batch])
        display(f"embedding {label}", start + len(batch), len(todo))
    for i, k in enumerate(keys):           # the repeats of an embedded text
        if k not in cache and first[k] != i:
            out[i] = out[first[k]]
    return out, len(todo)


POOL_MIN_TEXTS = 20_000     # below this, starting tokenizer processes (~2 s each: jieba's dictionary) costs more


def bm25_tokens(tokenizer: Tokenizer, texts: list[str], workers: int | None = None) -> tuple[tuple[str, ...], ...]:
    """jieba's tokens of each text, each distinct text cut once; large builds cut in parallel processes.

    jieba is pure Python, about 0.25 MB of text a second here, and was most of a large build after the
    embedding (55% of a fake-embedder build, measured): the only part of a build that leaves a core idle.
    `workers`: processes (default: the usable cores, for POOL_MIN_TEXTS distinct texts or more).
    """
    distinct = list(dict.fromkeys(texts))
    if workers is None:
        workers = _cores() if len(distinct) >= POOL_MIN_TEXTS else 1
    if workers > 1:
        import multiprocessing

        # spawn, not fork: the serving process has threads (ONNX Runtime, the web server) that fork would copy
        # mid-lock. Workers get the user terms and texts by pipe and return token lists; nothing touches disk.
        with multiprocessing.get_context("spawn").Pool(workers, _pool_init, (tokenizer.terms,)) as pool:
            size = max(1, len(distinct) // (workers * 8))
            cut = dict(zip(distinct, pool.map(_pool_cut, distinct, chunksize=size)))
    else:
        cut = {t: tuple(tokenizer(t)) for t in distinct}
    return tuple(cut[t] for t in texts)


def _cores() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


_POOL_TOKENIZER: Tokenizer | None = None


def _pool_init(terms: tuple[str, ...]) -> None:
    global _POOL_TOKENIZER
    _POOL_TOKENIZER = Tokenizer(list(terms))


def _pool_cut(text: str) -> tuple[str, ...]:
    return tuple(_POOL_TOKENIZER(text))


def todo_texts(keys: list[str], cache: dict) -> int:
    """How many distinct texts among `keys` the model must embed (the others are cached or repeats)."""
    return len({k for k in keys if k not in cache})


class Progress:
    """The terminal's progress display and the caller's `on_progress` hook, fed by the same calls.

    One tqdm bar per stage (files for reading and chunking, texts for embedding), each with its rate
    (files/s, texts/s) and the time left; the two embedding passes share one bar, so its ETA is the whole
    embedding's. Unknown stages (a reader's "ocr <file>") only reach the hook: readers draw their own bars.
    """

    UNITS = {"reading": "file", "chunking": "file", "embedding": "text"}

    def __init__(self, show: bool, hook: Callable[[str, int, int], None] | None = None):
        self.show, self.hook = show, hook
        self.bars: dict[str, object] = {}
        self.embed_total = 0                 # both passes' texts, set before the first one starts
        self._passes: dict[str, int] = {}    # embedding pass -> texts done so far

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.hook:
            self.hook(stage, done, total)
        if not self.show:
            return
        if stage.startswith("embedding "):
            self._passes[stage] = done
            stage, done, total = "embedding", sum(self._passes.values()), max(self.embed_total, total)
        if stage not in self.UNITS:
            return
        bar = self.bars.get(stage)
        if bar is None:
            from tqdm import tqdm

            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit=self.UNITS[stage], file=sys.stderr,
                                          dynamic_ncols=True)
        bar.total = max(total, done)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def _build(files, skipped, terms, wanted, backend, embedder, config, cache, reasons, progress, t0,
           on_progress=None):
    # The new generation exists from the start (a `.tmp-*` folder, a Milvus collection without an alias), so a
    # build killed at any point leaves only something no reader looks at and the next build removes.
    gen = backend.begin()
    try:
        return _fill(gen, files, skipped, terms, wanted, embedder, config, cache, reasons, progress, t0,
                     on_progress)
    except BaseException:
        gen.discard()
        raise


def _fill(gen, files, skipped, terms, wanted, embedder, config, cache, reasons, progress, t0, on_progress=None):
    display = Progress(bool(progress), on_progress)
    try:
        return _fill_shown(gen, files, skipped, terms, wanted, embedder, config, cache, reasons, display, t0)
    finally:
        display.close()


def _chunks(files, config: BuildConfig, display: "Progress") -> list[Chunk]:
    chunks: list[Chunk] = []
    for n, f in enumerate(files, 1):
        chunks.extend(chunk_document(f.document, f.rel, config.chunker))
        display("chunking", n, len(files))
    return chunks


def _fill_shown(gen, files, skipped, terms, wanted, embedder, config, cache, reasons, display, t0):
    chunks = _chunks(files, config, display)
    if not chunks:
        raise IndexMismatchError(f"no text to index under the corpus: {len(files)} files gave no chunks")
    fp = embedder.fingerprint
    ptexts = [passage_text(c) for c in chunks]
    pkeys = [_key(fp, "passage", t) for t in ptexts]
    sent_rows, stexts = [], []
    for row, c in enumerate(chunks):
        for s, e in split_sentences(c.text):
            sent_rows.append((row, s, e))
            stexts.append(searchable(c.text[s:e]))
    skeys = [_key(fp, "sentence", t) for t in stexts]
    display.embed_total = todo_texts(pkeys, cache) + todo_texts(skeys, cache)
    _prepare(embedder, list({k: t for t, k in zip(ptexts + stexts, pkeys + skeys) if k not in cache}.values()))
    try:
        vectors, n1 = _embed(embedder, ptexts, pkeys, cache, display, "chunks")
        svectors, n2 = _embed(embedder, stexts, skeys, cache, display, "sentences")
    finally:
        _release(embedder)

    data = GenerationData(tuple(chunks), vectors, np.asarray(sent_rows, dtype=np.int32).reshape(-1, 3), svectors,
                          {"chunks": pkeys, "sentences": skeys}, tuple(terms),
                          bm25_tokens(Tokenizer(terms), [bm25_text(c) for c in chunks]))
    articles = len({(c.source, c.article) for c in chunks})

    def finish(settings: dict) -> dict:
        return {
            **wanted,
            "embedder": {**wanted["embedder"], "fingerprint": fp, "dim": int(embedder.dim), "normalized": True,
                         "query_prompt": "query: ", "document_prompt": "passage: "},
            "index": settings,
            "corpus": {"files": {f.rel: f"sha256:{f.sha256}" for f in files},
                       "skipped": {s.rel: s.reason for s in skipped}},
            "counts": {"files": len(files), "articles": articles, "chunks": len(chunks),
                       "sentences": len(sent_rows)},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - t0, 2),
        }

    manifest = gen.write(data, config.dense, finish)
    seconds = time.perf_counter() - t0
    settings = manifest["index"]
    return BuildReport(None, True, tuple(reasons), len(files), articles, len(chunks), n1 + n2,
                       len(ptexts) + len(stexts) - n1 - n2, tuple(skipped), seconds, describe(settings))
