"""Articles outside the seeds: the dev corpus' case analyses (业务探讨), untitled, with 【案例简介】-style part
headings above 一、 sections. (The seeds' journal articles are covered by test_structure.py and test_chunk.py.)"""
from pathlib import Path

import pytest

from index.chunk import chunk_document
from index.document import Document
from index.structure import parse_document

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "dev"
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"dev corpus not found at {DEV} (shared/ beside the repo)")

# (file, fallback title: the first section heading, authors from the closing byline, a needle, its heading path)
REAL = [
    ("articles/guoqi_jiancha_duixiang_guanxia.md",
     "一、认定国有企业监察对象的关键在于准确理解“从事公务”“行使公权力”的含义", ("董开星",),
     "案例一：2016年7月，A公司（国有公司）董事长甲", ("【案例简介】",)),
    ("articles/guoqi_shenfen_bianhua_zuiming.md", "一、国家出资企业中的国家工作人员和非国家工作人员认定问题",
     ("中国一汽纪委", "国家监委驻中国一汽监察专员办公室"),
     "案例一中，2020年3月之前", ("【难点辨析】", "二、A公司改制后，对甲收受他人贿赂行为定性的影响")),
    ("articles/guoqi_duzhi_jifazui.md", "十九届中央纪委六次全会强调要持续深化国企反腐败工…", ("束龙",),
     "以主体身份区分国有企业人员渎职行为的纪法罪", ()),
    ("articles/guojia_chuzi_qiye_gongzuo_renyuan.md", "一、认定国家出资企业中国家工作人员身份需注意的几个问题",
     ("上海市崇明区纪委监委案件审理室",), "案例二：D公司为某地国资委全额出资的国有粮油公司", ("【案例简介】",)),
]


@needs_dev
@pytest.mark.parametrize("rel, title, authors, needle, path", REAL, ids=[r[0] for r in REAL])
def test_untitled_case_analyses(rel, title, authors, needle, path):
    text = (DEV / rel).read_text(encoding="utf-8")
    (seg,) = parse_document(text)
    assert (seg.kind, seg.title, seg.title_is_fallback, seg.authors) == ("article", title, True, authors)
    chunks = chunk_document(Document.of_text(text, "md"), rel)
    hit = next(c for c in chunks if needle in c.text)
    assert hit.headings == path
    assert not any(c.text.startswith("【") for c in chunks)      # part headings are headings, not text


@pytest.mark.parametrize("text, want", [
    ("【案例简介】\n\n案例内容。\n\n【难点辨析】\n\n一、第一个问题\n\n分析内容。\n",
     {"案例内容。": ("【案例简介】",), "分析内容。": ("【难点辨析】", "一、第一个问题")}),
    ("【摘要】本文讨论党建。\n\n一、引言部分\n\n正文。\n", {"正文。": ("一、引言部分",)}),   # a label, not a part
])
def test_bracketed_part_headings(text, want):
    got = {b.text: b.headings for s in parse_document(text) for b in s.blocks if b.kind == "body"}
    assert {k: got[k] for k in want} == want


def test_a_bracketed_part_name_or_a_chapter_is_never_the_fallback_title():
    (seg,) = parse_document("【案例简介】\n\n案例内容。\n\n一、问题的提出\n\n分析内容。\n")
    assert (seg.title, seg.title_is_fallback) == ("一、问题的提出", True)
    (seg,) = parse_document("第一章　总则\n\n这一章讲的是总的原则和要求，内容很长很长。\n")
    assert (seg.title, seg.title_is_fallback) == ("这一章讲的是总的原则和要求，内容很长很长。", True)   # first sentence


def test_a_list_item_ending_in_a_full_stop_is_text_not_a_run_in_heading():
    text = "一、适用范围\n\n本办法适用于下列人员：\n\n（一）国有企业管理人员。\n\n（二）事业单位管理人员。\n"
    blocks = [b for s in parse_document(text) for b in s.blocks]
    assert all(b.headings == ("一、适用范围",) for b in blocks)


@pytest.mark.parametrize("last, authors", [
    ("……三个方面来判断。（束龙）", ("束龙",)),
    ("（作者：董开星 单位：上海市纪委监委）", ("董开星",)),
    ("应当以贪污罪论处。（中国一汽纪委、国家监委驻中国一汽监察专员办公室）", ("中国一汽纪委", "国家监委驻中国一汽监察专员办公室")),
    ("本办法自发布之日起施行。（试行）", ()),                   # a status word, not a name
    ("这一点在实践中很常见（如前所述）", ()),                    # an aside: no sentence end before it
    ("详见有关规定。（二〇一九年修订）", ()),                    # not names or organisations
])
def test_closing_byline_of_a_news_style_article(last, authors):
    body = "正文讲了国有企业监察对象的认定问题，内容很长很长很长很长很长很长很长很长很长很长很长很长很长。\n\n" * 10
    (seg,) = parse_document(f"{body}{last}\n")
    assert (seg.kind, seg.authors) == ("article", authors)
