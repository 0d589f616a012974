"""The chat page in Debian's Chromium, driven by playwright, over the real model and the real index.

Screenshots go to test-artifacts/ (git-ignored) so a person can look at what a user sees.
"""
import dataclasses
import json
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import gradio as gr
import pytest

from assistant import Assistant, ui

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
TITLE = "国企党建与生产经营工作创新融合的探索实践"
QUESTION = "什么是“一岗双责”？"
PAYLOAD_SCRIPT = "<script>window.__pwned=1</script>"
PAYLOAD_IMG = '<img src=x onerror="window.__pwned=1">'
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo: gr.Blocks):
    """Launch a built Blocks on a free loopback port; always closed afterwards."""
    demo.launch(**ui.launch_options("127.0.0.1", free_port()))
    try:
        yield demo.local_url
    finally:
        demo.close(verbose=False)


@pytest.fixture(scope="module")
def seeds_assistant(tmp_path_factory, real_embedder):
    # The real bundled model: the 一岗双责 answer is a claim about retrieval quality, not wiring.
    # One index folder per session (test_ui_api.py opens the same one and finds it up to date).
    return Assistant.open(ROOT / "seeds", index=tmp_path_factory.getbasetemp() / "ui_seeds_index",
                          embedder=real_embedder, progress=False)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def seeds_url(seeds_assistant):
    with serving(ui.build_ui(seeds_assistant)) as url:
        yield url


def open_page(browser, url, viewport):
    ctx = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("textarea", timeout=60_000)
    return ctx, page, errors


def ask(page, question: str):
    """Type a question, press Enter, wait for the new reply; returns the reply's locator."""
    n = page.locator(".pa-answer, .pa-error").count()
    page.locator("textarea").first.fill(question)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('.pa-answer, .pa-error').length > {n}",
                           timeout=120_000)
    page.wait_for_timeout(600)    # let the scroll-to-question settle before a screenshot
    return page.locator(".pa-answer, .pa-error").nth(n)


def rows_visible(page, locator) -> bool:
    """The element's top edge is inside the window (is_visible() alone ignores scrolling)."""
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] < page.viewport_size["height"]


@pytest.mark.parametrize("name, viewport", [("desktop", DESKTOP), ("phone", PHONE)])
def test_yigang_shuangze_shows_title_and_highlight(browser, seeds_url, name, viewport):
    ARTIFACTS.mkdir(exist_ok=True)
    ctx, page, errors = open_page(browser, seeds_url, viewport)
    try:
        page.screenshot(path=str(ARTIFACTS / f"ui_{name}_empty.png"))
        reply = ask(page, QUESTION)
        page.screenshot(path=str(ARTIFACTS / f"ui_{name}_answer.png"))
        assert reply.locator(".pa-title", has_text=TITLE).first.is_visible()
        mark = reply.locator(".pa-text mark").first
        assert mark.is_visible() and "一岗双责" in reply.inner_text()
        # A second question is scrolled to the top of the chat, so passage 1 is what the reader sees
        # first (Gradio's autoscroll would leave the view at the bottom of the reply).
        second = ask(page, "党建与生产经营“两张皮”问题的根源是什么？")
        gap = page.evaluate("""() => {
            const rows = document.querySelectorAll('#pa-chat .message-row.user-row');
            const row = rows[rows.length - 1], box = row.closest('.panel-wrap');
            return row.getBoundingClientRect().top - box.getBoundingClientRect().top; }""")
        assert rows_visible(page, second.locator(".pa-card").first) and -2 <= gap <= 30, gap
        page.screenshot(path=str(ARTIFACTS / f"ui_{name}_second_question.png"))
        # the page is as wide as the window: no sideways scrolling on a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert page.evaluate("window.__paBound") is True       # our page script parsed and ran
        assert errors == []
    finally:
        ctx.close()


def test_copy_button_copies_the_reference_and_context_expands(browser, seeds_url):
    ctx, page, _ = open_page(browser, seeds_url, DESKTOP)
    try:
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=seeds_url.rstrip("/"))
        reply = ask(page, QUESTION)
        card = reply.locator(".pa-card").first
        card.locator(".pa-copy-ref").click()
        page.wait_for_function("document.querySelector('.pa-copy-ref').textContent.includes('已复制')")
        copied = page.evaluate("navigator.clipboard.readText()")
        reference = card.locator(".pa-ref-text").inner_text()
        assert copied == reference and re.search(r"\[J\]", copied)
        card.locator(".pa-copy-quote").click()
        page.wait_for_function("document.querySelector('.pa-copy-quote').textContent.includes('已复制')")
        quote = page.evaluate("navigator.clipboard.readText()")
        assert quote == card.locator(".pa-text").inner_text().strip() + "\n" + reference
        details = card.locator("details.pa-ctx")
        if details.count():
            assert not details.locator(".pa-nb").first.is_visible()
            details.locator("summary").click()
            assert details.locator(".pa-nb-self").is_visible()
    finally:
        ctx.close()


