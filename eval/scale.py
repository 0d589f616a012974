"""Scale curve on synthetic data: how dense search and BM25 behave at 10k, 100k, 1M chunks.

No model runs here: chunks are unit vectors (dim 384, float32, like multilingual-e5-small) and token lists drawn
from a Zipf-distributed vocabulary, so only the index structures are measured. Two vector distributions:

  random   isotropic: uniform on the sphere. Every neighbourhood looks alike, so no approximate index can skip
           much of the data: the hardest case, where an IVF must scan nearly every list.
  e5       "e5-like": a Gaussian with the mean and covariance of real multilingual-e5 embeddings (fitted by
           eval/bench.py on the chunk and sentence vectors of an index it built), normalized. Like real
           embeddings it is anisotropic (a strong common direction, a few dominant axes), which an IVF exploits.

The approximate index is the product's: `index.dense.train_ivf` (nlist from `nlist_for`), filled, then tuned by
`index.dense.tune_nprobe` on probe queries of the same distribution, as `assistant build` does on sentence vectors;
searched through `assistant.retrieve.dense_ranking`. The sweep reports recall@10 against exact search for every
nprobe from 1 to nlist (doubling) on other queries than the probes. Searches are timed one query at a time on one
FAISS thread, as `ask` runs them; builds use every core.

    python -m eval.scale --n 10000 --kinds flat,ivf,bm25                        # one JSON line on stdout
    python -m eval.scale --n 10000 --dist e5 --e5-stats stats.npy --kinds flat,ivf
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KINDS = ("flat", "ivf", "bm25")
DISTRIBUTIONS = ("random", "e5")


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    dim: int = 384
    vocab: int = 50_000
    zipf_s: float = 1.0            # word frequencies of natural text follow Zipf's law with s close to 1
    doc_tokens: int = 60           # mean tokens per chunk (Poisson lengths)
    stop_ranks: int = 50           # query terms skip the most frequent ranks, as the real tokenizer drops stopwords
    query_tokens: int = 6
    queries: int = 200             # for latency and recall
    latency_queries_max_n: int = 50   # fewer single-query timings where one search may scan > 200k vectors
    k: int = 60                    # candidates per retriever, as AskConfig.candidates
    sweep_stop_recall: float = 0.999  # the nprobe sweep ends past the tuned value once recall reaches this
    seed: int = 0


# ---------------------------------------------------------------- pure helpers

def percentiles_ms(seconds: list[float] | np.ndarray) -> dict:
    """p50 / p95 / mean of timings given in seconds, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        raise ValueError("no timings to summarize (got an empty list); run at least one query")
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "mean": float(ms.mean()),
            "n": int(ms.size)}


def summary(values: list[float]) -> dict:
    """Median, range and every value of a few repeated timings (cold starts, builds)."""
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "min": float(a.min()), "max": float(a.max()), "runs": [float(v) for v in a]}


def fit_gaussian(vectors: np.ndarray) -> np.ndarray:
    """float64 (d + 1, d): the mean (row 0) and covariance (rows 1..d) of `vectors`, as one array for np.save."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 vectors of shape (n, d) to fit a Gaussian, got shape {x.shape}")
    return np.vstack([x.mean(axis=0), np.cov(x, rowvar=False)])


def gaussian_factor(stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, A) with A @ A.T = cov, from `fit_gaussian`'s array: mean + z @ A.T samples the Gaussian.

    By eigendecomposition, not Cholesky: a covariance fitted on fewer vectors than dimensions is singular.
    """
    mean, cov = stats[0], stats[1:]
    if cov.shape != (len(mean), len(mean)):
        raise ValueError(f"expected a ({len(mean) + 1}, {len(mean)}) mean + covariance array, got {stats.shape}")
    w, v = np.linalg.eigh(cov)
    return mean.astype(np.float32), (v * np.sqrt(np.clip(w, 0, None))).astype(np.float32)


