"""The dense index: the IVF size rule, nprobe tuning against exact search, probe queries, the exact fallback."""
import numpy as np
import pytest

from index.dense import (DenseConfig, build_dense, exact_top_k, nlist_for, probe_queries, recall_at_k, train_ivf,
                         tune_nprobe)


@pytest.mark.parametrize("n, want", [
    (10_000, 512),          # 4 * sqrt(n) = 400: the nearest power of two
    (100_000, 1024),        # 1265
    (1_000_000, 4096),      # 4000
    (152, 64),
    (11, 8),                # 13.3 -> 16 lists would outnumber the vectors
    (1, 1),
])
def test_nlist_for(n, want):
    assert nlist_for(n) == want


@pytest.mark.parametrize("found, truth, k, want", [
    ([[1, 2, 3]], [[1, 2, 3]], 3, 1.0),
    ([[3, 2, 1]], [[1, 2, 3]], 3, 1.0),             # order inside the top-k does not matter
    ([[1, 9, 8]], [[1, 2, 3]], 3, 1 / 3),
    ([[1, 2, 9, 3]], [[1, 2, 3, 4]], 2, 1.0),       # only the first k columns count
    ([[1, 2], [7, 8]], [[1, 2], [1, 2]], 2, 0.5),   # mean over queries
])
def test_recall_at_k(found, truth, k, want):
    assert recall_at_k(np.array(found), np.array(truth), k) == pytest.approx(want)


def test_recall_at_k_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="found has 1 queries, truth 2"):
        recall_at_k(np.zeros((1, 10)), np.zeros((2, 10)), 10)
    with pytest.raises(ValueError, match="need at least k=10 columns"):
        recall_at_k(np.zeros((1, 5)), np.zeros((1, 10)), 10)


class ScriptedIVF:
    """Stands in for an IVF: returns `hits[nprobe]` of the 10 true ids (0..9) and records each nprobe tried."""

    def __init__(self, nlist: int, hits: dict[int, int]):
        self.nlist, self.hits, self.tried = nlist, hits, []

    def search(self, queries, k, params):
        self.tried.append(params.nprobe)
        h = self.hits[params.nprobe]
        ids = np.array([list(range(h)) + list(range(100, 100 + k - h))] * len(queries))
        return np.zeros(ids.shape, np.float32), ids


TRUTH = np.array([list(range(10))])


@pytest.mark.parametrize("nlist, hits, target, want, tried", [
    (64, {8: 7, 16: 9, 32: 10, 64: 10}, 0.9, (16, 0.9), [8, 16]),        # the first sufficient value, no further
    (64, {8: 10}, 0.98, (8, 1.0), [8]),                                   # already the start suffices
    (64, {8: 1, 16: 2, 32: 5, 64: 9}, 0.98, (64, 0.9), [8, 16, 32, 64]),  # never reached: stops at nlist
    (40, {8: 1, 16: 2, 32: 5, 40: 10}, 0.98, (40, 1.0), [8, 16, 32, 40]),  # nlist not a power of two: capped
    (4, {4: 10}, 0.98, (4, 1.0), [4]),                                    # fewer lists than the start value
])
def test_tune_nprobe_returns_the_smallest_sufficient_nprobe(nlist, hits, target, want, tried):
    index = ScriptedIVF(nlist, hits)
    got = tune_nprobe(index, np.zeros((1, 4), np.float32), TRUTH, target, 10)
    assert got[0] == want[0] and got[1] == pytest.approx(want[1])
    assert index.tried == tried


def test_tune_nprobe_rejects_bad_target():
    with pytest.raises(ValueError, match="target must be in"):
        tune_nprobe(ScriptedIVF(8, {}), np.zeros((1, 4), np.float32), TRUTH, 1.5, 10)


def _clustered(n, d, rng, centers=50):
    """Unit vectors around `centers` random directions: structure an IVF can use."""
    c = rng.standard_normal((centers, d)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_tune_nprobe_on_a_real_ivf_against_exact_search():
    rng = np.random.default_rng(0)
    X = _clustered(5000, 32, rng)
    Q = _clustered(100, 32, rng)
    index = train_ivf(X, nlist_for(len(X)))
    index.add(X)
    truth = exact_top_k(X, Q, 10)
    assert (truth[:, 0] == np.argmax(Q @ X.T, axis=1)).all()        # exact_top_k is exact
    nprobe, recall = tune_nprobe(index, Q, truth, 0.98, 10, start=2)
    assert recall >= 0.98 and 2 < nprobe < index.nlist
    index.nprobe = nprobe // 2
    _, found = index.search(Q, 10)
    assert recall_at_k(found, truth, 10) < 0.98                       # half of it was not enough


def test_train_ivf_is_reproducible():
    rng = np.random.default_rng(1)
    X = _clustered(3000, 16, rng)
    a, b = train_ivf(X, 64, seed=3), train_ivf(X, 64, seed=3)
    assert np.array_equal(a.quantizer.reconstruct_n(0, 64), b.quantizer.reconstruct_n(0, 64))


def test_probe_queries_sample_sentences_or_perturb_chunks():
    rng = np.random.default_rng(2)
    chunks, sentences = _clustered(300, 16, rng), _clustered(1000, 16, rng)
    cfg = DenseConfig(probes=50)
    q = probe_queries(chunks, sentences, cfg)
    assert q.shape == (50, 16) and np.array_equal(q, probe_queries(chunks, sentences, cfg))   # seeded
    assert all((np.abs(sentences - row).sum(axis=1) == 0).any() for row in q)                  # real sentences
    q = probe_queries(chunks, sentences[:0], cfg)
    assert q.shape == (50, 16) and np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    nearest = (q @ chunks.T).max(axis=1)
    assert (nearest < 1 - 1e-6).all() and (nearest > 0.95).all()     # near a chunk, but not a copy of it


def test_build_dense_exact_below_flat_max_ivf_above_or_exact_with_reason():
    rng = np.random.default_rng(3)
    X, P = _clustered(4000, 32, rng), _clustered(100, 32, rng)
    index, settings = build_dense(X, P, DenseConfig(flat_max=4000))
    assert settings == {"type": "flat", "metric": "inner_product"} and index.ntotal == 4000
    index, settings = build_dense(X, P, DenseConfig(flat_max=1000))
    assert settings["type"] == "ivf" and settings["probe_recall"] >= 0.98 and settings["probes"] == 100
    assert index.nlist == settings["nlist"] == 256 and index.nprobe == settings["nprobe"] <= 128
    index, settings = build_dense(X, P, DenseConfig(flat_max=1000, max_scan=0.01))
    assert settings["type"] == "flat" and index.ntotal == 4000 and "exact search" in settings["reason"]
    assert settings["ivf_tried"]["nprobe"] >= 8


@pytest.mark.parametrize("bad", [{"target_recall": 0}, {"target_recall": 1.2}, {"max_scan": 0}, {"probes": 0},
                                 {"start_nprobe": 0}])
def test_dense_config_rejects_out_of_range_settings(bad):
    with pytest.raises(ValueError, match=f"{next(iter(bad))}={next(iter(bad.values()))}.*try the defaults"):
        DenseConfig(**bad)
