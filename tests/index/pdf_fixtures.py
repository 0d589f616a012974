"""PDF files made at test time: a seed article printed by Chromium in two columns with running header and
footer, image-only (scanned) PDFs, an encrypted PDF. Nothing here is committed as a binary fixture.

Loaded by tests/index/conftest.py (test files cannot import each other under --import-mode=importlib).
"""
from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

HEADER = "《中国政策研究》2024年第3期"
FOOTER_PREFIX = "中国政策研究编辑部 · 第"          # followed by the page number and 页
HEADER_TEMPLATE = ('<div style="font-size:9pt;width:100%;text-align:center;'
                   'font-family:\'Noto Serif CJK SC\',serif">' + HEADER + "</div>")
FOOTER_TEMPLATE = ('<div style="font-size:9pt;width:100%;text-align:center;font-family:\'Noto Serif CJK SC\',serif">'
                   + FOOTER_PREFIX + '<span class="pageNumber"></span>页</div>')

_STYLE = """
@page { size: A4; margin: 24mm 18mm 22mm 18mm; }
body { margin: 0; font-family: 'Noto Serif CJK SC', 'Noto Sans CJK SC', serif; font-size: 10.5pt; line-height: 1.7; }
h1 { font-size: 17pt; text-align: center; margin: 0 0 0.6em 0; font-weight: bold; }
.front { text-align: center; margin: 0.2em 0; }
.abstract { margin: 0.4em 2em; font-size: 9.5pt; }
.cols { column-count: 2; column-gap: 2em; text-align: justify; margin-top: 1.2em; }
.cols p { margin: 0 0 0.5em 0; text-indent: 2em; }
.cols h3 { font-size: 11pt; margin: 0.8em 0 0.4em 0; break-after: avoid; }
"""

_MARKUP = re.compile(r"^#{1,6}\s+|\*\*|__")
_HEADING = re.compile(r"^(?:引言|结语|结论|参考文献|\d+(?:\.\d+)*\s*\S|[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）)")


def chromium() -> str | None:
    """Debian's chromium, or None."""
    return shutil.which("chromium") or (shutil.which("chromium-browser"))


def plain(line: str) -> str:
    """A seed line without its markdown (the same rule as index.normalize.strip_markup, for the HTML)."""
    return _MARKUP.sub("", line).strip()


def article_html(title: str, lines: list[str], extra_body: str = "") -> str:
    """A journal-style page: centred title and byline, full-width abstract, then the body in two columns."""
    body_start = next((i for i, ln in enumerate(lines) if plain(ln).startswith(("DOI", "【DOI", "[DOI"))), None)
    if body_start is None:
        body_start = next((i for i, ln in enumerate(lines) if "关键词" in ln), 2)
    front, body = lines[:body_start + 1], lines[body_start + 1:]
    out = [f"<h1>{html.escape(plain(title))}</h1>"]
    for ln in front:
        cls = "abstract" if len(plain(ln)) > 40 or "【" in ln or "[" in ln else "front"
        out.append(f'<p class="{cls}">{html.escape(plain(ln))}</p>')
    out.append('<div class="cols">')
    for ln in body:
        text = plain(ln)
        tag = "h3" if len(text) <= 40 and _HEADING.match(text) and not text.endswith("。") else "p"
        out.append(f"<{tag}>{html.escape(text)}</{tag}>")
    out.append(extra_body)
    out.append("</div>")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(plain(title))}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(out)}</body></html>")


def print_pdf(page_html: str, out: Path, header: str = HEADER_TEMPLATE, footer: str = FOOTER_TEMPLATE,
              width: str | None = None, height: str | None = None) -> Path:
    """Print HTML to PDF with Chromium (through playwright), with a running header and footer on every page."""
    from playwright.sync_api import sync_playwright

    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu",
                                                               "--disable-background-networking",
                                                               "--disable-component-update"])
        try:
            page = browser.new_page()
            page.set_content(page_html, wait_until="load")
            size = {"width": width, "height": height} if width else {"format": "A4"}
            page.pdf(path=str(out), margin={"top": "24mm", "bottom": "22mm", "left": "18mm", "right": "18mm"},
                     display_header_footer=bool(header or footer), header_template=header or "<span></span>",
                     footer_template=footer or "<span></span>", prefer_css_page_size=not width, **size)
        finally:
            browser.close()
    return out


def image_pdf(src: Path, out: Path, pages: list[int] | None = None, dpi: int = 150) -> Path:
    """An image-only copy of `src` (every page rendered and stored as a picture): what a scanner makes."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(src))
    images = []
    try:
        for i in pages if pages is not None else range(len(pdf)):
            page = pdf[i]
            images.append(page.render(scale=dpi / 72).to_pil().convert("RGB"))
            page.close()
    finally:
        pdf.close()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out


def blank_scan(out: Path, n_pages: int, dpi: int = 50) -> Path:
    """`n_pages` A4 pages, each one full-page (white) picture: a scan, cheaply made."""
    from PIL import Image

    w, h = round(8.27 * dpi), round(11.69 * dpi)
    pages = [Image.new("L", (w, h), 255) for _ in range(n_pages)]
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=dpi)
    return out


def encrypted_pdf(out: Path) -> Path:
    """A PDF encrypted with the standard security handler and a user password (not the empty one)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
            b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >>"]
    data = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(data))
        data += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(data)
    data += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        data += b"%010d 00000 n \n" % off
    data += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<" % (len(objs) + 1) + b"ab" * 16
             + b"> <" + b"ab" * 16 + b">] >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    out.write_bytes(bytes(data))
    return out
