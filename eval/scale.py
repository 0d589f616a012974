"""Scale curve on synthetic data: how dense search and BM25 behave at 10k, 100k, 1M chunks.

No model runs here: chunks are random unit vectors (dim 384, float32, like multilingual-e5-small) and token
lists drawn from a Zipf-distributed vocabulary, so only the index structures are measured. The approximate
index is built by `index.build._dense_index` with `BuildConfig`'s own HNSW settings (forced at every size with
`flat_max=0`), and searched through `assistant.retrieve`, so this measures the shipped code.

Random vectors are the hardest case for HNSW: they have no cluster structure, so every neighbourhood is about
as far as any other and the greedy graph walk needs a wide beam; real embeddings reach a given recall with a
smaller efSearch. Recall measured here is a lower bound for real data of the same size.

    python -m eval.scale --n 10000 --kinds flat,hnsw,bm25      # one size, one JSON line on stdout
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

KINDS = ("flat", "hnsw", "bm25")


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    dim: int = 384
    vocab: int = 50_000
    zipf_s: float = 1.0            # word frequencies of natural text follow Zipf's law with s close to 1
    doc_tokens: int = 60           # mean tokens per chunk (Poisson lengths)
    stop_ranks: int = 50           # query terms skip the most frequent ranks, as the real tokenizer drops stopwords
    query_tokens: int = 6
    queries: int = 200             # for latency and recall
    latency_queries_max_n: int = 50   # fewer single-query timings where one flat search scans > 200k vectors
    k: int = 60                    # candidates per retriever, as AskConfig.candidates
    recall_k: int = 10
    recall_target: float = 0.98
    ef_sweep: tuple[int, ...] = (128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
    seed: int = 0


# ---------------------------------------------------------------- pure helpers

def percentiles_ms(seconds: list[float] | np.ndarray) -> dict:
    """p50 / p95 / mean of timings given in seconds, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000
    if ms.size == 0:
        raise ValueError("no timings to summarize (got an empty list); run at least one query")
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "mean": float(ms.mean()),
            "n": int(ms.size)}


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of the true top-k ids (rows of `truth`) that appear in the top-k of `found`."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"found has {found.shape[0]} queries, truth {truth.shape[0]}; pass the same queries")
    if truth.shape[1] < k or found.shape[1] < k:
        raise ValueError(f"need at least k={k} columns, got found {found.shape[1]}, truth {truth.shape[1]}")
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k


def unit_vectors(n: int, dim: int, rng: np.random.Generator, block: int = 100_000) -> np.ndarray:
    """float32 (n, dim) rows uniform on the unit sphere, generated in blocks to bound temporary memory."""
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        part = rng.standard_normal((min(block, n - start), dim), dtype=np.float32)
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


def fit_power_law(ns: list[int], seconds: list[float]) -> tuple[float, float]:
    """(a, alpha) of seconds = a * n**alpha, least squares in log-log over the given points (>= 2)."""
    if len(ns) < 2:
        raise ValueError(f"need at least 2 sizes to fit a power law, got {len(ns)}")
    alpha, log_a = np.polyfit(np.log(ns), np.log(seconds), 1)
    return float(np.exp(log_a)), float(alpha)


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status (this benchmark needs Linux)")


def hnsw_bytes(index) -> int:
    """Bytes an IndexHNSWFlat holds: the float32 vectors plus the graph (neighbour lists, levels, offsets)."""
    h = index.hnsw
    return int(index.ntotal * index.d * 4 + h.neighbors.size() * 4 + h.levels.size() * 4 + h.offsets.size() * 8)


# ---------------------------------------------------------------- measurement (one size per process)

def _log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _time_dense(index, queries: np.ndarray, k: int) -> tuple[dict, np.ndarray]:
    from assistant.retrieve import dense_ranking

    times, found = [], np.full((len(queries), k), -1, dtype=np.int64)
    for row, q in enumerate(queries):
        t = time.perf_counter()
        _, ids = dense_ranking(index, q, k, None)
        times.append(time.perf_counter() - t)
        found[row, :len(ids)] = ids
    return percentiles_ms(times), found


