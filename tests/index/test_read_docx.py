"""The Word reader: body text in order, headings as `#` lines, tables as rows, no page headers/footers, metadata,
and a one-line reason for every file it cannot use. Fixtures are built with python-docx from a seed article."""
from __future__ import annotations

import copy
import difflib
import io
import re
import zipfile

import pytest

docx = pytest.importorskip("docx")

from index.chunk import chunk_document  # noqa: E402
from index.readers import ReadContext, Unreadable, read_document  # noqa: E402
from index.readers import docx as docx_reader  # noqa: E402

HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\s+\S.{0,38}|引言|结语)$")
HEADER_TEXT = "《某某研究》2026年第8期 页眉文字"
FOOTER_TEXT = "第 1 页 共 9 页 页脚文字"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _read(data: bytes, name: str = "a.docx"):
    return read_document(name, data, ReadContext(suffix=".docx"))


def _save(d) -> bytes:
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _level(line: str) -> int:
    return 1 if not line[0].isdigit() else line.split()[0].count(".") + 1


def _norm(text: str) -> str:
    return re.sub(r"[\s#*|　]", "", text)


def _coverage(want: list[str], got: list[str]) -> float:
    """Share of `want`'s characters found, in order, in `got` (lines matched by difflib, then characters)."""
    a = [_norm(x) for x in want if _norm(x)]
    b = [_norm(x) for x in got if _norm(x)]
    sm = difflib.SequenceMatcher(None, "\n".join(a), "\n".join(b), autojunk=False)
    same = sum(m.size for m in sm.get_matching_blocks())
    return same / max(1, len("\n".join(a)))


@pytest.fixture(scope="module")
def seed_docx(seed_article) -> tuple[bytes, str, list[str]]:
    title, lines = seed_article
    d = docx.Document()
    d.core_properties.title = title
    d.core_properties.author = "杨晓炜"
    d.sections[0].header.paragraphs[0].text = HEADER_TEXT
    d.sections[0].footer.paragraphs[0].text = FOOTER_TEXT
    d.add_paragraph(title, style="Title")
    keywords = next(i for i, ln in enumerate(lines) if ln.startswith("【关键词】"))
    for i, ln in enumerate(lines):
        if i == keywords:                      # the keywords go into a table: label cell, value cell
            label, value = ln.split("：", 1)
            t = d.add_table(rows=1, cols=2)
            t.cell(0, 0).text = label + "："
            t.cell(0, 1).text = value
        elif HEADING.match(ln) and "。" not in ln:
            d.add_heading(ln, level=_level(ln))
        else:
            d.add_paragraph(ln)
    return _save(d), title, lines


def test_seed_article_round_trip(seed_docx):
    data, title, lines = seed_docx
    doc = _read(data)
    assert doc.format == "docx"
    assert doc.meta.title == title
    assert doc.meta.authors == ("杨晓炜",)
    assert doc.lines[0] == "# " + title
    assert _coverage(lines, list(doc.lines)) >= 0.98
    # An empty line between paragraphs; no paragraph is split or glued to the next.
    assert all(ln == "" for ln in doc.lines[1::2])


def test_seed_headings_are_markdown_headings(seed_docx):
    data, _, lines = seed_docx
    got = set(_read(data).lines)
    headings = [ln for ln in lines if HEADING.match(ln) and "。" not in ln]
    assert len(headings) >= 10
    for h in headings:
        assert "#" * _level(h) + " " + h in got, h
    body = next(ln for ln in lines if len(ln) > 100)
    assert body in got                          # plain paragraphs are not headings


def test_seed_table_row_is_one_line(seed_docx):
    data, _, lines = seed_docx
    kw = next(ln for ln in lines if ln.startswith("【关键词】"))
    label, value = kw.split("：", 1)
    assert f"{label}： | {value}" in _read(data).lines


def test_page_headers_and_footers_stay_out(seed_docx):
    text = _read(seed_docx[0]).text
    assert "页眉文字" not in text and "页脚文字" not in text


