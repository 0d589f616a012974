"""index.readers.pdf and index.readers.ocr: text layer, columns, running headers/footers, characters, OCR, errors.

The PDFs are made at test time (tests/index/pdf_fixtures.py): the seed article printed by Chromium in two
columns with a running header and footer, image-only copies for OCR. The dev corpus' real PDFs are read in place.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.corpus import scan_corpus
from index.normalize import clean_line
from index.readers import ReadContext, Unreadable, read_document
from index.readers import ocr as ocr_mod
from index.readers import pdf as pdf_mod
from index.readers.pdf import Line, Run, fold_chars, is_header_shape, layout, running_lines

RADICAL_OR_COMPAT = re.compile("[\u2e80-\u2eff\u2f00-\u2fdf\uf900-\ufaff]")


def squeeze(lines) -> str:
    """Text as the index sees it (markup, widths and CJK spacing normalized), all whitespace removed."""
    return re.sub(r"\s+", "", "".join(clean_line(line) for line in lines))


def in_order_share(want: str, got: str) -> float:
    """Share of `want`'s characters found in `got` in the same order (difflib's matching blocks)."""
    sm = difflib.SequenceMatcher(None, want, got, autojunk=False)
    return sum(b.size for b in sm.get_matching_blocks()) / max(1, len(want))


def raw_pages(path: Path) -> list[str]:
    """Each page's text straight from pdfium, whitespace removed: the oracle for which page holds a text."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        out = []
        for i in range(len(pdf)):
            page = pdf[i]
            tp = page.get_textpage()
            out.append(re.sub(r"\s+", "", tp.get_text_range()))
            tp.close()
            page.close()
        return out
    finally:
        pdf.close()


# --- characters -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, want", [
    ("\u2fbc质量发展", "高质量发展"),                  # KANGXI RADICAL TALL
    ("\u2ed4户网站", "门户网站"),                      # CJK RADICAL C-SIMPLIFIED GATE: no NFKC mapping
    ("\u2ec5证\u2eda码", "见证页码"),
    ("\uf9d1项规定", "六项规定"),                      # CJK COMPATIBILITY IDEOGRAPH-F9D1
    ("第1 1 条", "第11条"),                           # digits split by the extraction
    ("2 0 2 4年第3期", "2024年第3期"),
    ("在 2020 2021 年间", "在 2020 2021 年间"),        # two numbers, not one split
    ("version 1 2 of the draft", "version 1 2 of the draft"),   # no CJK next to them: left alone
    ("党建工作，。", "党建工作，。"),                   # punctuation is not touched
])
def test_fold_chars(raw, want):
    assert fold_chars(raw) == want


def test_every_radical_and_compatibility_ideograph_with_an_equivalent_is_folded():
    folded = fold_chars("".join(chr(c) for c in range(0x2F00, 0x2FD6)))
    assert not RADICAL_OR_COMPAT.search(folded)
    assert fold_chars("\u2ee2\u2ee5\u2ee6\u2ef0") == "马鱼鸟龙"


# --- running headers and footers --------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("3", True), ("- 3 -", True), ("— 12 —", True), ("第3页", True), ("第 3 页 共 10 页", True), ("3/10", True),
    ("Page 3 of 10", True), ("iv", True),
    ("2026/5/19 19:11 国务院关于深入实施“人工智能+”行动的意见", True),           # browser print header
    ("https://www.gov.cn/zhengce/content/2025-08/27/content_7037861.htm 1/3", True),   # browser print footer
    ("《中国政策研究》2024年第3期", True), ("中国政策研究 2024 年第 3 期", True),
    ("第三条 劳动合同是劳动者与用人单位确立劳动关系的协议。", False),
    ("2025年8月21日", False),
    ("一、总体要求", False),
])
def test_header_shapes(text, want):
    assert is_header_shape(text) is want