def unit_vectors(n: int, dim: int, rng: np.random.Generator, shape: tuple[np.ndarray, np.ndarray] | None = None,
                 block: int = 100_000) -> np.ndarray:
    """float32 (n, dim) unit rows: uniform on the sphere, or a Gaussian `shape` = (mean, A) normalized.

    Generated in blocks to bound temporary memory.
    """
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        part = rng.standard_normal((min(block, n - start), dim), dtype=np.float32)
        if shape is not None:
            part = part @ shape[1].T + shape[0]
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[start:start + len(part)] = part
    return out


def zipf_probabilities(vocab: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, vocab + 1, dtype=np.float64) ** s
    return p / p.sum()


def synthetic_tokens(n_docs: int, cfg: ScaleConfig, rng: np.random.Generator) -> list[list[str]]:
    """`n_docs` token lists ("w<rank>") with Poisson(doc_tokens) lengths and Zipf-distributed words."""
    lengths = np.clip(rng.poisson(cfg.doc_tokens, n_docs), 5, None)
    ids = rng.choice(cfg.vocab, size=int(lengths.sum()), p=zipf_probabilities(cfg.vocab, cfg.zipf_s))
    words = np.array([f"w{i}" for i in range(cfg.vocab)], dtype=object)
    return [part.tolist() for part in np.split(words[ids], np.cumsum(lengths)[:-1])]


def synthetic_queries(cfg: ScaleConfig, rng: np.random.Generator) -> list[list[str]]:
    """Query token lists from the same Zipf law, without the `stop_ranks` most frequent words."""
    p = zipf_probabilities(cfg.vocab, cfg.zipf_s)
    p[:cfg.stop_ranks] = 0
    p /= p.sum()
    return [[f"w{i}" for i in rng.choice(cfg.vocab, size=cfg.query_tokens, p=p)] for _ in range(cfg.queries)]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status (this benchmark needs Linux)")


def ivf_bytes(index) -> int:
    """Bytes an IndexIVFFlat holds: the float32 vectors, their int64 ids in the lists, the centroids."""
    return int(index.ntotal * (index.d * 4 + 8) + index.nlist * index.d * 4)


# ---------------------------------------------------------------- measurement (one size and distribution per process)

def _log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _time_dense(index, queries: np.ndarray, k: int) -> dict:
    """Single-query latency through the product's search path, on one FAISS thread as `ask` runs it."""
    import faiss

    from assistant.retrieve import dense_ranking

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        times = []
        for q in queries:
            t = time.perf_counter()
            dense_ranking(index, q, k, None)
            times.append(time.perf_counter() - t)
    finally:
        faiss.omp_set_num_threads(threads)
    return percentiles_ms(times)