def test_seed_chunks_carry_the_docx_format_and_title(seed_docx):
    data, title, _ = seed_docx
    chunks = chunk_document(_read(data), "a.docx")
    assert chunks and all(c.format == "docx" for c in chunks)
    assert {c.title for c in chunks if c.block == "body"} == {title}
    assert any(c.headings and c.headings[-1].startswith("3.2.1") for c in chunks)


# ------------------------------------------------------------------------------------------------ body details

def test_table_paragraph_order_merged_cells_and_layout_cells():
    d = docx.Document()
    d.add_paragraph("表前段落。")
    t = d.add_table(rows=3, cols=3)
    t.cell(0, 0).merge(t.cell(0, 2)).text = "合并标题"          # one merged cell over three columns
    t.cell(1, 0).text, t.cell(1, 1).text, t.cell(1, 2).text = "甲", "乙", "丙"
    cell = t.cell(2, 1)                                          # a row with one filled cell of two paragraphs
    cell.text = "单元格第一段。"
    cell.add_paragraph("单元格第二段。")
    d.add_paragraph("表后段落。")
    lines = [ln for ln in _read(_save(d)).lines if ln]
    assert lines == ["表前段落。", "合并标题", "甲 | 乙 | 丙", "单元格第一段。", "单元格第二段。", "表后段落。"]


def test_tracked_insertions_kept_deletions_and_field_codes_dropped():
    d = docx.Document()
    p = d.add_paragraph("保留")
    r = p._p.r_lst[0]
    ins = copy.deepcopy(r)
    ins.find(W + "t").text = "插入的字"
    ins_el = p._p.makeelement(W + "ins", {W + "id": "1", W + "author": "x"})
    ins_el.append(ins)
    p._p.append(ins_el)
    dele = copy.deepcopy(r)
    t = dele.find(W + "t")
    t.tag = W + "delText"
    t.text = "删除的字"
    del_el = p._p.makeelement(W + "del", {W + "id": "2", W + "author": "x"})
    del_el.append(dele)
    p._p.append(del_el)
    instr = copy.deepcopy(r)
    instr.find(W + "t").tag = W + "instrText"
    instr.find(W + "instrText").text = " PAGE \\* MERGEFORMAT "
    p._p.append(instr)
    assert [ln for ln in _read(_save(d)).lines if ln] == ["保留插入的字"]


def test_soft_line_break_starts_a_new_line_in_the_paragraph():
    d = docx.Document()
    run = d.add_paragraph().add_run("第一行")
    run.add_break()
    run.add_text("第二行")
    d.add_paragraph("下一段")
    assert list(_read(_save(d)).lines) == ["第一行", "第二行", "", "下一段"]


def test_centred_first_line_is_the_title_when_no_title_style():
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    d = docx.Document()
    d.core_properties.title = "模板的标题"
    d.add_paragraph("中华人民共和国某某法").alignment = WD_ALIGN_PARAGRAPH.CENTER
    d.add_paragraph("第一条　为了规范某某，制定本法。")
    doc = _read(_save(d))
    assert doc.lines[0] == "# 中华人民共和国某某法"
    assert doc.meta.title == "中华人民共和国某某法"       # the body's own title beats the core property


def test_core_title_used_when_the_body_has_none():
    d = docx.Document()
    d.core_properties.title = "关于某某工作的通知"
    d.add_paragraph("各有关单位：现将有关事项通知如下。")
    assert _read(_save(d)).meta.title == "关于某某工作的通知"


@pytest.mark.parametrize("creator, want", [
    ("杨晓炜", ("杨晓炜",)),
    ("张三；李四", ("张三", "李四")),
    ("国务院办公厅", ("国务院办公厅",)),
    ("Jane Smith", ("Jane Smith",)),
    ("Lenovo", ()), ("Administrator", ()), ("微软用户", ()), ("User", ()), ("Microsoft Office User", ()),
    ("lenovo", ()), ("admin123", ()), ("", ()),
])
def test_core_author_kept_only_when_it_names_someone(creator, want):
    assert docx_reader.authors_of(creator) == want


# ------------------------------------------------------------------------------------------------ bad files