def _page(texts_at: list[tuple[str, float]], height: float = 800.0) -> list[Line]:
    return [Line(t, 60, y, 500, y + 10) for t, y in texts_at]


def test_running_lines_recurring_and_page_numbers_go_body_stays():
    pages = []
    for p in range(1, 5):
        body = [(f"第{p}节正文第{k}行，内容各不相同，编号{p * 10 + k}。", 80 + 20 * k) for k in range(30)]
        top = [("国有企业党建研究（内部资料）", 30.0)] if p % 2 else [("党建与生产经营融合专题", 30.0)]
        pages.append(_page(top + body + [(str(p), 770.0)]))
    drop = running_lines(pages, [800.0] * 4)
    kept = {pages[p][i].text for p in range(4) for i in range(len(pages[p])) if (p, i) not in drop}
    removed = {pages[p][i].text for p, i in drop}
    assert removed == {"国有企业党建研究（内部资料）", "党建与生产经营融合专题", "1", "2", "3", "4"}
    assert sum(1 for t in kept if t.startswith("第")) == 4 * 30


def test_recurring_header_with_the_page_number_in_it_goes():
    pages = []
    for p in range(6):
        body = [(f"正文{p}-{k}：各页文字都不相同{k * 7 + p * 3}。", 80 + 20 * k) for k in range(30)]
        head = (f"中国政策研究 2024年第3期 · {p + 15}" if p % 2 else f"{p + 15} · 国有企业党建工作研究")
        pages.append(_page([(head, 30.0)] + body))
    drop = running_lines(pages, [800.0] * 6)
    assert drop == {(p, 0) for p in range(6)}


def test_chapter_running_heads_go_and_the_big_title_they_repeat_stays():
    pages = []
    for p in range(12):
        body = [(f"Body text of page {p}, line {k}: words that differ {k * 13 + p * 7}.", 100 + 20 * k)
                for k in range(30)]
        if p == 0:
            head = [Line("Shared MIME-info Database", 160, 70, 490, 94)]          # the title, 24 pt
        else:
            chapter = "1. Introduction" if p < 3 else "2. Unified system" if p < 9 else "3. Appendix"
            head = [Line(f"{chapter} {p + 1}", 60, 72, 500, 84)]                # the running head, 12 pt
        pages.append(head + _page(body))
    drop = running_lines(pages, [800.0] * 12)
    assert drop == {(p, 0) for p in range(1, 12)}


def test_a_single_line_shaped_like_a_page_number_stays_when_it_is_inside_the_text():
    # A wrapped "2/3" at the bottom of one page, at body line spacing: not set apart, not a footer.
    lines = _page([(f"正文第{k}行，比例为", 60 + 20 * k) for k in range(36)] + [("2/3", 780.0)])
    assert running_lines([lines], [800.0]) == set()


# --- layout -----------------------------------------------------------------------------------------------

def _run(text, x0, top, x1, h=10.0):
    return Run(text, x0, top, x1, top + h)


def test_two_columns_are_read_one_after_the_other_with_full_width_lines_in_place():
    runs = [_run("标题横跨两栏的一行文字", 60, 40, 540)]
    runs += [_run(f"左{k}", 60, 80 + 15 * k, 290) for k in range(8)]
    runs += [_run(f"右{k}", 310, 80 + 15 * k, 540) for k in range(8)]
    runs += [_run("通栏的图表说明文字在这里", 60, 220, 540)]
    runs += [_run(f"下左{k}", 60, 240 + 15 * k, 290) for k in range(5)]
    runs += [_run(f"下右{k}", 310, 240 + 15 * k, 540) for k in range(5)]
    order = ["".join(r.text for r in row) for row in layout(runs)]
    assert order == (["标题横跨两栏的一行文字"] + [f"左{k}" for k in range(8)] + [f"右{k}" for k in range(8)]
                     + ["通栏的图表说明文字在这里"] + [f"下左{k}" for k in range(5)] + [f"下右{k}" for k in range(5)])


