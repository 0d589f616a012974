"""The dense (FAISS) index: exact search up to a size, above it IVF-Flat with `nprobe` tuned at build time.

An approximate index is only worth its recall loss when it is much faster than the exact scan, and how many lists
an IVF must scan for a given recall depends on the data (for recall@10 0.98 at 100k chunks: a quarter of them on
vectors shaped like multilingual-e5's, all of them on isotropic random vectors: eval/scale.py). So `nprobe` is not a
fixed setting but measured on the corpus being indexed: the smallest one whose recall@10 against exact search
reaches the target on probe queries. When that needs more than half the lists the IVF gains little over exact
search, and the exact index is kept.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("assistant")

TYPES = ("flat", "ivf")


@dataclass(frozen=True, slots=True)
class DenseConfig:
    # Exact search up to this many chunks. Measured by eval/scale.py on one thread at 100k chunks: exact 15-16 ms;
    # the tuned IVF 5.4 ms on e5-like vectors (nprobe 256 of 1024, recall@10 0.995) and no faster on random ones
    # (it needs every list). Up to 200k the exact scan costs ~30 ms, less than the exact search over the 3.3x as
    # many sentence vectors that every ask also runs, with recall 1.0 and no training; above, the IVF's 3x is
    # worth more than its last 1-2% of recall (and the build falls back to exact search when it is not faster).
    flat_max: int = 200_000
    target_recall: float = 0.98    # recall@k of the IVF against exact search, on the probe queries
    recall_k: int = 10
    probes: int = 256              # probe queries (sentence vectors) the recall is measured on
    start_nprobe: int = 8          # tuning doubles nprobe from here up to nlist
    max_scan: float = 0.5          # keep the exact index when the tuned IVF scans more than this share of lists
    probe_noise: float = 0.1       # norm of the noise added to chunk vectors when there are no sentence vectors
    seed: int = 0                  # training sample and probe sample: the same corpus gives the same index

    def __post_init__(self) -> None:
        if not (0 < self.target_recall <= 1 and 0 < self.max_scan <= 1 and self.probes >= 1 and self.recall_k >= 1
                and self.start_nprobe >= 1):
            raise ValueError(
                f"dense index settings out of range: target_recall={self.target_recall} and max_scan={self.max_scan} "
                f"must be in (0, 1], probes={self.probes}, recall_k={self.recall_k} and "
                f"start_nprobe={self.start_nprobe} at least 1; try the defaults 0.98, 0.5, 256, 10, 8")

    def ivf_pays(self, nprobe: int, nlist: int) -> bool:
        """Whether an IVF scanning `nprobe` of `nlist` lists is worth its recall loss over the exact scan."""
        return nprobe <= self.max_scan * nlist


def nlist_for(n: int) -> int:
    """IVF lists for `n` vectors: the power of two nearest 4 * sqrt(n) (faiss' rule of thumb), at most n."""
    if n < 1:
        raise ValueError(f"an IVF needs at least one vector, got n={n}")
    return min(2 ** round(math.log2(4 * math.sqrt(n))), 2 ** int(math.log2(n)))


def flat_index(vectors: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def train_ivf(vectors: np.ndarray, nlist: int, seed: int = 0):
    """An empty IndexIVFFlat (inner product) whose `nlist` centroids are trained on a seeded sample of `vectors`.

    64 training vectors per list are plenty for k-means (faiss warns below 39) and bound the training time.
    """
    import faiss

    d = vectors.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    m = min(len(vectors), 64 * nlist)
    sample = vectors if m == len(vectors) else vectors[np.sort(rng.choice(len(vectors), m, replace=False))]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def probe_queries(vectors: np.ndarray, sentence_vectors: np.ndarray, config: DenseConfig) -> np.ndarray:
    """float32 (<= probes, d) queries to tune on: a seeded sample of sentence vectors, which look like questions
    about the corpus; without sentences, chunk vectors moved by a little noise (so they are not their own copy)."""
    rng = np.random.default_rng(config.seed)
    source = sentence_vectors if len(sentence_vectors) else vectors
    rows = np.sort(rng.choice(len(source), min(config.probes, len(source)), replace=False))
    queries = np.array(source[rows], dtype=np.float32)
    if not len(sentence_vectors):
        noise = rng.standard_normal(queries.shape, dtype=np.float32)
        queries += config.probe_noise * noise / math.sqrt(queries.shape[1])
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of the true top-k ids (rows of `truth`) that appear in the top-k of `found`."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError(f"found has {found.shape[0]} queries, truth {truth.shape[0]}; pass the same queries")
    if truth.shape[1] < k or found.shape[1] < k:
        raise ValueError(f"need at least k={k} columns, got found {found.shape[1]}, truth {truth.shape[1]}")
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k


def tune_nprobe(index, queries: np.ndarray, truth: np.ndarray, target: float, k: int,
                start: int = 8) -> tuple[int, float]:
    """(nprobe, recall): the first of start, 2*start, ... up to `index.nlist` whose recall@k against `truth`
    (the exact top-k ids of `queries`) reaches `target`; (nlist, its recall) when none does.

    Doubling costs at most log2(nlist / start) + 1 batched searches, and overshoots the smallest sufficient
    nprobe by less than 2x; the searches are cheap next to the training.
    """
    import faiss

    if not 0 < target <= 1 or start < 1:
        raise ValueError(f"target must be in (0, 1] and start >= 1, got target={target}, start={start}")
    nprobe = min(start, index.nlist)
    while True:
        _, found = index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        recall = recall_at_k(found, truth, k)
        if recall >= target or nprobe >= index.nlist:
            return nprobe, recall
        nprobe = min(2 * nprobe, index.nlist)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """int64 (len(queries), k): ids of the exact top-k by inner product (no index, so no copy of `vectors`)."""
    import faiss

    _, ids = faiss.knn(np.ascontiguousarray(queries, dtype=np.float32),
                       np.ascontiguousarray(vectors, dtype=np.float32), k, metric=faiss.METRIC_INNER_PRODUCT)
    return ids


def describe(settings: dict) -> str:
    """For the build's summary line: the IVF and its tuning, why exact search was kept, or "" (plain exact)."""
    if settings["type"] == "ivf":
        return (f"IVF index (nlist {settings['nlist']}, nprobe {settings['nprobe']}: recall@{settings['recall_k']} "
                f"{settings['probe_recall']:.3f} on {settings['probes']} probes)")
    return f"exact index kept: {settings['reason']}" if "reason" in settings else ""


def build_dense(vectors: np.ndarray, probes: np.ndarray, config: DenseConfig = DenseConfig()) -> tuple[object, dict]:
    """(faiss index, settings for the manifest) over `vectors` (float32, L2-normalized, inner product).

    Above `flat_max`: an IVF tuned on `probes`, or the exact index with the reason when the IVF would scan more
    than `max_scan` of its lists.
    """
    settings = {"type": "flat", "metric": "inner_product"}
    n = len(vectors)
    if n <= max(config.flat_max, config.recall_k):
        return flat_index(vectors), settings
    nlist = nlist_for(n)
    ivf = train_ivf(vectors, nlist, config.seed)
    ivf.add(np.ascontiguousarray(vectors, dtype=np.float32))
    truth = exact_top_k(vectors, probes, config.recall_k)
    nprobe, recall = tune_nprobe(ivf, probes, truth, config.target_recall, config.recall_k, config.start_nprobe)
    tuning = {"nlist": nlist, "nprobe": nprobe, "probe_recall": round(recall, 4), "probes": len(probes),
              "target_recall": config.target_recall, "recall_k": config.recall_k}
    if not config.ivf_pays(nprobe, nlist):
        reason = (f"IVF needs nprobe {nprobe} of {nlist} lists for recall@{config.recall_k} {recall:.3f} "
                  f"(target {config.target_recall}) on {len(probes)} probes: hardly faster than exact search")
        log.info("dense index over %d chunks: exact search kept, %s", n, reason)
        return flat_index(vectors), {**settings, "reason": reason, "ivf_tried": tuning}
    log.info("dense index over %d chunks: IVF, nlist %d, nprobe %d, probe recall@%d %.3f", n, nlist, nprobe,
             config.recall_k, recall)
    ivf.nprobe = nprobe
    return ivf, {"type": "ivf", "metric": "inner_product", **tuning}