def test_bad_input_and_examples_in_the_chat(browser, seeds_url):
    ctx, page, errors = open_page(browser, seeds_url, DESKTOP)
    try:
        page.locator("#pa-chat button.example").first.click()   # an example question asks at once
        page.wait_for_selector(".pa-answer", timeout=120_000)
        reply = ask(page, "党" * 2001)
        assert reply.get_attribute("class") == "pa-error" and "问题过长" in reply.inner_text()
        assert "Traceback" not in page.content()
        assert errors == []
    finally:
        ctx.close()


XSS_ARTICLE = f"""测试企业安全生产责任制研究

张三

测试单位 北京 100000

【摘要】：本文讨论安全生产责任制的落实。

1 引言

安全生产责任制的测试段落：{PAYLOAD_SCRIPT} 以及 {PAYLOAD_IMG} 都应当作为文字显示，不得执行。安全生产责任制要求层层压实责任。

2 结语

其他内容与责任制无关，用于填充语料。
"""


@pytest.fixture(scope="module")
def xss_assistant(tmp_path_factory, real_embedder):
    corpus = tmp_path_factory.mktemp("xss_corpus")
    shutil.copy(ROOT / "seeds" / "001_96c08fcecc05a0af.txt", corpus)
    (corpus / "900_xss.txt").write_text(XSS_ARTICLE, encoding="utf-8")
    return Assistant.open(corpus, index=tmp_path_factory.mktemp("xss_idx"), embedder=real_embedder,
                          progress=False)


class WithHostileTitle:
    """The assistant, plus one article whose title and author are markup: for the filter dropdown."""

    def __init__(self, inner):
        self.inner = inner

    def articles(self):
        return self.inner.articles() + [{"key": "900_xss.txt#9", "source": "900_xss.txt",
                                         "title": PAYLOAD_IMG, "authors": [PAYLOAD_SCRIPT], "kind": "article"}]

    def ask(self, *args, **kwargs):
        """The real answer with the payload put back into every passage: the indexer drops tags from the text
        (the first defence, asserted below), so this is how markup still reaches the renderer here."""
        answer = self.inner.ask(*args, **kwargs)
        hostile = f" {PAYLOAD_SCRIPT} {PAYLOAD_IMG}"
        return dataclasses.replace(answer, passages=tuple(dataclasses.replace(p, text=p.text + hostile)
                                                          for p in answer.passages))

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("gradio_sanitizer", [True, False], ids=["sanitizer-on", "sanitizer-off"])
def test_html_in_the_corpus_shows_as_text(browser, xss_assistant, gradio_sanitizer):
    question = "安全生产责任制的测试段落"
    # First defence: the indexer keeps no markup of the corpus text (index.normalize drops tags, decodes entities).
    indexed = xss_assistant.ask(question, top_k=3)
    assert indexed.passages and not any("<script" in p.text or "<img" in p.text for p in indexed.passages)
    hostile = WithHostileTitle(xss_assistant)
    answer = hostile.ask(question, top_k=3)
    hit = next((p.text for p in answer.passages if "<script>" in p.text and "onerror=" in p.text), None)
    assert hit, "the payload must reach the UI for this test to mean anything"
    shown = [re.search(r"<script>.*?</script>", hit).group(), re.search(r"<img [^>]*>", hit).group()]
    demo = ui.build_ui(hostile)
    chat = next(b for b in demo.blocks.values() if isinstance(b, gr.Chatbot))
    # With Gradio's own sanitizer off, our escaping is the only thing left between the corpus and the DOM.
    chat.sanitize_html = gradio_sanitizer
    with serving(demo) as url:
        ctx, page, errors = open_page(browser, url, DESKTOP)
        try:
            served = json.load(urlopen(url + "config", timeout=30))
            assert [c["props"]["sanitize_html"] for c in served["components"]
                    if c["type"] == "chatbot"] == [gradio_sanitizer]
            reply = ask(page, question)
            page.wait_for_timeout(500)     # give an injected onerror time to fire
            text = reply.inner_text()
            assert all(tag in text for tag in shown), (shown, text[:500])   # shown, as text
            assert reply.locator("script, img, svg").count() == 0
            assert page.evaluate("[typeof window.__pwned, typeof window.pwned]") == ["undefined"] * 2
            page.locator("#pa-scope input").click()         # the filter's options, as text too
            option = page.locator("ul.option-list li", has_text="onerror").first
            option.wait_for(timeout=10_000)
            assert PAYLOAD_IMG in option.inner_text() and PAYLOAD_SCRIPT in option.inner_text()
            page.wait_for_timeout(300)
            assert page.evaluate("[typeof window.__pwned, typeof window.pwned]") == ["undefined"] * 2
            page.keyboard.press("Escape")
            if not gradio_sanitizer:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "ui_xss_as_text.png"))
            assert errors == []
        finally:
            ctx.close()