def test_a_wide_main_column_and_a_narrow_side_column_are_read_one_after_the_other():
    runs = [_run(f"正文{k}", 60, 40 + 15 * k, 390) for k in range(10)]
    runs += [_run(f"边栏{k}", 410, 40 + 15 * k, 540) for k in range(6)]
    order = ["".join(r.text for r in row) for row in layout(runs)]
    assert order == [f"正文{k}" for k in range(10)] + [f"边栏{k}" for k in range(6)]


def test_one_column_with_right_aligned_lines_is_read_top_to_bottom():
    runs = [_run(f"正文{k}正文正文正文正文正文", 60, 40 + 15 * k, 540) for k in range(10)]
    runs += [_run("附件：", 60, 200, 100), _run("国务院", 450, 215, 540), _run("2025年8月21日", 420, 230, 540),
             _run("（此件公开发布）", 60, 245, 160)]
    order = ["".join(r.text for r in row) for row in layout(runs)]
    assert order[-4:] == ["附件：", "国务院", "2025年8月21日", "（此件公开发布）"]


def test_a_tall_box_beside_the_lines_does_not_merge_them_into_one_row():
    # OCR draws one box around a stamp or logo that spans several lines of text beside it
    runs = [_run(f"第{k}行文字", 60, 40 + 15 * k, 300) for k in range(8)]
    runs.append(Run("印章", 400, 50, 480, 130))
    order = ["".join(r.text for r in row) for row in layout(runs)]
    assert [t for t in order if t != "印章"] == [f"第{k}行文字" for k in range(8)]


def test_a_two_column_table_of_short_cells_is_not_taken_for_columns():
    runs = []
    for k in range(8):
        runs += [_run(f"项目{k}", 60, 40 + 15 * k, 100), _run(f"数值{k}", 320, 40 + 15 * k, 360)]
    order = ["".join(r.text for r in row) for row in layout(runs)]
    assert order[:2] == ["项目0数值0", "项目1数值1"]


def _english_beside_chinese(words_split: bool):
    """Page 1 of a seed printed with CSS columns: an English abstract on the left, the Chinese one on the right.

    English lines end where their words do (57..215-286), so the little-covered strip between the columns starts
    inside the left column's ragged ends; the centred running header and footer start inside the gutter.
    Chinese lines fill their column (310..538) at another line pitch, so the two sides' rows never line up.
    """
    ends = [262, 286, 254, 277, 215, 268, 283, 246, 271, 259, 285, 233, 279, 250, 266, 281, 240, 274, 257, 284]
    runs = [_run("《中国政策研究》2024年第3期", 236, 17, 360, 9.0)]
    for k, x1 in enumerate(ends):
        top = 86 + 13.5 * k
        if words_split:   # justified: word gaps wider than a run gap, so each word is a run of its own
            n = 5
            step = (x1 - 57) / n
            runs += [_run(f"w{k}.{j}", 57 + j * step, top, 57 + j * step + step - 9, 13.3) for j in range(n)]
        else:
            runs.append(_run(f"english {k}", 57, top, x1, 13.3))
    runs += [_run(f"中文第{k}行", 310, 78 + 18 * k, 538, 12.0) for k in range(15)]
    runs.append(_run("中国政策研究编辑部 · 第1页", 242, 818, 353, 9.0))
    return runs


def test_a_ragged_english_column_beside_a_chinese_one_is_read_one_column_after_the_other():
    order = ["".join(r.text for r in row) for row in layout(_english_beside_chinese(words_split=False))]
    body = [t for t in order if t.startswith(("english", "中文"))]
    assert body == [f"english {k}" for k in range(20)] + [f"中文第{k}行" for k in range(15)]
    assert order[0].startswith("《中国政策研究》") and order[-1].startswith("中国政策研究编辑部")


