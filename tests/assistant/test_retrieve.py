import faiss
import numpy as np
import pytest

from assistant.retrieve import char_bigrams, collapse_duplicates, dense_ranking, rrf, sparse_ranking


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


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_dense_ranking_matches_brute_force(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 32)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(32) if kind == "flat" else faiss.IndexHNSWFlat(32, 32, faiss.METRIC_INNER_PRODUCT)
    if kind == "hnsw":
        index.hnsw.efSearch = 256
    index.add(X)
    recalls = []
    for q in X[:20] + 0.1 * rng.normal(size=(20, 32)).astype(np.float32):
        truth = np.argsort(-(X @ q), kind="stable")[:10]
        _, got = dense_ranking(index, q, 10, None)
        recalls.append(len(set(got.tolist()) & set(truth.tolist())) / 10)
    assert np.mean(recalls) >= (1.0 if kind == "flat" else 0.95)


def test_dense_ranking_filter_returns_only_allowed():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 8)).astype(np.float32)
    index = faiss.IndexFlatIP(8)
    index.add(X)
    allowed = np.array([3, 50, 77])
    _, ids = dense_ranking(index, X[0], 10, allowed)
    assert sorted(ids.tolist()) == [3, 50, 77]
    truth = allowed[np.argsort(-(X[allowed] @ X[0]))]
    assert ids.tolist() == truth.tolist()
