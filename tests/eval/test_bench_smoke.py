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
            "## Index build and open", "## Memory", "## Scale curve (synthetic)", "## What fits on one 2-core",
            "## Encoding against the floor", "## Build time against corpus size")


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
    enc = data["encode"]
    assert enc["gemm_gflops"] > 1 and set(enc["paths"]) - {"auto, large build"} == {"onnx", "torch"}
    assert enc["paths"]["torch"]["vs_onnx"]["cos_min"] >= 0.9999            # the same vectors on both paths
    if "auto, large build" in enc["paths"]:                                  # a CPU with bf16 units
        assert enc["bf16_said"] == "bf16" and enc["gemm_gflops_bf16"] > enc["gemm_gflops"]
        assert enc["paths"]["auto, large build"]["vs_onnx"]["cos_min"] >= 0.9999
        assert "takes bf16 for its documents on this CPU" in md
    else:
        assert enc["bf16_said"].startswith("onnx fp32 (") and f"documents stay on {enc['bf16_said']}" in md
    assert [p["encoder"] for p in data["build_curve"]["points"]] == ["fake"]
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


def test_model_flops_counts_linear_layers_and_attention():
    from eval.bench import model_flops

    e5_small = {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 12}
    one, many = model_flops(e5_small, np.array([1, 128]))
    assert one == pytest.approx(42.5e6, rel=0.01)            # the 42.5 MFLOP a token of linear layers
    linear = 128 * 2 * 12 * (4 * 384**2 + 2 * 384 * 1536)
    assert many - linear == pytest.approx(2 * 12 * 128 * 2 * 128 * 384)    # attention grows with length squared


def test_gemm_probe_reports_a_plausible_rate():
    from eval.bench import gemm_gflops

    assert 0.5 < gemm_gflops(m=256, repeats=2) < 10_000


def test_synthetic_build_corpus_has_the_size_and_no_repeated_sentences(tmp_path):
    from eval.scale import build_sources, synthetic_corpus

    sources = build_sources()
    assert len(sources) >= 5
    info = synthetic_corpus(tmp_path, 0.3, sources[:3])
    files = sorted(tmp_path.iterdir())
    assert info["files"] == len(files) and abs(info["bytes"] - 0.3 * 2**20) < max(p.stat().st_size for p in files)
    copies: dict[str, set[str]] = {}
    for p in files:                                   # copy k's files are named k_<source>
        copies.setdefault(p.name.split("_")[0], set()).update(
            s for s in p.read_text(encoding="utf-8").split("。") if len(s) > 30)
    assert len(copies) >= 2 and all(len(s) > 50 for s in copies.values())
    seen: set[str] = set()
    for sentences in copies.values():                 # no sentence of one copy repeats in another
        assert not sentences & seen
        seen |= sentences


def test_encode_and_build_curve_sections_render_goals_and_shares():
    from eval.bench import build_curve_section, encode_section

    path = lambda over, q_ms, q_over: {"chunks": {"texts_per_s": 30.0, "over_floor": over},
                                       "sentences": {"texts_per_s": 90.0, "over_floor": over},
                                       "question_ms": {"p50": q_ms}, "question_over_floor_p50": q_over,
                                       "loadavg": [0.5, 0.4, 0.3]}
    e = {"config": {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 12},
         "flops_per_token_linear": 42.5e6, "gemm_gflops": 180.0, "texts": {"chunks": 152, "sentences": 497},
         "questions": 100, "question_tokens_mean": 20.0, "floor_question_ms_p50": 3.0,
         "tokens": {k: {"total": 1000, "mean": 120.0, "max": 300, "padded_onnx": 1100} for k in ("chunks", "sentences")},
         "floor_s": {"chunks": 4.0, "sentences": 4.0}, "load_s": {"onnx": 1.0, "torch": 3.0},
         "loadavg": {"start": [0.5, 0.4, 0.3], "end": [0.6, 0.4, 0.3]},
         "paths": {"onnx": path(1.2, 6.0, 2.0), "torch": {**path(2.6, 20.0, 6.7),
                   "vs_onnx": {"cos_min": 0.99999, "top10_jaccard": 1.0}}}}
    md = "\n".join(encode_section(e))
    assert "| floor | 38.0 | 124.2 | 3.0 |" in md and "1.10x their tokens" in md
    assert "documents within 1.3x of the floor (met: 1.20x" in md and "questions within 2.5x (met: 2.00x)" in md
    e["paths"]["onnx"] = path(1.5, 9.0, 3.0)
    assert "(**missed**: 1.50x" in "\n".join(encode_section(e))
    e["bf16_said"] = "onnx fp32 (this CPU reports no bf16 matrix instructions)"
    assert "Large builds: documents stay on onnx fp32 (this CPU reports no bf16" in "\n".join(encode_section(e))
    e.update(bf16_said="bf16", gemm_gflops_bf16=1800.0)
    e["paths"]["auto, large build"] = {**path(0.6, 9.0, 3.0), "vs_onnx": {"cos_min": 0.99998, "top10_jaccard": 0.98}}
    md = "\n".join(encode_section(e))
    assert "| auto, large build | 30.0 | 90.0 | 9.0 | 0.60x / 0.60x |" in md
    assert "takes bf16 for its documents on this CPU" in md and "(10.0x fp32)" in md and "path is at 6.0x" in md
    pt = lambda mb, enc, s, other: {"megabytes": mb, "encoder": enc, "files": 3, "chunks": 100, "texts_embedded": 400,
                                    "bytes": mb * 2**20, "seconds": s, "encode_seconds": s - other, "texts_per_s": 40.0,
                                    "other_seconds": other, "other_share": other / s, "peak_rss_mb": 200.0,
                                    "loadavg": [[0.5, 0.4, 0.3], [0.5, 0.4, 0.3]]}
    md = "\n".join(build_curve_section({"points": [pt(1, "fake", 5.0, 4.0), pt(4, "fake", 20.0, 16.0),
                                                    pt(1, "real", 14.0, 4.0)]}))
    assert "| 4 | fake | 3 | 100 | 400 | 20.0 | 5.0 |" in md and "80%" in md
    assert "10 s of encoding a MB" in md and "plus 4.0 s of the rest" in md and "the rest is 29% of a real build" in md