def test_a_justified_english_column_in_word_runs_beside_a_chinese_one_is_read_one_column_after_the_other():
    rows_ = [[r.text for r in row] for row in layout(_english_beside_chinese(words_split=True))]
    body = [row for row in rows_ if row[0].startswith(("w", "中文"))]
    assert body == [[f"w{k}.{j}" for j in range(5)] for k in range(20)] + [[f"中文第{k}行"] for k in range(15)]


# --- unreadable files -------------------------------------------------------------------------------------

def test_unreadable_files_give_one_line_reasons(tmp_path, pdf_fixtures):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "page.pdf").write_bytes(b"<html><body>not a pdf</body></html>")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer <<>>\n%%EOF")
    pdf_fixtures.encrypted_pdf(folder / "locked.pdf")
    (folder / "ok.txt").write_text("国有企业党建工作与生产经营深度融合。\n", encoding="utf-8")
    files, skipped = scan_corpus(folder)
    reasons = {s.rel: s.reason for s in skipped}
    assert [f.rel for f in files] == ["ok.txt"]
    assert reasons["page.pdf"] == "not a PDF (content does not start with %PDF)"
    assert reasons["locked.pdf"] == "encrypted PDF (password protected)"
    assert reasons["broken.pdf"].startswith("corrupt PDF: ")
    assert all("\n" not in r and "Traceback" not in r for r in reasons.values())


def test_content_decides_not_the_extension():
    with pytest.raises(Unreadable, match=r"^not a PDF \(content does not start with %PDF\)$"):
        read_document("report.pdf", b"PK\x03\x04 a zip file renamed", ReadContext())


# --- OCR engine: models from the wheel, nothing downloaded --------------------------------------------------

def _forbid_downloads(monkeypatch) -> None:
    import requests
    from rapidocr.utils import download_file

    def no_network(*a, **k):
        raise AssertionError("rapidocr tried to download something")

    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(lambda cls, *a, **k: no_network()))
    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(requests.Session, "request", no_network)


def test_ocr_engine_uses_the_wheel_models_and_downloads_nothing(monkeypatch):
    _forbid_downloads(monkeypatch)
    for name in ocr_mod.MODELS.values():
        assert (ocr_mod.model_dir() / name).is_file()
    engine = ocr_mod.new_engine()             # rapidocr fetches missing models and dictionaries here, if anywhere
    assert engine.text_rec.session.have_key()  # the recognition model carries its character list


# --- a seed article printed in two columns ------------------------------------------------------------------

@pytest.fixture(scope="module")
def article(article_pdf):
    return pdf_mod.read(article_pdf.read_bytes(), ReadContext())


@pytest.mark.slow
def test_two_column_article_reads_like_its_txt(article, seed_article):
    title, lines = seed_article
    want, got = squeeze([title, *lines]), squeeze(article.lines)
    assert article.format == "pdf" and article.n_pages >= 3 and article.ocr_pages == ()
    assert len(article.pages) == len(article.lines)
    assert in_order_share(want, got) >= 0.98
    assert in_order_share(got, want) >= 0.98          # nothing much added either (headers, footers)


@pytest.mark.slow
def test_two_column_article_has_the_structure_of_its_txt(article, seed_article):
    from index.document import Document

    title, lines = seed_article
    txt = Document.of_text("\n\n".join([title, *lines]))
    want, got = chunk_document(txt, "a.txt"), chunk_document(article, "a.pdf")
    assert (got[0].title, got[0].authors, got[0].affiliation, got[0].doi) == \
        (want[0].title, want[0].authors, want[0].affiliation, want[0].doi)
    assert [c.headings for c in got if c.block == "body"] == [c.headings for c in want if c.block == "body"]


@pytest.mark.slow
def test_running_header_and_footer_are_gone(article, pdf_fixtures, article_pdf):
    raw = raw_pages(article_pdf)
    assert all(pdf_fixtures.HEADER in page for page in raw)          # they are printed on every page ...
    assert all(re.sub(r"\s", "", pdf_fixtures.FOOTER_PREFIX) in page for page in raw)
    for line in article.lines:                                        # ... and read on none
        assert pdf_fixtures.HEADER not in line
        assert "编辑部" not in line


