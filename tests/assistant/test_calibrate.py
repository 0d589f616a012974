"""Self-calibration: probe supports computed once per index, cached as JSON, recomputed when anything changes."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, AskConfig, calibrate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", dst)
    return dst


def test_thresholds_are_a_quantile_of_the_probe_supports_plus_the_margin():
    supports = {"zh": [0.1 * i for i in range(11)], "en": [0.5] * 5}
    t = calibrate.thresholds_from(supports, AskConfig(probe_quantile=0.9, probe_margin=0.02, probe_margin_latin=-0.1))
    assert t.found == pytest.approx(0.9 + 0.02)
    assert t.found_latin == pytest.approx(0.4)
    assert t.origin == "self-calibrated (16 probes)"


def test_probes_are_asked_once_then_read_from_the_cache(corpus, tmp_path, fake_embedder):
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    path = calibrate.cache_path(a.index_dir)
    assert path.is_file() and path.parent == a.index_dir
    from assistant.query import model_text

    probes = {model_text(p, a.config) for p in (*calibrate.PROBES_ZH, *calibrate.PROBES_EN)}   # as the model reads them
    assert probes <= set(fake_embedder.queries)
    before = len(fake_embedder.queries)
    again = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    assert len(fake_embedder.queries) == before            # no probe encoded again
    assert again.thresholds() == a.thresholds()


def test_a_changed_knob_or_a_damaged_cache_recomputes(corpus, tmp_path, fake_embedder):
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    path = calibrate.cache_path(a.index_dir)
    key = json.loads(path.read_text(encoding="utf-8"))["key"]
    other = AskConfig(coverage_weight=0.5)
    assert calibrate.cache_key(a.loaded, fake_embedder, other) != key
    # the margin is applied after the cache: changing it must not invalidate the probes
    assert calibrate.cache_key(a.loaded, fake_embedder, AskConfig(probe_margin=0.3)) == key
    path.write_text("{not json", encoding="utf-8")
    before = len(fake_embedder.queries)
    b = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    assert len(fake_embedder.queries) > before
    assert b.thresholds() == a.thresholds()
    assert json.loads(path.read_text(encoding="utf-8"))["key"] == key


def test_probe_supports_respect_a_row_filter(corpus, tmp_path, fake_embedder):
    a = Assistant.open(corpus, index=tmp_path / "idx", embedder=fake_embedder, progress=False)
    rows = a.loaded.by_source[sorted(a.loaded.by_source)[0]]
    whole = calibrate.probe_supports(a.loaded, fake_embedder, a.config)
    part = calibrate.probe_supports(a.loaded, fake_embedder, a.config, allowed=rows)
    assert len(part["zh"]) == len(calibrate.PROBES_ZH) and len(part["en"]) == len(calibrate.PROBES_EN)
    every = calibrate.probe_supports(a.loaded, fake_embedder, a.config, allowed=np.arange(len(a.loaded.stored.chunks)))
    assert np.allclose(every["zh"], whole["zh"]) and np.allclose(every["en"], whole["en"])
    assert not np.allclose(part["zh"], whole["zh"])      # one file of five: other passages, other supports