def _zip(entries: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("data, reason", [
    ("这不是 Word 文件，只是文本。".encode(), r"^not a Word file \(not a zip archive\)$"),
    (b"PK\x03\x04", r"^not a Word file \(corrupt zip archive\)$"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512) + "WordDocument".encode("utf-16-le"),
     r"^old binary \.doc format; save it as \.docx$"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512) + "EncryptedPackage".encode("utf-16-le"),
     r"^encrypted Word file$"),
])
def test_not_a_word_file(data, reason):
    with pytest.raises(Unreadable, match=reason):
        _read(data)


def test_zip_without_document_xml_is_corrupt():
    with pytest.raises(Unreadable, match=r"^corrupt Word file: no word/document.xml in the archive$"):
        _read(_zip({"[Content_Types].xml": b"<Types/>", "word/styles.xml": b"<x/>"}))


def test_spreadsheet_renamed_docx_is_named():
    with pytest.raises(Unreadable, match=r"^not a Word file \(an Excel workbook\)$"):
        _read(_zip({"xl/workbook.xml": b"<workbook/>"}))


def test_broken_package_gives_one_line_reason():
    # A document.xml that is not XML, with no content types: python-docx's own error becomes the reason.
    with pytest.raises(Unreadable, match=r"^corrupt Word file: .+") as e:
        _read(_zip({"word/document.xml": b"not xml", "[Content_Types].xml": b"junk"}))
    assert "\n" not in str(e.value) and len(str(e.value)) < 200


def test_large_uncompressed_entry_refused_before_parsing(seed_docx, monkeypatch):
    # A few KB compressed that would inflate far past the limit: refused from the declared size, unread.
    assert docx_reader.MAX_DOCUMENT_XML == 200 * 2**20
    monkeypatch.setattr(docx_reader, "MAX_DOCUMENT_XML", 1 * 2**20)
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document>" + b" " * (3 * 2**20)})
    assert len(bomb) < 20_000
    monkeypatch.setattr(docx_reader, "_open", lambda data: pytest.fail("parsed a zip bomb"))
    with pytest.raises(Unreadable, match=r"^Word file too large: word/document.xml is 3 MB uncompressed"):
        _read(bomb)


def test_package_total_limit(monkeypatch):
    monkeypatch.setattr(docx_reader, "MAX_PACKAGE", 1 * 2**20)
    big = _zip({"word/document.xml": b"<x/>", "word/media/image1.png": bytes(2 * 2**20)})
    with pytest.raises(Unreadable, match=r"^Word file too large: 2 MB uncompressed"):
        _read(big)


def test_empty_document_is_no_text_found():
    with pytest.raises(Unreadable, match=r"^no text found$"):
        _read(_save(docx.Document()))


# ------------------------------------------------------------------------------------------------ real files

# file: date and body of the adoption line (none for the amended law, whose line states two dates)
DEV_DOCX_META = {"laodong_hetong_fa.docx": ("", ""),
                 "laodong_zhengyi_tiaojie_zhongcai_fa.docx": ("2007年12月29日", "全国人民代表大会常务委员会")}
DEV_DOCX = {
    # file: (title, first sentence of the body, last sentence)
    "laodong_hetong_fa.docx": (
        "中华人民共和国劳动合同法",
        "第一条　为了完善劳动合同制度，明确劳动合同双方当事人的权利和义务，保护劳动者的合法权益，构建和发展和谐稳定的劳动关系，制定本法。",
        "第九十八条　本法自2008年1月1日起施行。"),
    "laodong_zhengyi_tiaojie_zhongcai_fa.docx": (
        "中华人民共和国劳动争议调解仲裁法",
        "第一条　为了公正及时解决劳动争议，保护当事人合法权益，促进劳动关系和谐稳定，制定本法。",
        "第五十四条　本法自2008年5月1日起施行。"),
}


