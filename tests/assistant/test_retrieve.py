import faiss
import numpy as np
import pytest

from assistant.retrieve import (char_bigrams, collapse_duplicates, dense_ranking, filtered_nprobe, rrf,
                                sparse_ranking)
from index.dense import train_ivf


def test_rrf_rewards_agreement_and_breaks_ties_by_id():
    scores, ids = rrf([np.array([3, 1, 2]), np.array([1, 3, 5])], [1.0, 1.0], k=60)
    assert ids.tolist()[:2] == [1, 3]        # 1 and 3 tie (ranks 2+1 and 1+2): the smaller id first
    assert set(ids.tolist()) == {1, 2, 3, 5}
    assert np.all(np.diff(scores) <= 0)


def test_rrf_weights_and_empty():
    _, ids = rrf([np.array([7]), np.array([8])], [1.0, 2.0])
    assert ids.tolist() == [8, 7]
    s, ids = rrf([np.array([], dtype=np.int64)], [1.0])
    assert len(s) == len(ids) == 0


def test_sparse_ranking_drops_zero_scores_and_respects_filter():
    scores = np.array([0.0, 2.0, 5.0, 2.0, 0.5], dtype=np.float32)
    assert sparse_ranking(scores, 10, None)[1].tolist() == [2, 1, 3, 4]
    assert sparse_ranking(scores, 2, None)[1].tolist() == [2, 1]
    assert sparse_ranking(scores, 10, np.array([1, 4]))[1].tolist() == [1, 4]


def test_collapse_keeps_first_of_near_duplicates():
    texts = ["国有企业党建工作与生产经营深度融合。", "国有企业党建工作与生产经营深度融合！", "完全不同的另一段文字内容"]
    kept = collapse_duplicates(np.array([4, 9, 2]), [char_bigrams(t) for t in texts], 0.8)
    assert kept.tolist() == [4, 2]


def test_collapse_stops_reading_bigrams_at_the_limit():
    texts = ["甲乙丙丁戊己", "甲乙丙丁戊己", "庚辛壬癸子丑", "寅卯辰巳午未", "申酉戌亥天地"]
    read = []

    def lazy():
        for t in texts:
            read.append(t)
            yield char_bigrams(t)

    kept = collapse_duplicates(np.arange(5), lazy(), 0.8, limit=2)
    assert kept.tolist() == [0, 2]          # the duplicate (1) skipped, then stopped after two kept
    assert len(read) == 3                   # texts 3 and 4 never had their bigrams computed
    assert collapse_duplicates(np.arange(5), [char_bigrams(t) for t in texts], 0.8).tolist() == [0, 2, 3, 4]


def _unit(rng, n, d):
    X = rng.normal(size=(n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _index(kind, X, nprobe=32):
    """Exact, or an IVF of 64 lists (as index/dense.py builds it) scanning `nprobe` of them."""
    if kind == "flat":
        index = faiss.IndexFlatIP(X.shape[1])
    else:
        index = train_ivf(X, 64)
        index.nprobe = nprobe
    index.add(X)
    return index


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_dense_ranking_matches_brute_force(kind):
    rng = np.random.default_rng(0)
    X = _unit(rng, 2000, 32)
    index = _index(kind, X)
    recalls = []
    for q in X[:20] + 0.1 * rng.normal(size=(20, 32)).astype(np.float32):
        truth = np.argsort(-(X @ q), kind="stable")[:10]
        _, got = dense_ranking(index, q, 10, None)
        recalls.append(len(set(got.tolist()) & set(truth.tolist())) / 10)
    assert np.mean(recalls) >= (1.0 if kind == "flat" else 0.95)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_dense_ranking_filter_returns_only_allowed(kind):
    rng = np.random.default_rng(1)
    X = _unit(rng, 2000, 8)
    index = _index(kind, X, nprobe=2)
    allowed = np.array([3, 50, 77, 1500, 1999])
    for q in X[:10]:
        _, ids = dense_ranking(index, q, 10, allowed)
        # all allowed ids, in exact order: a small filter makes the IVF scan every list
        assert ids.tolist() == allowed[np.argsort(-(X[allowed] @ q))].tolist()


def test_filtered_ivf_search_scans_at_least_the_tuned_nprobe():
    rng = np.random.default_rng(2)
    X = _unit(rng, 2000, 32)
    index = _index("ivf", X, nprobe=16)
    everything = np.arange(len(X))
    for q in X[:10] + 0.1 * rng.normal(size=(10, 32)).astype(np.float32):
        unfiltered = dense_ranking(index, q, 10, None)[1]
        assert dense_ranking(index, q, 10, everything)[1].tolist() == unfiltered.tolist()
    # ... which SearchParametersIVF's default would not: it scans one list unless told otherwise
    sel = faiss.IDSelectorBatch(everything)
    _, I = index.search(X[:10], 10, params=faiss.SearchParametersIVF(sel=sel))
    _, J = index.search(X[:10], 10)
    assert faiss.SearchParametersIVF().nprobe == 1 and not np.array_equal(I, J)


@pytest.mark.parametrize("nprobe, nlist, allowed, total, want", [
    (16, 1024, 100_000, 100_000, 16),    # no filter in effect: the tuned value
    (16, 1024, 50_000, 100_000, 32),     # half the vectors allowed: twice the lists
    (16, 1024, 3_000, 100_000, 534),     # rounded up
    (16, 1024, 20, 100_000, 1024),       # a few documents: every list (exact)
    (16, 1024, 0, 100_000, 1024),
])
def test_filtered_nprobe(nprobe, nlist, allowed, total, want):
    assert filtered_nprobe(nprobe, nlist, allowed, total) == want
