"""The 文献库 (document library) tab in Debian's Chromium: upload a PDF, watch the progress, ask what it answers,
see the card cite its page, export the reply, remove the document and see the answer gone; hostile uploads are
refused with a message. Real bundled model (the claim is that the new document answers), small corpus.

Screenshots (1280x800 and 390 px wide) go to test-artifacts/.
"""
from __future__ import annotations

import io
import socket
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest

from assistant import Assistant, ui
from assistant.library import UploadLimits

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}

DOC_A = ("# 关于加强基层党组织建设的通知\n\n"
         "各基层单位要把党组织建设放在突出位置，落实“三会一课”制度，定期开展组织生活。\n\n"
         "要加强党员教育管理，发挥党员先锋模范作用，推动生产经营任务完成。\n")
DOC_B = ("# 安全生产责任制实施办法\n\n"
         "企业主要负责人是安全生产第一责任人，对本单位安全生产工作全面负责。\n\n"
         "各部门要落实“一岗双责”，管业务必须管安全，管生产经营必须管安全。\n")
PDF_NAME = "海上风电运维方案.pdf"
PDF_TITLE = "海上风电场智能运维实施方案"
QUESTION = "海上风电场的无人机巡检覆盖率要达到多少？"
FACT = "海上风电场全面推行无人机巡检，风机叶片巡检覆盖率达到百分之九十八"
PDF_HTML = f"""<!doctype html><html><head><meta charset="utf-8"><title>{PDF_TITLE}</title><style>
body {{ font-family: 'Noto Sans CJK SC', sans-serif; font-size: 12pt; line-height: 1.8; margin: 0; }}
h1 {{ font-size: 18pt; text-align: center; }} .page2 {{ break-before: page; }}
</style></head><body>
<h1>{PDF_TITLE}</h1>
<p>为提高海上风电场运行维护水平，降低运维成本，结合公司实际，制定本方案。</p>
<p>本方案适用于公司所属各海上风电场的日常运维、定期检修和故障处理工作。</p>
<h2>一、总体目标</h2>
<p>到二〇二八年，建成覆盖全部海上风电场的智能运维体系，实现设备状态实时监测和故障提前预警。</p>
<div class="page2"><h2>二、主要任务</h2>
<p>{FACT}，巡检数据实时上传运维平台，缺陷识别时间缩短到两小时以内。</p>
<p>建立备品备件联合储备机制，关键部件到场时间不超过七十二小时。</p></div>
</body></html>"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo: gr.Blocks, uploads: UploadLimits):
    demo.launch(**ui.launch_options("127.0.0.1", free_port(), uploads=uploads))
    try:
        yield demo.local_url
    finally:
        demo.close(verbose=False)


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
def pdf_file(browser, tmp_path_factory) -> Path:
    """A two-page PDF printed by Chromium; the fact the question asks for is on page 2."""
    out = tmp_path_factory.mktemp("pdf") / PDF_NAME
    page = browser.new_page()
    try:
        page.set_content(PDF_HTML, wait_until="load")
        page.pdf(path=str(out), format="A4", margin={"top": "20mm", "bottom": "20mm", "left": "18mm",
                                                     "right": "18mm"})
    finally:
        page.close()
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory, real_embedder):
    corpus = tmp_path_factory.mktemp("lib_corpus")
    (corpus / "a_notice.md").write_text(DOC_A, encoding="utf-8")
    (corpus / "b_rules.txt").write_text(DOC_B, encoding="utf-8")
    a = Assistant.open(corpus, index=tmp_path_factory.mktemp("lib_index"), embedder=real_embedder, progress=False)
    limits = UploadLimits.of_mb(1)          # small, so the oversize case is quick to make
    with serving(ui.build_ui(a, uploads=limits), limits) as url:
        yield a, url


def open_page(browser, url, viewport, downloads=False):
    ctx = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE,
                              accept_downloads=downloads)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("textarea", timeout=60_000)
    return ctx, page, errors


def library_tab(page):
    page.get_by_role("tab", name="文献库").click()
    page.wait_for_selector("#pa-lib-list .pa-lib-table")


def chat_tab(page):
    page.get_by_role("tab", name="问答").click()
    page.wait_for_selector("#pa-chat")


def upload(page, files) -> None:
    """Put files into the upload box and wait until Gradio has received them all."""
    page.locator("#pa-upload input[type=file]").set_input_files(files)
    n = len(files)
    page.wait_for_function(
        f"document.querySelectorAll('#pa-upload .file-preview tr, #pa-upload .file-preview-holder tr').length >= {n}"
        f" || document.querySelectorAll('#pa-upload a[download]').length >= {n}", timeout=60_000)


def ask(page, question: str):
    n = page.locator(".pa-answer, .pa-error").count()
    page.locator("#pa-input textarea").fill(question)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('.pa-answer, .pa-error').length > {n}", timeout=120_000)
    page.wait_for_timeout(500)
    return page.locator(".pa-answer, .pa-error").nth(n)


def pick_document(page, label_part: str) -> None:
    box = page.locator("#pa-lib-open input")
    box.click()
    box.fill(label_part)
    page.get_by_role("option").filter(has_text=label_part).first.click()


def test_upload_ask_cite_export_remove(browser, served, pdf_file):
    a, url = served
    ARTIFACTS.mkdir(exist_ok=True)
    ctx, page, errors = open_page(browser, url, DESKTOP, downloads=True)
    try:
        library_tab(page)
        assert "共 2 篇文献" in page.locator("#pa-lib-list").inner_text()
        upload(page, [str(pdf_file)])
        page.locator("#pa-add").click()
        # the progress bar shows while the file is read and embedded (the chat stays usable meanwhile)
        page.wait_for_selector("#pa-lib-status .pa-progress", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "library_desktop_progress.png"))
        label = page.locator("#pa-lib-status .pa-progress-label").inner_text()
        assert any(w in label for w in ("检查并读取", "读取语料", "切分段落", "计算向量", "准备中")), label
        page.wait_for_selector("#pa-lib-status .pa-libmsg", timeout=300_000)
        msg = page.locator("#pa-lib-status .pa-libmsg").inner_text()
        assert "已添加 1 篇" in msg and PDF_NAME in msg, msg
        listing = page.locator("#pa-lib-list").inner_text()
        assert "共 3 篇文献" in listing and PDF_TITLE in listing and "PDF" in listing
        page.screenshot(path=str(ARTIFACTS / "library_desktop_added.png"))

        # what the parser made of it: metadata and chunks under their headings, with pages
        pick_document(page, PDF_NAME)
        page.wait_for_selector("#pa-lib-detail .pa-doc-chunk")
        detail = page.locator("#pa-lib-detail").inner_text()
        assert PDF_TITLE in detail and "第2页" in detail and "主要任务" in detail
        page.screenshot(path=str(ARTIFACTS / "library_desktop_document.png"), full_page=True)

        # the same name again: asked before replacing, replaced only on confirmation
        upload(page, [str(pdf_file)])
        page.locator("#pa-add").click()
        page.wait_for_function("document.querySelector('#pa-lib-status').innerText.includes('是否替换')")
        assert PDF_NAME in page.locator("#pa-lib-status").inner_text()
        replace = page.locator("#pa-replace")
        assert replace.is_visible()
        replace.click()
        page.wait_for_function("document.querySelector('#pa-lib-status').innerText.includes('已替换')",
                               timeout=300_000)
        assert not replace.is_visible() and "共 3 篇文献" in page.locator("#pa-lib-list").inner_text()

        # the filter box narrows the list
        page.locator("#pa-lib-filter textarea, #pa-lib-filter input").first.fill("风电")
        page.wait_for_function("document.querySelector('#pa-lib-list').innerText.includes('筛选出 1 / 3')")

        chat_tab(page)
        reply = ask(page, QUESTION)
        card = reply.locator(".pa-card").first
        assert card.locator(".pa-where").inner_text() == f"{PDF_NAME}, 第2页"
        assert "百分之九十八" in card.locator(".pa-text").inner_text()
        assert PDF_TITLE in card.locator(".pa-title").inner_text()
        page.screenshot(path=str(ARTIFACTS / "library_desktop_answer.png"))

        # export: copy all, Markdown from the reply, Word from the export panel
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=url.rstrip("/"))
        reply.locator(".pa-copy-all").click()
        page.wait_for_function("document.querySelector('.pa-copy-all').textContent.includes('已复制')")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith(f"问题：{QUESTION}") and "参考文献\n[1] " in copied
        assert f"{PDF_NAME}, 第2页" in copied
        with page.expect_download() as dl:
            reply.locator(".pa-save-md").click()
        md = Path(dl.value.path()).read_text(encoding="utf-8")
        assert dl.value.suggested_filename.endswith(".md") and "## 参考文献" in md and "百分之九十八" in md
        page.wait_for_function("!document.querySelector('#pa-dl-docx').disabled "
                               "&& !document.querySelector('#pa-dl-docx button, #pa-dl-docx')?.disabled",
                               timeout=30_000)
        with page.expect_download() as dl:
            page.locator("#pa-dl-docx").click()
        import docx
        word = docx.Document(io.BytesIO(Path(dl.value.path()).read_bytes()))
        texts = [p.text for p in word.paragraphs]
        assert dl.value.suggested_filename.endswith(".docx") and "参考文献" in texts
        assert any("百分之九十八" in t for t in texts) and any(t.startswith("[1] ") for t in texts)

        # remove it (with a confirmation) and the answer is gone
        library_tab(page)
        page.locator("#pa-remove").click()
        page.wait_for_selector("#pa-remove-confirm", state="visible")
        assert "确认删除" in page.locator("#pa-remove-box").inner_text()
        page.locator("#pa-remove-confirm").click()
        page.wait_for_function("document.querySelector('#pa-lib-status').innerText.includes('已删除')",
                               timeout=300_000)
        assert PDF_TITLE not in page.locator("#pa-lib-list").inner_text()
        assert not (Path(a.corpus) / PDF_NAME).exists()
        chat_tab(page)
        reply = ask(page, QUESTION)
        assert PDF_NAME not in reply.inner_text() and "百分之九十八" not in reply.inner_text()
        assert errors == []
    finally:
        ctx.close()


def test_hostile_uploads_are_refused_with_a_message(browser, served, tmp_path):
    a, url = served
    before = sorted(p.name for p in Path(a.corpus).iterdir())
    ctx, page, errors = open_page(browser, url, DESKTOP)
    try:
        library_tab(page)
        exe = {"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"\x7fELF\x02\x01\x01" + b"\x00" * 200}
        traversal = {"name": "../../x.txt", "mimeType": "text/plain", "buffer": "越界写入测试。".encode()}
        empty = {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""}
        upload(page, [exe, traversal, empty])
        page.locator("#pa-add").click()
        page.wait_for_selector("#pa-lib-status .pa-libmsg-error", timeout=60_000)
        msg = page.locator("#pa-lib-status .pa-libmsg").inner_text()
        assert "3 个文件被拒绝" in msg and "executable" in msg and "empty file" in msg, msg
        assert "x.txt" in msg and ("hidden" in msg or "folder" in msg), msg
        page.screenshot(path=str(ARTIFACTS / "library_desktop_refused.png"))

        # above the per-file limit (1 MB here): refused before it is stored, with a message
        big = {"name": "big.txt", "mimeType": "text/plain", "buffer": ("正文。" * 130_000).encode()}   # ~1.2 MB
        page.locator("#pa-upload input[type=file]").set_input_files([big])
        toast = page.locator(".toast-body").filter(has_text="big.txt").first
        toast.wait_for(timeout=30_000)       # Gradio refuses it at upload time, before storing a byte
        assert "exceed the maximum allowed size of 1.0 Mb" in toast.inner_text()
        page.screenshot(path=str(ARTIFACTS / "library_desktop_oversize.png"))
        assert sorted(p.name for p in Path(a.corpus).iterdir()) == before
        # ../../x.txt landed nowhere: not in the corpus (above), nor in the folders it pointed at
        assert not (Path(a.corpus).parent / "x.txt").exists() and not (Path(a.corpus).parents[1] / "x.txt").exists()
        assert errors == []
    finally:
        ctx.close()


def test_library_on_a_phone(browser, served):
    _, url = served
    ctx, page, errors = open_page(browser, url, PHONE)
    try:
        library_tab(page)
        page.screenshot(path=str(ARTIFACTS / "library_phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        pick_document(page, "b_rules.txt")
        page.wait_for_selector("#pa-lib-detail .pa-doc-chunk")
        page.screenshot(path=str(ARTIFACTS / "library_phone_document.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert errors == []
    finally:
        ctx.close()