def measure(n: int, kinds: tuple[str, ...], dist: str = "random", stats: np.ndarray | None = None,
            cfg: ScaleConfig = ScaleConfig()) -> dict:
    """Build and query the requested index kinds over `n` synthetic chunks; returns one JSON-able dict.

    The exact top-10 of every query (the ground truth of the IVF's recall) is computed whatever `kinds` holds.
    """
    import faiss

    from index.dense import DenseConfig, exact_top_k, flat_index, nlist_for

    bad = [k for k in kinds if k not in KINDS]
    if bad or n < cfg.k or dist not in DISTRIBUTIONS or (dist == "e5") != (stats is not None):
        raise ValueError(f"kinds must be among {KINDS}, n >= {cfg.k}, dist among {DISTRIBUTIONS} with stats for "
                         f"(and only for) e5; got kinds={kinds}, n={n}, dist={dist!r}, stats={stats is not None}")
    dense_cfg = DenseConfig()
    rng = np.random.default_rng(cfg.seed)
    shape = gaussian_factor(stats) if stats is not None else None
    out: dict = {"n": n, "distribution": dist, "config": asdict(cfg), "dense_config": asdict(dense_cfg),
                 "faiss_threads": faiss.omp_get_max_threads()}
    base = rss_bytes()
    vectors = unit_vectors(n, cfg.dim, rng, shape)
    queries = unit_vectors(cfg.queries, cfg.dim, rng, shape)
    probes = unit_vectors(dense_cfg.probes, cfg.dim, rng, shape)    # the build tunes on these, never on `queries`
    out["vectors_rss_mb"] = (rss_bytes() - base) / 2**20
    n_lat = cfg.queries if n <= 200_000 else cfg.latency_queries_max_n
    truth = exact_top_k(vectors, queries, dense_cfg.recall_k)
    # How alike the vectors are: about 0 for random ones; real e5 embeddings sit around 0.7-0.9 of each other.
    out["mean_cosine"] = float(np.mean(np.sum(queries[:100] * vectors[:100], axis=1)))

    if "flat" in kinds:
        _log(f"n={n} {dist}: flat")
        before = rss_bytes()
        t = time.perf_counter()
        flat = flat_index(vectors)
        build_s = time.perf_counter() - t
        out["flat"] = {"build_s": build_s, "index_mb": flat.ntotal * flat.d * 4 / 2**20,
                       "rss_delta_mb": (rss_bytes() - before) / 2**20,
                       "latency_ms": _time_dense(flat, queries[:n_lat], cfg.k)}
        del flat
    if "ivf" in kinds:
        out["ivf"] = _measure_ivf(vectors, queries, probes, truth, n_lat, nlist_for(n), dense_cfg, cfg, dist)
    del vectors

    if "bm25" in kinds:
        out["bm25"] = _measure_bm25(n, cfg, rng)
    return out


def _measure_ivf(vectors, queries, probes, truth, n_lat, nlist, dense_cfg, cfg, dist) -> dict:
    """The product's IVF: trained, filled, tuned on `probes`; then an nprobe sweep on `queries`."""
    import faiss

    from index.dense import exact_top_k, recall_at_k, train_ivf, tune_nprobe

    n, k10 = len(vectors), dense_cfg.recall_k
    _log(f"n={n} {dist}: IVF nlist={nlist}, training")
    before = rss_bytes()
    t = time.perf_counter()
    ivf = train_ivf(vectors, nlist, dense_cfg.seed)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    ivf.add(vectors)
    add_s = time.perf_counter() - t
    rss_delta = rss_bytes() - before
    t = time.perf_counter()
    probe_truth = exact_top_k(vectors, probes, k10)
    nprobe, probe_recall = tune_nprobe(ivf, probes, probe_truth, dense_cfg.target_recall, k10,
                                       dense_cfg.start_nprobe)
    tune_s = time.perf_counter() - t
    _log(f"n={n} {dist}: IVF trained {train_s:.1f} s, added {add_s:.1f} s, tuned nprobe {nprobe} "
         f"(probe recall {probe_recall:.3f}) in {tune_s:.1f} s; sweep")
    sweep, p = [], 1
    while p <= nlist:
        _, found = ivf.search(queries, k10, params=faiss.SearchParametersIVF(nprobe=p))   # batched, every core
        ivf.nprobe = p
        sweep.append({"nprobe": p, "recall": recall_at_k(found, truth, k10),
                      "latency_ms": _time_dense(ivf, queries[:n_lat], cfg.k)})
        if p >= nprobe and sweep[-1]["recall"] >= cfg.sweep_stop_recall:
            break
        p *= 2
    at_tuned = next(s for s in sweep if s["nprobe"] == nprobe)
    return {"nlist": nlist, "train_size": min(n, 64 * nlist), "train_s": train_s, "add_s": add_s,
            "build_s": train_s + add_s, "tune_s": tune_s, "index_mb": ivf_bytes(ivf) / 2**20,
            "rss_delta_mb": rss_delta / 2**20, "nprobe": nprobe, "probe_recall": probe_recall,
            "probes": len(probes), "product_choice": "ivf" if dense_cfg.ivf_pays(nprobe, nlist) else "flat",
            "recall": at_tuned["recall"], "latency_ms": at_tuned["latency_ms"], "sweep": sweep}