@pytest.mark.slow
def test_article_metadata(article, seed_article):
    assert article.meta.title == seed_article[0]                      # Chromium writes <title> as Title
    assert (article.meta.journal, article.meta.year, article.meta.issue) == ("中国政策研究", "2024", "3")
    assert article.meta.doi == "10.12417/3041-0630.26.08.049"


@pytest.mark.slow
def test_paragraph_gaps_become_empty_lines(article):
    assert article.lines.count("") >= 20
    assert all(a or b for a, b in zip(article.lines, article.lines[1:]))     # never two empty lines in a row


@pytest.mark.slow
def test_sentences_are_cited_on_the_page_that_prints_them(article, article_pdf):
    raw = raw_pages(article_pdf)
    chunks = [c for c in chunk_document(article, "article.pdf") if c.block == "body"]
    checked = 0
    for page_no in range(1, len(raw) + 1):
        # sentences printed on this page only, by pdfium's own page text
        sentences = [s for s in re.findall(r"[^。！？]{12,}[。！？]", raw[page_no - 1])
                     if all(s not in other for k, other in enumerate(raw, 1) if k != page_no)]
        for sentence in sentences[1:-1]:           # the first and last may continue from or onto another page
            holder = [c for c in chunks if sentence in re.sub(r"\s+", "", c.text)]
            if len(holder) != 1:
                continue                           # the chunker cut inside it: nothing to check
            c = holder[0]
            assert c.page_start <= page_no <= c.page_end, (sentence, c.page_start, c.page_end)
            if c.page_start == c.page_end:
                assert c.page_start == page_no
            checked += 1
    assert checked >= 20
    assert any(c.page_start == 2 == c.page_end for c in chunks)


@pytest.mark.slow
def test_pdf_document_is_cached_by_content(article_pdf, tmp_path, monkeypatch):
    import hashlib

    data = article_pdf.read_bytes()
    ctx = ReadContext(hashlib.sha256(data).hexdigest(), tmp_path, False, ".pdf")
    first = read_document("article.pdf", data, ctx)
    monkeypatch.setattr(pdf_mod, "read", lambda *a: pytest.fail("the cached document was not used"))
    assert read_document("article.pdf", data, ctx) == first


@pytest.mark.slow
def test_radicals_compatibility_ideographs_and_split_digits_in_the_text_layer(pdf_fixtures, tmp_path):
    if pdf_fixtures.chromium() is None:
        pytest.skip("chromium is not installed")
    html = ('<!doctype html><html><head><meta charset="utf-8"><title>untitled</title></head>'
            '<body style="font-family:\'Noto Sans CJK SC\';font-size:12pt">'
            '<p>推动\u2fbc质量发展，建设\u2ed4户网站。</p><p>依照\uf9d1项规定第1 1 条办理。</p></body></html>')
    out = pdf_fixtures.print_pdf(html, tmp_path / "radicals.pdf", header="", footer="")
    doc = pdf_mod.read(out.read_bytes(), ReadContext())
    text = "\n".join(doc.lines)
    assert "推动高质量发展，建设门户网站。" in text
    assert "依照六项规定第11条办理。" in text
    assert not RADICAL_OR_COMPAT.search(text)
    assert doc.meta.title == ""                       # "untitled" is junk