@pytest.mark.parametrize("name", sorted(DEV_DOCX))
def test_dev_law_docx(dev_corpus, name):
    title, first, last = DEV_DOCX[name]
    data = (dev_corpus / "docx" / name).read_bytes()
    doc = _read(data, name)
    assert doc.meta.title == title                 # not the template's core title 「法规修改决定电子报备格式…」
    assert doc.meta.authors == ()                  # core creator 「Lenovo」 is a machine, not an author
    assert (doc.meta.date, doc.meta.source) == DEV_DOCX_META[name]
    assert doc.lines[0] == "# " + title
    assert first in doc.lines and doc.lines[-1] == last
    text = doc.text
    for junk in ("PAGE", "MERGEFORMAT", "— 1 —", "- 1 -", "\t"):
        assert junk not in text, junk
    # The 条 are there, each once, in order.
    nums = [ln.split("　")[0] for ln in doc.lines if re.match(r"^第[一二三四五六七八九十百]+条　", ln)]
    assert len(nums) == len(set(nums)) and nums[0] == "第一条"
    chunks = chunk_document(doc, name)
    assert {c.title for c in chunks} == {title}
    assert all(c.format == "docx" for c in chunks)
    assert chunks[-1].locator.endswith(last.split("　")[0])


def _numbered_doc() -> bytes:
    """Chapters 「第一章」 (level 0) and items 「（一）」 (level 1) numbered by Word, not typed in the text."""
    from docx.oxml import parse_xml
    d = docx.Document()
    numbering = d.part.numbering_part.element
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    numbering.insert(0, parse_xml(
        f'<w:abstractNum {ns} w:abstractNumId="90">'
        '<w:lvl w:ilvl="0"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="第%1章"/>'
        '<w:suff w:val="space"/></w:lvl>'
        '<w:lvl w:ilvl="1"><w:start w:val="1"/><w:numFmt w:val="chineseCounting"/><w:lvlText w:val="（%2）"/>'
        '<w:suff w:val="nothing"/></w:lvl></w:abstractNum>'))
    numbering.append(parse_xml(f'<w:num {ns} w:numId="90"><w:abstractNumId w:val="90"/></w:num>'))
    for text, ilvl in [("总则", 0), ("坚持党的领导；", 1), ("坚持依法治企。", 1), ("组织机构", 0), ("党委；", 1)]:
        p = d.add_paragraph(text, style="Heading 1" if ilvl == 0 else None)
        num_pr = p._p.get_or_add_pPr().get_or_add_numPr()
        num_pr.get_or_add_ilvl().val = ilvl
        num_pr.get_or_add_numId().val = 90
    return _save(d)


def test_automatic_numbering_is_written_into_the_text():
    lines = [ln for ln in _read(_numbered_doc()).lines if ln]
    assert lines == ["# 第一章 总则", "（一）坚持党的领导；", "（二）坚持依法治企。", "# 第二章 组织机构", "（一）党委；"]


def test_list_style_numbering_and_bullets():
    d = docx.Document()
    for t in ("第一项", "第二项"):
        d.add_paragraph(t, style="List Number")
    d.add_paragraph("圆点项", style="List Bullet")
    assert [ln for ln in _read(_save(d)).lines if ln] == ["1. 第一项", "2. 第二项", "圆点项"]


@pytest.mark.parametrize("n, want", [(1, "一"), (10, "十"), (11, "十一"), (20, "二十"), (21, "二十一"), (99, "九十九"),
                                     (100, "一百"), (105, "一百零五"), (110, "一百一十"), (1001, "一千零一")])
def test_chinese_counting(n, want):
    assert docx_reader._format_number(n, "chineseCounting") == want


def _rewrite(data: bytes, name: str, edit) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            zout.writestr(info, edit(body) if info.filename == name else body)
    return out.getvalue()


def test_relationship_to_a_missing_part_still_reads():
    # Word opens a file whose relationships name a part that is not there (「word/NULL」); python-docx does not.
    d = docx.Document()
    d.core_properties.title = "关于某某工作的通知"
    d.add_paragraph("第一章 总则", style="Heading 1")
    d.add_paragraph("正文第一段，讲党建工作。")
    rel = (b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"'
           b' Target="NULL"/></Relationships>')
    data = _rewrite(_save(d), "word/_rels/document.xml.rels", lambda x: x.replace(b"</Relationships>", rel))
    with pytest.raises(KeyError):
        docx.Document(io.BytesIO(data))
    doc = _read(data)
    assert [ln for ln in doc.lines if ln] == ["# 第一章 总则", "正文第一段，讲党建工作。"]
    assert doc.meta.title == "关于某某工作的通知"