def _measure_bm25(n: int, cfg: ScaleConfig, rng: np.random.Generator) -> dict:
    import bm25s

    from assistant.retrieve import sparse_ranking

    _log(f"n={n}: BM25 tokens")
    tokens = synthetic_tokens(n, cfg, rng)
    queries = synthetic_queries(cfg, rng)
    _log(f"n={n}: BM25 index")
    before = rss_bytes()
    t = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)     # the same call as index/build.py, on string tokens
    build_s = time.perf_counter() - t
    del tokens
    rss_delta = rss_bytes() - before
    arrays = sum(bm25.scores[k].nbytes for k in ("data", "indices", "indptr"))
    scores_t, topk_t = [], []
    for q in queries:
        t = time.perf_counter()
        scores = np.asarray(bm25.get_scores(q), dtype=np.float32)
        t1 = time.perf_counter()
        sparse_ranking(scores, cfg.k, None)
        t2 = time.perf_counter()
        scores_t.append(t1 - t)
        topk_t.append(t2 - t)
    return {"build_s": build_s, "index_mb": arrays / 2**20, "rss_delta_mb": rss_delta / 2**20,
            "vocab": len(bm25.vocab_dict), "postings": int(bm25.scores["data"].size),
            "latency_ms": percentiles_ms(scores_t), "with_top_k_ms": percentiles_ms(topk_t)}


# ---------------------------------------------------------------- build time against corpus size (issue 16)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora" / "dev"
SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def build_sources() -> list[Path]:
    """The text files a synthetic build corpus is made of: seeds/ and the dev corpus' text genres."""
    paths = sorted(SEEDS.glob("*.txt")) + sorted(SEEDS.glob("*.md"))
    for genre in ("regulations", "notices", "articles"):
        paths += sorted((SHARED / genre).glob("*.md"))
    return paths


def synthetic_corpus(root: Path, megabytes: float, sources: list[Path]) -> dict:
    """Write about `megabytes` of text files into `root`: copies of `sources`, each copy's sentences distinct.

    Copy k inserts 〔k〕 before every 。 and after longer lines without one, so no sentence or chunk of one copy
    repeats another's (a build embeds a repeated text once, which would flatter the curve), while headings,
    articles and lengths keep their shapes.
    """
    root.mkdir(parents=True, exist_ok=True)
    texts = [(p, p.read_text(encoding="utf-8")) for p in sources]
    target, written, files, k = int(megabytes * 2**20), 0, 0, 0
    while written < target:
        for path, text in texts:
            data = _tagged(text, k).encode("utf-8")
            (root / f"{k:04d}_{path.stem}{path.suffix}").write_bytes(data)
            written += len(data)
            files += 1
            if written >= target:
                break
        k += 1
    return {"files": files, "bytes": written, "sources": len(sources)}


def _tagged(text: str, k: int) -> str:
    """Copy k of `text`: 〔k〕 before every 。, and after every longer line without one (references, captions)."""
    lines = []
    for line in text.split("\n"):
        if "。" in line:
            line = line.replace("。", f"〔{k}〕。")
        elif len(line.strip()) > 30:        # short lines (headings, titles) keep their shape
            line = f"{line}〔{k}〕"
        lines.append(line)
    return "\n".join(lines)


class TimedEmbedder:
    """Wraps an embedder and adds up the seconds spent in it: build time minus this is everything else."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.dim, self.fingerprint = inner.name, inner.dim, inner.fingerprint
        self.seconds = 0.0
        self.texts = 0
        self.path = "fp32"         # what prepare_documents chose

    def encode_queries(self, texts):
        return self.inner.encode_queries(texts)

    def prepare_documents(self, texts):
        """The bundled embedder's choice of document path (bf16 on large builds): loading it is encoder time."""
        prepare = getattr(self.inner, "prepare_documents", None)
        if prepare is None:
            return "no choice"
        t = time.perf_counter()
        try:
            self.path = prepare(texts)
            return self.path
        finally:
            self.seconds += time.perf_counter() - t

    def release_documents(self):
        release = getattr(self.inner, "release_documents", None)
        if release is not None:
            release()

    def encode_documents(self, texts, show_progress: bool = False):
        t = time.perf_counter()
        try:
            return self.inner.encode_documents(texts)
        finally:
            self.seconds += time.perf_counter() - t
            self.texts += len(texts)