# --- OCR -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_text_layer_of_undecodable_glyphs_is_read_by_ocr(pdf_fixtures, tmp_path, monkeypatch):
    if pdf_fixtures.chromium() is None:
        pytest.skip("chromium is not installed")
    import numpy as np

    class Found:
        boxes = np.array([[[10, 10], [200, 10], [200, 30], [10, 30]]], dtype=np.float32)
        txts, scores = ("识别出的正文文字",), (0.98,)

    monkeypatch.setattr(ocr_mod, "engine", lambda: (lambda img: Found()))
    private_use = "".join(chr(0xE000 + i) for i in range(200))        # what a font without ToUnicode gives
    html = (f'<!doctype html><html><head><meta charset="utf-8"></head><body><p>{private_use}</p>'
            '<p>国有企业党建工作与生产经营</p></body></html>')
    out = pdf_fixtures.print_pdf(html, tmp_path / "garbled.pdf", header="", footer="")
    doc = pdf_mod.read(out.read_bytes(), ReadContext())
    assert doc.ocr_pages == (1,) and doc.lines == ("识别出的正文文字",)


LEFT = "国有企业是中国特色社会主义建设重要的物质根基与政治基石，党建工作贯穿国企整体发展进程。"
RIGHT = "当前市场形势复杂多变，行业竞争日趋激烈，国企唯有把党建引领融入生产经营全流程。"


@pytest.fixture(scope="module")
def scan_pdf(pdf_fixtures, tmp_path_factory) -> Path:
    """A one-page image-only PDF of a small two-column page (what a scanner gives)."""
    if pdf_fixtures.chromium() is None:
        pytest.skip("chromium is not installed")
    html = f"""<!doctype html><html><head><meta charset="utf-8"><style>
    @page {{ size: 150mm 105mm; margin: 0; }}
    body {{ margin: 12mm; font-family: 'Noto Sans CJK SC', sans-serif; font-size: 12pt; line-height: 1.6; }}
    .cols {{ column-count: 2; column-gap: 3em; }}</style></head><body>
    <h3 style="text-align:center;margin:0 0 0.5em">扫描件测试标题</h3>
    <div class="cols"><p style="margin:0">{LEFT}</p><p style="margin:0">{RIGHT}</p></div></body></html>"""
    folder = tmp_path_factory.mktemp("scan")
    text_pdf = pdf_fixtures.print_pdf(html, folder / "page.pdf", header="", footer="", width="150mm",
                                      height="105mm")
    return pdf_fixtures.image_pdf(text_pdf, folder / "scan.pdf")


@pytest.mark.slow
def test_scanned_page_is_ocred_in_column_order_and_cached(scan_pdf, tmp_path, monkeypatch, capsys):
    import hashlib

    _forbid_downloads(monkeypatch)               # the whole OCR path runs offline
    data = scan_pdf.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    ctx = ReadContext(sha, tmp_path, True, ".pdf")
    doc = pdf_mod.read(data, ctx)
    assert doc.ocr_pages == (1,) and doc.n_pages == 1 and set(doc.pages) == {1}
    got = squeeze(doc.lines)
    assert in_order_share(squeeze(["扫描件测试标题", LEFT, RIGHT]), got) >= 0.9
    assert got.find("政治基石") < got.find("行业竞争")          # the left column before the right one
    assert "OCR" in capsys.readouterr().err                  # the progress bar, on stderr
    cache = tmp_path / "ocr" / sha / "page-0001.json"
    saved = json.loads(cache.read_text(encoding="utf-8"))
    assert saved["ocr_version"] == ocr_mod.OCR_VERSION and saved["boxes"]
    monkeypatch.setattr(ocr_mod, "recognize", lambda *a, **k: pytest.fail("OCR ran again despite the cache"))
    assert pdf_mod.read(data, ctx) == doc


