"""Dense and sparse candidate lists, and their fusion: numpy in, numpy out, no records.

Scores of different retrievers are never added: cosine similarities and BM25 scores live on unrelated scales,
so only ranks are fused (weighted reciprocal rank fusion).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def dense_ranking(index, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the `k` nearest chunks by inner product, best first, restricted to `allowed` ids."""
    import faiss

    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    params = None
    if allowed is not None:
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = (faiss.SearchParametersIVF(sel=sel, nprobe=filtered_nprobe(index.nprobe, index.nlist, len(allowed),
                                                                            index.ntotal))
                  if isinstance(index, faiss.IndexIVF) else faiss.SearchParameters(sel=sel))
    D, I = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
    keep = I[0] >= 0   # FAISS pads with -1 when fewer than k pass the selector
    return D[0][keep], I[0][keep]


def filtered_nprobe(nprobe: int, nlist: int, allowed: int, total: int) -> int:
    """IVF lists to scan when only `allowed` of `total` vectors may be returned.

    The tuned nprobe finds the top-k among all vectors; a filter leaves each list with fewer candidates, so scan
    as many more lists as the filter removes: about as many allowed vectors are compared as an unfiltered search
    compares. A small filter (a few documents) scans every list, which is exact and still cheap: the selector
    rejects the other ids before any distance is computed. (SearchParametersIVF's own default is nprobe 1.)
    """
    return min(nlist, -(-nprobe * total // max(allowed, 1)))     # ceiling division


def group_ranking(scores: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank groups (chunks) by their best member (sentence): (best scores, group ids), best first, ties by id."""
    order = np.lexsort((groups, -scores))
    _, first = np.unique(groups[order], return_index=True)
    best = order[np.sort(first)][:k]
    return scores[best], groups[best]


def sparse_ranking(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the best `k` documents with a positive BM25 score, best first, ties by id."""
    if allowed is not None:
        masked = np.zeros_like(scores)
        masked[allowed] = scores[allowed]
        scores = masked
    ids = np.flatnonzero(scores > 0)
    order = np.lexsort((ids, -scores[ids]))[:k]
    return scores[ids[order]], ids[order]


def rrf(rankings: list[np.ndarray], weights: list[float], k: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Weighted reciprocal rank fusion of id lists (each best first): (scores, ids), best first, ties by id."""
    fused: dict[int, float] = {}
    for ids, w in zip(rankings, weights):
        for rank, i in enumerate(ids.tolist(), start=1):
            fused[i] = fused.get(i, 0.0) + w / (k + rank)
    if not fused:
        return np.zeros(0, np.float64), np.zeros(0, np.int64)
    ids = np.fromiter(fused.keys(), dtype=np.int64, count=len(fused))
    scores = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


def char_bigrams(text: str) -> frozenset[str]:
    compact = "".join(text.split())
    return frozenset(compact[i:i + 2] for i in range(len(compact) - 1))


def collapse_duplicates(ids: np.ndarray, bigrams: Iterable[frozenset[str]], threshold: float,
                        limit: int | None = None) -> np.ndarray:
    """Keep the first of any group of near-duplicates (Jaccard of character bigrams >= threshold), in order.

    `bigrams` runs parallel to `ids` and is read only as far as needed: with `limit`, the scan stops once
    that many are kept, so a lazy iterable computes the bigrams of a few passages instead of all.
    """
    kept: list[int] = []
    kept_grams: list[frozenset[str]] = []
    if limit is not None and limit < 1:
        return np.zeros(0, dtype=np.int64)
    for i, grams in zip(ids.tolist(), bigrams):
        # |a | b| = |a| + |b| - |a & b|: no union set built for every comparison
        if any((inter := len(grams & g)) / max(1, len(grams) + len(g) - inter) >= threshold for g in kept_grams):
            continue
        kept.append(i)
        kept_grams.append(grams)
        if len(kept) == limit:
            break
    return np.asarray(kept, dtype=np.int64)
