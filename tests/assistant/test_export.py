"""Export of one reply: clipboard text, Markdown and Word, with numbered GB/T 7714 references."""
from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import docx
import pytest

from assistant import export
from assistant.records import Answer, Citation, Passage

PDF_CITE = Citation("国企党建与生产经营融合研究", ("曾程", "杜淏天"), "", ("3 路径", "3.2 机制"), "paper.pdf", 10, 14,
                    page_start=3, page_end=4, format="pdf", journal="中国政策研究", year="2024", issue="3")
TXT_CITE = Citation("安全生产责任制实施办法", (), "", (), "rules.txt", 5, 6, genre="regulation", locator="第十七条")
T1 = "一岗双责是指领导干部既要抓业务，又要抓党建。这是融合的关键。"
T2 = "管业务必须管安全，<script>alert(1)</script> #不是标题 *不是强调*。"


def answer(found=True) -> Answer:
    p1 = Passage("c1", T1, 0.9, "high", ((0, 22),), "body", PDF_CITE)
    p2 = Passage("c2", T2, 0.5, "medium", (), "body", TXT_CITE)
    p3 = Passage("c3", T1, 0.4, "low", ((0, 5),), "body", PDF_CITE)   # same reference as p1: one number
    return Answer("什么是“一岗双责”？", found, (p1, p2, p3), "找到 3 段相关原文（按相关度排序）。", 12.0)


def test_references_are_numbered_once_each_in_citation_order():
    numbers, refs = export.numbered(answer())
    assert numbers == [1, 2, 1]
    assert refs[0].startswith("曾程，杜淏天. 国企党建与生产经营融合研究[J]. 中国政策研究, 2024(3): 3-4.")
    assert refs[1].startswith("安全生产责任制实施办法[Z]")


def test_text_has_every_quote_its_number_and_the_reference_list():
    text = export.answer_text(answer())
    assert "【一岗双责是指领导干部既要抓业务，又要抓党建。】这是融合的关键。 [1]" in text
    assert f"{T2} [2]" in text
    tail = text.split("参考文献\n", 1)[1]
    assert re.findall(r"^\[(\d)\] ", tail, re.M) == ["1", "2"]
    assert "paper.pdf, 第3-4页" in tail


def test_markdown_quotes_escapes_and_lists_references():
    md = export.answer_markdown(answer())
    assert md.startswith("# 什么是“一岗双责”？\n")
    assert "> **一岗双责是指领导干部既要抓业务，又要抓党建。**这是融合的关键。" in md
    assert "\\<script\\>alert(1)\\</script\\>" in md and "<script>" not in md   # literal, never raw HTML
    assert "\\#不是标题 \\*不是强调\\*" in md
    assert "出处：3 路径 \\> 3.2 机制，paper.pdf, 第3-4页" in md
    refs = md.split("## 参考文献", 1)[1]
    assert refs.count("\\[1\\]") == 1 and refs.count("\\[2\\]") == 1 and "\\[3\\]" not in refs
    assert md.count("> [1]") == 2 and md.count("> [2]") == 1


def test_not_found_is_said_in_every_format():
    ans = answer(found=False)
    assert export.NOT_FOUND_NOTE in export.answer_text(ans)
    assert export.NOT_FOUND_NOTE in export.answer_markdown(ans)
    d = docx.Document(io.BytesIO(export.answer_docx(ans)))
    assert export.NOT_FOUND_NOTE in [p.text for p in d.paragraphs]


def test_not_found_gives_its_reason_in_every_format():
    ans = dataclasses.replace(answer(found=False), reason="《中央企业合规管理办法》不在语料中")
    why = "原因：《中央企业合规管理办法》不在语料中。"
    assert why in export.answer_text(ans) and why in export.answer_markdown(ans)
    d = docx.Document(io.BytesIO(export.answer_docx(ans)))
    assert any(why in p.text for p in d.paragraphs)


def test_word_document_holds_quotes_bold_evidence_and_numbered_references():
    d = docx.Document(io.BytesIO(export.answer_docx(answer())))
    texts = [p.text for p in d.paragraphs]
    assert texts[0] == "什么是“一岗双责”？" and d.core_properties.title == "什么是“一岗双责”？"
    quote = next(p for p in d.paragraphs if p.text.startswith("一岗双责是指"))
    assert quote.style.name == "Quote" and quote.text.endswith(" [1]")
    bold = "".join(r.text for r in quote.runs if r.bold)
    assert bold == "一岗双责是指领导干部既要抓业务，又要抓党建。"
    assert any(t == f"{T2} [2]" for t in texts)          # <script> is plain text in Word
    refs = texts[texts.index("参考文献") + 1:]
    assert [r[:3] for r in refs] == ["[1]", "[2]"] and "[J]. 中国政策研究, 2024(3): 3-4" in refs[0]
    east_asia = d.styles["Normal"].element.rPr.rFonts.get(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia")
    assert east_asia == "宋体"


def test_control_characters_do_not_break_the_word_file():
    bad = Passage("c9", "正文\x0b含有\x01控制字符。", 0.5, "low", (), "body", TXT_CITE)
    ans = Answer("问题\x07", True, (bad,), "找到 1 段", 1.0)
    d = docx.Document(io.BytesIO(export.answer_docx(ans)))
    assert "正文含有控制字符。 [1]" in [p.text for p in d.paragraphs]
    assert "\x01" not in export.answer_markdown(ans)


@pytest.mark.parametrize("question, stem", [("什么是“一岗双责”？", "什么是一岗双责"), ("../../etc/passwd", "etcpasswd"),
                                           ("???", "answer")])
def test_filename_is_safe(question, stem):
    name = export.filename(Answer(question, True, (), "", 0.0), ".docx")
    assert re.fullmatch(rf"检索结果-{stem}-\d{{8}}-\d{{4}}\.docx", name), name


def test_a_server_keeps_only_its_latest_exports(tmp_path):
    from assistant import ui

    made = [ui.export_files(answer(), root=tmp_path) for _ in range(ui.EXPORTS_KEPT + 5)]
    kept = sorted(tmp_path.iterdir())
    assert len(kept) == ui.EXPORTS_KEPT
    for md, docx in made[-ui.EXPORTS_KEPT:]:                      # the latest ones are all still there
        assert Path(md).read_text(encoding="utf-8").strip() and Path(docx).stat().st_size > 0
    assert not Path(made[0][0]).exists()
