"""The benchmark: its pure helpers (fast), and (slow) `python -m eval.bench --quick` end to end into a temp dir."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eval.bench import StageTimer, render
from eval.startup import table as startup_table
from eval.scale import (ScaleConfig, fit_gaussian, gaussian_factor, ivf_bytes, percentiles_ms, synthetic_tokens,
                        unit_vectors)

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Machine", "## Warm ask latency", "## Where the time goes", "## Hot spots", "## Cold start",
            "## Index build and open", "## Memory", "## Scale curve (synthetic)", "## What fits on one 2-core")


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


def test_e5_like_vectors_follow_the_fitted_gaussian():
    rng = np.random.default_rng(1)
    # "real" embeddings: a strong common direction and a few dominant axes, as multilingual-e5's
    mean = np.zeros(16)
    mean[0] = 3.0
    real = mean + rng.standard_normal((500, 16)) * np.linspace(1.0, 0.1, 16)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    stats = fit_gaussian(real)
    assert stats.shape == (17, 16)
    v = unit_vectors(20_000, 16, rng, gaussian_factor(stats), block=7_000)
    assert v.shape == (20_000, 16) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # normalizing the Gaussian's samples moves them a little off the fitted moments, not far
    assert np.allclose(v.mean(axis=0), real.mean(axis=0), atol=0.02)
    assert np.allclose(np.cov(v, rowvar=False), np.cov(real, rowvar=False), atol=0.03)
    assert np.mean(v @ v[:100].T) == pytest.approx(np.mean(real @ real[:100].T), abs=0.05)
    # a covariance fitted on fewer vectors than dimensions is singular: still sampled
    singular = fit_gaussian(real[:5])
    assert np.isfinite(unit_vectors(10, 16, rng, gaussian_factor(singular))).all()
    with pytest.raises(ValueError, match="at least 2 vectors"):
        fit_gaussian(real[:1])
    with pytest.raises(ValueError, match=r"expected a \(17, 16\) mean \+ covariance array"):
        gaussian_factor(stats[:5])


def test_ivf_bytes_counts_vectors_ids_and_centroids():
    from index.dense import train_ivf

    X = unit_vectors(2000, 8, np.random.default_rng(2))
    index = train_ivf(X, 16)
    index.add(X)
    assert ivf_bytes(index) == 2000 * (8 * 4 + 8) + 16 * 8 * 4


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
    assert list(data["scale"]["results"]) == ["2000"] and data["scale"]["distributions"] == ["random", "e5"]
    assert data["scale"]["e5_fit"]["vectors"] == serve["counts"]["chunks"] + serve["counts"]["sentences"]
    for dist, r in data["scale"]["results"]["2000"].items():
        ivf = r["ivf"]
        assert r["distribution"] == dist and ivf["nlist"] == 128 and ivf["probe_recall"] >= 0.98
        assert [s["nprobe"] for s in ivf["sweep"]][:4] == [1, 2, 4, 8] and ivf["build_s"] > 0
        assert ivf["product_choice"] in ("ivf", "flat") and r["flat"]["latency_ms"]["n"] == 200
    assert "bm25" in data["scale"]["results"]["2000"]["random"]
    assert data["scale"]["results"]["2000"]["e5"]["mean_cosine"] > 0.5     # real embeddings are alike
    assert data["cold"]["noop_build_s"]["median"] < data["cold"]["cold_build_s"]
    # `make run` was timed until a real answer, over HTTP and in Chromium; each in its order of events
    mr = data["cold"]["make_run"]
    assert mr["http"]["ready_s"]["median"] < mr["http"]["first_answer_s"]["median"]
    assert mr["browser"]["page_s"]["median"] < mr["browser"]["first_answer_s"]["median"]
    assert "first answer in the browser" in md
    # The report is a pure function of the JSON: rendering it again gives the same text.
    assert render(data) == md


def test_startup_table_marks_the_target():
    def runs(*xs):
        return {"median": sorted(xs)[len(xs) // 2], "runs": list(xs)}
    d = {"http": {"ready_s": runs(8.0, 9.0, 8.5), "first_answer_s": runs(9.5, 10.0, 9.0)},
         "browser": {"ready_s": runs(8.0), "page_s": runs(10.0), "first_answer_s": runs(11.25)}}
    rows = startup_table(d)
    browser = next(r for r in rows if "first answer in the browser" in r)
    assert "| 11.2 |" in browser and "<= 20" in browser and "| met |" in browser
    d["browser"]["first_answer_s"] = runs(20.5)
    assert "**missed**" in next(r for r in startup_table(d) if "first answer in the browser" in r)
    assert "| 8.5 | 8.0, 9.0, 8.5 |" in rows[2]          # ready: median of the HTTP runs, every run listed