def test_many_scanned_pages_are_ocred_one_at_a_time_in_bounded_memory(pdf_fixtures, tmp_path, monkeypatch):
    """40 full-page scans: each page is rendered, recognised and freed before the next (RSS stays flat)."""
    seen = []

    class FakeResult:
        boxes, txts, scores = None, (), ()

    def fake_engine():
        def run(img):
            seen.append(img.shape)
            return FakeResult()
        return run

    def rss_mb() -> float:
        import os
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20

    monkeypatch.setattr(ocr_mod, "engine", fake_engine)
    path = pdf_fixtures.blank_scan(tmp_path / "scan.pdf", 40)
    data = path.read_bytes()
    told = []
    pdf_mod.read(data, ReadContext(on_progress=lambda *a: told.append(a)))   # warm-up: pdfium's one-time allocations
    assert told[0] == ("ocr", 0, 40) and told[-1] == ("ocr", 40, 40)
    before = rss_mb()
    doc = pdf_mod.read(data, ReadContext())
    grown = rss_mb() - before
    assert doc.ocr_pages == tuple(range(1, 41)) and len(seen) == 80
    page_mb = seen[0][0] * seen[0][1] * 4 / 2 ** 20  # one rendered bitmap (BGRA/BGRx)
    assert grown < 5 * page_mb, f"RSS grew {grown:.0f} MB over 40 pages of {page_mb:.1f} MB each"


# --- the dev corpus' real PDFs ------------------------------------------------------------------------------

DEV_TITLES = {"guofa_2025_11_rengongzhineng_jia.pdf": "国务院关于深入实施“人工智能+”行动的意见",
              "shanghai_laodong_hetong_tiaoli.pdf": "上海市劳动合同条例"}


def test_dev_corpus_pdfs_index_cleanly(dev_corpus, tmp_path):
    folder = dev_corpus / "pdf"
    files, skipped = scan_corpus(folder, cache_dir=tmp_path)
    assert skipped == [] and sorted(f.rel for f in files) == sorted(DEV_TITLES)
    for f in files:
        doc = f.document
        raw = raw_pages(f.path)
        assert doc.n_pages == len(raw) and doc.meta.title == DEV_TITLES[f.rel]
        assert set(doc.pages) == set(range(1, doc.n_pages + 1))
        assert list(doc.pages) == sorted(doc.pages)
        for line, page in zip(doc.lines, doc.pages):
            assert not RADICAL_OR_COMPAT.search(line)
            assert not re.search(r"https?://|\b\d{4}/\d{1,2}/\d{1,2} \d{1,2}:\d{2}|^\d+/\d+$", line), line
            if line:
                # every line is printed on the page it is attributed to (pdfium's own page text)
                assert re.sub(r"\s+", "", line) in raw[page - 1], (f.rel, page, line)
        chunks = chunk_document(doc, f.rel)
        assert chunks and all(1 <= c.page_start <= c.page_end <= doc.n_pages for c in chunks)
    guofa = next(f.document for f in files if f.rel.startswith("guofa"))
    page_of = {line: page for line, page in zip(guofa.lines, guofa.pages)}
    assert page_of["三、强化基础支撑能力"] == 2 and page_of["四、组织实施"] == 3


def test_a_page_the_ocr_engine_fails_on_costs_that_page_only(pdf_fixtures, tmp_path, monkeypatch):
    import numpy as np

    class Found:
        boxes = np.array([[[10, 10], [200, 10], [200, 30], [10, 30]]], dtype=np.float32)
        txts, scores = ("第二页识别出的文字",), (0.99,)

    calls = []

    def fake_engine():
        def run(img):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("onnxruntime: bad allocation")
            return Found()
        return run

    monkeypatch.setattr(ocr_mod, "engine", fake_engine)
    data = pdf_fixtures.blank_scan(tmp_path / "scan.pdf", 2).read_bytes()
    ctx = ReadContext("f" * 64, tmp_path, False, ".pdf")
    told = []
    doc = pdf_mod.read(data, ReadContext(ctx.sha256, ctx.cache_dir, False, ".pdf", lambda *a: told.append(a)))
    assert told[-1] == ("ocr", 2, 2)
    assert doc.lines == ("第二页识别出的文字",) and doc.pages == (2,) and doc.ocr_pages == (1, 2)
    assert sorted(p.name for p in (tmp_path / "ocr" / ("f" * 64)).iterdir()) == ["page-0002.json"]