def measure(n: int, kinds: tuple[str, ...], cfg: ScaleConfig = ScaleConfig()) -> dict:
    """Build and query the requested index kinds over `n` synthetic chunks; returns one JSON-able dict.

    Flat is always built: it is the exact ground truth HNSW's recall is measured against.
    """
    import faiss

    from index.build import BuildConfig, _dense_index

    bad = [k for k in kinds if k not in KINDS]
    if bad or n < cfg.k:
        raise ValueError(f"kinds must be among {KINDS} and n >= {cfg.k}; got kinds={kinds}, n={n}")
    rng = np.random.default_rng(cfg.seed)
    out: dict = {"n": n, "config": asdict(cfg), "faiss_threads": faiss.omp_get_max_threads()}
    base = rss_bytes()
    vectors = unit_vectors(n, cfg.dim, rng)
    queries = unit_vectors(cfg.queries, cfg.dim, rng)
    out["vectors_rss_mb"] = (rss_bytes() - base) / 2**20
    n_lat = cfg.queries if n <= 200_000 else cfg.latency_queries_max_n

    _log(f"n={n}: flat")
    before = rss_bytes()
    t = time.perf_counter()
    flat = _dense_index(vectors, BuildConfig().index_settings(0))   # index_settings(0) -> flat
    build_s = time.perf_counter() - t
    rss_delta = rss_bytes() - before
    latency, _ = _time_dense(flat, queries[:n_lat], cfg.k)
    # One query spread over OpenMP threads: worth it on idle cores, a loss when other processes hold them.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    latency_1, _ = _time_dense(flat, queries[:n_lat], cfg.k)
    faiss.omp_set_num_threads(threads)
    _, truth = flat.search(queries, cfg.recall_k)    # batched: the exact top-10 for every query
    if "flat" in kinds:
        out["flat"] = {"build_s": build_s, "index_mb": flat.ntotal * flat.d * 4 / 2**20,
                       "rss_delta_mb": rss_delta / 2**20, "latency_ms": latency,
                       "latency_1thread_ms": latency_1}
    del flat

    if "hnsw" in kinds:
        settings = BuildConfig(flat_max=0).index_settings(n)
        _log(f"n={n}: HNSW build {settings}")
        before = rss_bytes()
        t = time.perf_counter()
        hnsw = _dense_index(vectors, settings)
        build_s = time.perf_counter() - t
        rss_delta = rss_bytes() - before
        _log(f"n={n}: HNSW built in {build_s:.1f} s")
        latency, found = _time_dense(hnsw, queries[:n_lat], cfg.k)
        sweep = [{"ef_search": settings["ef_search"], "recall": recall_at_k(found, truth[:n_lat], cfg.recall_k),
                  "latency_ms": latency}]
        for ef in (e for e in cfg.ef_sweep if e > settings["ef_search"]):
            if sweep[-1]["recall"] >= cfg.recall_target:
                break
            hnsw.hnsw.efSearch = ef
            lat, found = _time_dense(hnsw, queries[:n_lat], cfg.k)
            sweep.append({"ef_search": ef, "recall": recall_at_k(found, truth[:n_lat], cfg.recall_k),
                          "latency_ms": lat})
        out["hnsw"] = {"settings": settings, "build_s": build_s, "index_mb": hnsw_bytes(hnsw) / 2**20,
                       "rss_delta_mb": rss_delta / 2**20, "latency_ms": sweep[0]["latency_ms"],
                       "recall": sweep[0]["recall"], "ef_sweep": sweep}
        del hnsw
    del vectors

    if "bm25" in kinds:
        out["bm25"] = _measure_bm25(n, cfg, rng)
    return out


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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, required=True, help="number of synthetic chunks")
    p.add_argument("--kinds", default="flat,hnsw,bm25", help=f"comma-separated subset of {','.join(KINDS)}")
    p.add_argument("--queries", type=int, default=ScaleConfig().queries)
    args = p.parse_args(argv)
    cfg = ScaleConfig(queries=args.queries)
    t = time.perf_counter()
    result = measure(args.n, tuple(k for k in args.kinds.split(",") if k), cfg)
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
