"""The benchmark: its pure helpers (fast), and (slow) `python -m eval.bench --quick` end to end into a temp dir."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eval.bench import StageTimer, render
from eval.scale import ScaleConfig, fit_power_law, percentiles_ms, recall_at_k, synthetic_tokens, unit_vectors

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Machine", "## Warm ask latency", "## Where the time goes", "## Hot spots", "## Cold start",
            "## Index build and open", "## Memory", "## Scale curve (synthetic)", "## What fits on one 2-core")


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


def test_fit_power_law_recovers_exponent():
    ns = [10_000, 100_000, 250_000]
    a, alpha = fit_power_law(ns, [2e-5 * n ** 1.3 for n in ns])
    assert alpha == pytest.approx(1.3) and a == pytest.approx(2e-5)
    with pytest.raises(ValueError, match="at least 2 sizes"):
        fit_power_law([10], [1.0])


def test_percentiles_ms():
    got = percentiles_ms([0.001] * 19 + [0.1])
    assert got["p50"] == pytest.approx(1.0) and got["p95"] > 1.0 and got["n"] == 20
    with pytest.raises(ValueError, match="no timings"):
        percentiles_ms([])


def test_synthetic_data_shapes():
    rng = np.random.default_rng(0)
    v = unit_vectors(1000, 384, rng, block=300)     # several blocks
    assert v.shape == (1000, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    cfg = ScaleConfig()
    docs = synthetic_tokens(2000, cfg, rng)
    assert len(docs) == 2000 and 50 < np.mean([len(d) for d in docs]) < 70
    counts = {}
    for d in docs:
        for w in d:
            counts[w] = counts.get(w, 0) + 1
    assert counts["w0"] > 5 * counts.get("w100", 1)    # Zipf: the top word is far more frequent than rank 100


def test_stage_timer_charges_nested_time_to_the_callee():
    timer = StageTimer()
    inner = timer.wrap(lambda stack: "inner in outer" if stack else "inner alone", lambda: time.sleep(0.05))

    def outer_body():
        time.sleep(0.01)
        inner()

    outer = timer.wrap("outer", outer_body)
    t = time.perf_counter()
    outer()
    inner()
    timer.end_ask(time.perf_counter() - t)
    got = {k: v[0] for k, v in timer.totals.items()}
    assert got["inner in outer"] >= 0.05 and got["inner alone"] >= 0.05
    assert 0.01 <= got["outer"] < 0.04                    # its own sleep, not the nested call's 0.05 s
    assert got["other (validation, filters, demotion, records, glue)"] >= -1e-9   # unclaimed time, never negative
    assert sum(got.values()) <= time.perf_counter() - t


@pytest.mark.slow
def test_quick_bench_writes_every_section(tmp_path):
    """`python -m eval.bench --quick` (20 asks, scale 2k only) into a temp folder, with the real model."""
    proc = subprocess.run([sys.executable, "-m", "eval.bench", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "bench.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in md, section
    data = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    serve = data["serve"]
    assert serve["ask_ms"]["n"] == 20 and serve["bare_ms"]["n"] == 20
    assert serve["ask_ms"]["p50"] > 0 and serve["memory"]["hwm_after_asks_mb"] > 100
    assert serve["whatif"]["sentence_tokens"]["identical_answers"] is True
    assert list(data["scale"]["results"]) == ["2000"]
    hnsw = data["scale"]["results"]["2000"]["hnsw"]
    assert hnsw["settings"]["type"] == "hnsw" and 0.5 < hnsw["recall"] <= 1.0
    assert data["cold"]["noop_build_s"]["median"] < data["cold"]["cold_build_s"]
    # The report is a pure function of the JSON: rendering it again gives the same text.
    assert render(data) == md