def build_point(megabytes: float, encoder: str, work: Path) -> dict:
    """One cold build of a synthetic corpus of `megabytes` with the fake or the real encoder, timed."""
    import shutil

    from index.build import ensure_index

    if encoder == "fake":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from conftest import FakeEmbedder          # the tests' deterministic embedder: microseconds a text

        inner = FakeEmbedder()
    else:
        from index.embed import load_embedder

        inner = load_embedder()
    corpus, idx = work / f"corpus-{megabytes:g}", work / f"index-{megabytes:g}-{encoder}"
    shutil.rmtree(idx, ignore_errors=True)
    info = synthetic_corpus(corpus, megabytes, build_sources()) if not corpus.exists() else \
        {"files": len(list(corpus.iterdir())), "bytes": sum(p.stat().st_size for p in corpus.iterdir())}
    timed = TimedEmbedder(inner)
    load0 = os.getloadavg()
    t = time.perf_counter()
    report = ensure_index(corpus, idx, lambda: timed, timed.name, progress=False)
    seconds = time.perf_counter() - t
    shutil.rmtree(idx, ignore_errors=True)
    return {"megabytes": megabytes, "encoder": encoder, **info, "seconds": seconds,
            "encode_seconds": timed.seconds, "other_seconds": seconds - timed.seconds,
            "other_share": (seconds - timed.seconds) / seconds, "chunks": report.chunks,
            "texts_embedded": report.embedded, "texts_per_s": timed.texts / max(timed.seconds, 1e-9),
            "document_path": timed.path,
            "peak_rss_mb": _vm_hwm() / 2**20, "loadavg": [load0, os.getloadavg()]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, help="number of synthetic chunks")
    p.add_argument("--build-mb", type=float, help="instead: time one cold build of a synthetic corpus of this size")
    p.add_argument("--encoder", default="fake", choices=("fake", "real"), help="with --build-mb")
    p.add_argument("--work", type=Path, help="with --build-mb: folder for the corpus (reused) and the index")
    p.add_argument("--kinds", default="flat,ivf,bm25", help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--dist", default="random", choices=DISTRIBUTIONS, help="vector distribution")
    p.add_argument("--e5-stats", type=Path, help="mean + covariance of real embeddings (.npy from fit_gaussian); "
                                                 "required with --dist e5")
    p.add_argument("--queries", type=int, default=ScaleConfig().queries)
    args = p.parse_args(argv)
    if args.build_mb is not None:
        work = args.work or Path(tempfile.mkdtemp(prefix="build-curve-"))
        print(json.dumps(build_point(args.build_mb, args.encoder, work)))
        return
    if args.n is None:
        p.error("--n (synthetic chunks) or --build-mb (a build of that many MB) is required")
    if args.dist == "e5" and args.e5_stats is None:
        p.error("--dist e5 needs --e5-stats FILE: the mean and covariance of real embeddings (fit_gaussian's array, "
                "as eval/bench.py saves it)")
    if args.dist != "e5" and args.e5_stats is not None:
        p.error(f"--e5-stats is only for --dist e5, got --dist {args.dist}")
    stats = np.load(args.e5_stats, allow_pickle=False) if args.e5_stats else None
    cfg = ScaleConfig(queries=args.queries)
    t = time.perf_counter()
    result = measure(args.n, tuple(k for k in args.kinds.split(",") if k), args.dist, stats, cfg)
    result["seconds"] = time.perf_counter() - t
    result["peak_rss_mb"] = _vm_hwm() / 2**20
    result["loadavg"] = os.getloadavg()
    print(json.dumps(result))


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    main()
