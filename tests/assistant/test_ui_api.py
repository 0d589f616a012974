"""The `/ask` HTTP endpoint through gradio_client, over the real model: JSON shape, errors, eight at once."""
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client

from assistant import Assistant, ui

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [
    "什么是“一岗双责”？",
    "如何把党组织前置研究程序融入公司治理？",
    "党建与生产经营“两张皮”问题的根源是什么？",
    "如何发挥党员先锋模范作用推动生产经营？",
    "北起院哪一年利润总额首次突破一亿元？",
    "How can Party building be integrated with business operations in state-owned enterprises?",
    "基层党组织如何开展党建联系点制度？",
    "量子计算机的散热方案",          # nothing in the corpus: found is False, still an answer
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InFlight:
    """Wraps the shared Assistant and records how many `ask` calls overlap.

    With `expect` set, each call waits (up to `hold` seconds) until that many calls are inside at once, so
    calls the server runs together are seen together however slowly a busy machine dispatches them, while
    a server that runs fewer at a time leaves the peak below `expect` once the wait times out.
    """

    def __init__(self, inner, hold: float = 0.0):
        self.inner, self.hold, self.expect = inner, hold, 0
        self.now = self.peak = 0
        self.changed = threading.Condition()

    def ask(self, *args, **kw):
        with self.changed:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.changed.notify_all()
        try:
            answer = self.inner.ask(*args, **kw)
            with self.changed:
                self.changed.wait_for(lambda: self.peak >= self.expect, timeout=self.hold)
            return answer
        finally:
            with self.changed:
                self.now -= 1

    def __getattr__(self, name):      # context, articles, example_questions
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def real(tmp_path_factory, real_embedder):
    # Same folder as test_ui_browser.py: the second module to run finds the index up to date.
    return Assistant.open(ROOT / "seeds", index=tmp_path_factory.getbasetemp() / "ui_seeds_index",
                          embedder=real_embedder, progress=False)


@pytest.fixture(scope="module")
def server(real):
    counting = InFlight(real)
    demo = ui.start(counting, host="127.0.0.1", port=free_port())
    try:
        yield demo.local_url, counting
    finally:
        demo.close(verbose=False)


def comparable(d: dict) -> dict:
    """An answer without its timing, which differs from call to call."""
    return {k: v for k, v in d.items() if k != "elapsed_ms"}


def test_ask_returns_the_answer_json(server, real):
    url, _ = server
    client = Client(url, verbose=False)
    got = client.predict("什么是“一岗双责”？", 3, api_name="/ask")
    assert isinstance(got, dict)
    assert comparable(got) == comparable(real.ask("什么是“一岗双责”？", top_k=3).to_dict())
    assert got["found"] is True and len(got["passages"]) == 3
    p = got["passages"][0]
    assert {"text", "confidence", "highlights", "highlighted_text", "citation"} <= set(p)
    assert p["citation"]["reference"].endswith("）") and "[J]" in p["citation"]["reference"]
    assert any("一岗双责" in q["text"] for q in got["passages"])


def test_top_k_defaults_to_five(server):
    url, _ = server
    got = Client(url, verbose=False).predict("党建工作考核", api_name="/ask")
    assert len(got["passages"]) == 5


def test_only_ask_is_offered_to_clients(server):
    url, _ = server
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/ask"}
    assert api["unnamed_endpoints"] == {}


@pytest.mark.parametrize("question, top_k, match", [
    ("", 5, "问题为空"),
    ("党" * 2001, 5, "问题过长"),
    ("党建", 0, "between 1 and 50, got 0"),
    ("党建", 51, "got 51"),
])
def test_bad_input_is_a_clear_error(server, question, top_k, match):
    url, _ = server
    with pytest.raises(Exception, match=match) as info:
        Client(url, verbose=False).predict(question, top_k, api_name="/ask")
    assert "Traceback" not in str(info.value)


def test_eight_clients_at_once_get_the_single_threaded_answers(server, real):
    url, counting = server
    expected = {q: comparable(real.ask(q, top_k=5).to_dict()) for q in QUESTIONS}
    clients = [Client(url, verbose=False) for _ in QUESTIONS]
    barrier = threading.Barrier(len(QUESTIONS))

    def call(i: int) -> dict:
        barrier.wait()                 # all eight requests leave together
        return clients[i].predict(QUESTIONS[i], 5, api_name="/ask")

    counting.peak, counting.hold, counting.expect = 0, 20.0, len(QUESTIONS)
    try:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            got = list(pool.map(call, range(len(QUESTIONS))))
        wall = time.perf_counter() - t0
    finally:
        counting.hold, counting.expect = 0.0, 0
    assert [comparable(g) for g in got] == [expected[q] for q in QUESTIONS]
    # all eight were inside `ask` at the same moment: the queue does not serialise users
    assert counting.peak == len(QUESTIONS), f"peak concurrency {counting.peak}, wall {wall:.1f}s"
