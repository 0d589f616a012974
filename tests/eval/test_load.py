"""eval/load.py: its pure parts, and a shorter load run against a real `assistant serve` with the same checks."""
import math

import pytest

from eval import load


@pytest.mark.parametrize("values, q, want", [
    ([], 50, math.nan),
    ([7.0], 95, 7.0),
    ([1, 2, 3, 4], 50, 2.5),
    ([4, 1, 3, 2], 0, 1),
    ([4, 1, 3, 2], 100, 4),
    (list(range(1, 101)), 95, 95.05),
])
def test_percentile(values, q, want):
    got = load.percentile(values, q)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


@pytest.mark.parametrize("url, ok", [
    ("http://127.0.0.1:7860", True),
    ("http://127.8.9.10:1", True),
    ("http://localhost:7860/", True),
    ("http://[::1]:7860", True),
    ("http://0.0.0.0:7860", False),
    ("http://10.0.0.5:7860", False),
    ("http://192.168.1.2", False),
    ("http://example.org", False),
    ("http://127.0.0.1.example.org", False),
])
def test_only_loopback_is_a_target(url, ok):
    assert load.is_loopback(url) is ok


def test_run_refuses_a_remote_url():
    with pytest.raises(ValueError, match="only loopback"):
        load.run("http://192.168.1.2:7860", None, ["q"])


def test_schedule_cycles_in_order():
    assert load.schedule(["a", "b", "c"], 7) == ["a", "b", "c", "a", "b", "c", "a"]


def test_comparable_drops_only_the_timing():
    assert load.comparable({"question": "q", "elapsed_ms": 3.2, "passages": []}) == {"question": "q", "passages": []}


def test_questions_are_distinct_and_many():
    qs = load.load_questions()
    assert len(qs) == len(set(qs)) >= 100


@pytest.mark.slow
def test_sixteen_clients_against_the_real_server(tmp_path):
    """600 questions (2,000 in `python -m eval.load`) from 16 clients: no errors, the single-client answers,
    memory after the run within 10 % of after the first 100."""
    port = load.free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = load.start_server(load.ROOT / "seeds", port, index=None, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        import time
        load.wait_until_ready(url, time.monotonic() + 900, proc)
        result = load.run(url, proc.pid, load.load_questions(),
                          load.LoadConfig(clients=16, questions=600, checkpoint=100, time_limit=1800))
    finally:
        load.stop_server(proc)
        log.seek(0)
        server_log = log.read()
        log.close()
    print("\n" + result.summary())
    assert result.errors == 0, result.error_samples
    assert result.mismatches == 0, result.error_samples
    assert result.questions == 600 and result.p50_ms <= result.p95_ms <= result.max_ms
    assert abs(result.rss_growth) <= 0.10, result.rss_mb
    assert result.passed
    assert "Traceback" not in server_log
