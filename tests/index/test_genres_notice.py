"""Notices, opinions and plans: a document-type title, an issuer line, numbered lines as headings only when they
are headings. Real dev documents (hand-checked), then synthetic rows per rule."""
from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.document import Document
from index.structure import parse_document

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "dev"
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"dev corpus not found at {DEV} (shared/ beside the repo)")


def _dev_chunks(rel: str):
    return chunk_document(Document.of_text((DEV / rel).read_text(encoding="utf-8"), "md"), rel)


# (file, title, publisher, date, a needle, its heading path)
REAL = [
    ("notices/binzang_gaige_yijian.md", "关于党员干部带头推动殡葬改革的意见", "中共中央办公厅 国务院办公厅", "",
     "带头火葬和生态安葬", ("二、充分发挥党员、干部带头作用，积极推动殡葬改革",)),
    ("notices/lixing_jieyue_yijian.md", "关于厉行节约反对食品浪费的意见", "中共中央办公厅 国务院办公厅", "",
     "各级党政机关、国有企事业单位要严格按照", ("一、杜绝公务活动用餐浪费",)),
    ("notices/chuguo_guanli_tongzhi_2004.md", "关于进一步加强党员干部出国（境）管理的通知", "", "2004年12月16日",
     "加强教育，防范在先", ("一、进一步加强因公出国（境）人员的管理",)),
    ("notices/baxiang_guiding_shishi_xize.md", "中央八项规定实施细则", "", "",
     "注重实际效果", ("一、改进调查研究",)),
]


@needs_dev
@pytest.mark.parametrize("rel, title, publisher, date, needle, path", REAL, ids=[r[0] for r in REAL])
def test_real_notices(rel, title, publisher, date, needle, path):
    (seg,) = parse_document((DEV / rel).read_text(encoding="utf-8"))
    assert (seg.kind, seg.title, seg.title_is_fallback, seg.publisher, seg.date) == \
        ("notice", title, False, publisher, date)
    chunks = _dev_chunks(rel)
    hit = next(c for c in chunks if needle in c.text)
    assert hit.headings == path
    assert all(c.publisher == publisher for c in chunks)
    assert not any(c.text.startswith(publisher or "\0") for c in chunks)     # the issuer line is metadata


@needs_dev
def test_items_of_a_section_stay_together_under_it():
    # 细则's `1.注重实际效果。安排……` items are text of 「一、改进调查研究」, not sections of their own.
    chunks = _dev_chunks("notices/baxiang_guiding_shishi_xize.md")
    assert {c.headings for c in chunks} <= {(), *((h,) for c in chunks for h in c.headings)}
    assert all(len(c.headings) <= 1 for c in chunks)


@pytest.mark.parametrize("line, heading", [
    ("一、总体要求", True),                                   # short, states nothing
    ("二、充分发挥党员、干部带头作用，积极推动殡葬改革", True),    # a comma inside is still a heading
    ("二、展示时间：2025年4月10日", False),                     # label: value is content
    ("五、竞买登记手续：", False),                              # a lead-in to a list
    ("三、各地区各部门要按照本意见精神，结合实际制定贯彻落实的具体措施，切实抓好落实工作", False),  # too long
    ("（一）加强组织领导。各级党委和政府要高度重视。", False),     # an item with its run-in phrase: text
])
def test_numbered_line_in_a_notice_is_a_heading_only_when_it_is_one(line, heading):
    text = f"# 关于某项工作的通知\n\n各单位：\n\n现将有关事项通知如下。\n\n{line}\n\n正文内容在这里，说明具体的工作要求。\n"
    (seg,) = parse_document(text)
    assert seg.kind == "notice"
    body = next(b for b in seg.blocks if "正文内容在这里，" in b.text)   # a demoted line joins its paragraph
    assert (body.headings == (line,)) is heading, body.headings


def test_title_line_and_closing_date_of_a_plain_text_notice():
    text = ("关于开展安全生产检查的通知\n\n各部门：\n\n为做好安全生产工作，现就有关事项通知如下。\n\n"
            "一、检查范围\n\n全体生产单位。\n\n某某公司办公室\n\n2024年3月1日\n")
    (seg,) = parse_document(text)
    assert (seg.kind, seg.title, seg.title_is_fallback, seg.date) == \
        ("notice", "关于开展安全生产检查的通知", False, "2024年3月1日")
    assert not any("关于开展安全生产检查的通知" in b.text for b in seg.blocks)    # the title is not text
    assert [b.headings for b in seg.blocks if b.text == "全体生产单位。"] == [("一、检查范围",)]


def test_issuer_line_names_the_publisher():
    text = "# 《关于某事的意见》\n\n中共某某委员会办公厅　某某人民政府办公厅印发\n\n为了做好某事，提出如下意见。\n"
    (seg,) = parse_document(text)
    assert (seg.title, seg.publisher) == ("关于某事的意见", "中共某某委员会办公厅 某某人民政府办公厅")
    assert [b.text for b in seg.blocks] == ["为了做好某事，提出如下意见。"]
    (chunk,) = chunk_document(text, "x.md")
    assert (chunk.segment_kind, chunk.publisher) == ("notice", "中共某某委员会办公厅 某某人民政府办公厅")


def test_signature_above_the_closing_date_is_the_publisher_and_print_links_after_it_vanish():
    text = ("国务院关于深入实施某项行动的意见\n\n发布时间：2025-08-27 来源：中国政府网 字号：[大] [中] [小]\n\n"
            "各省、自治区、直辖市人民政府：\n\n现就深入实施某项行动提出如下意见。\n\n国务院\n\n2025年8月21日\n\n"
            "[打印] 仅打印内容\n")
    segs = parse_document(text)
    assert [(s.kind, s.title, s.date, s.publisher) for s in segs] == \
        [("notice", "国务院关于深入实施某项行动的意见", "2025年8月21日", "国务院")]   # its own date before 发布时间
    assert not any("打印" in b.text or "字号" in b.text for b in segs[0].blocks)
