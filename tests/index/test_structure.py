"""Article segmentation, metadata and heading paths: every segment of seeds/, then each rule on a small text."""
from pathlib import Path

import pytest

from index.structure import parse_document

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def _parse(name: str):
    return parse_document((SEEDS / name).read_text(encoding="utf-8"))


# (index, kind, title, title_is_fallback, authors, affiliation, doi, title_en starts with, first line, last line)
EXPECTED = {
    "000_f25ebb76fa63945c.txt": [
        (0, "article", "国有企业党建工作与生产经营深度融合路径探析", False, ("杨晓炜",),
         "大唐凉山新能源有限公司 四川 成都 610074", "10.12417/3041-0630.26.08.049", "", 3, 96),
    ],
    "001_96c08fcecc05a0af.txt": [
        (0, "article", "国企党建与生产经营工作创新融合的探索实践", False, ("刘隆",),
         "山西西山晋兴能源有限责任公司 山西 太原 030000", "10.12252/j.issn.2096-6288.2020.04.106", "", 3, 79),
    ],
    "002_aafc08028407862a.txt": [   # titles printed after their bodies; the last article has none
        (0, "article", "国有企业基层党建与经营发展融合路径探索", False, ("李宁坡",), "平煤神马建工集团建井一处",
         "", "", 1, 222),
        (1, "article", "国有企业工会工作创新与优化思考", False, ("张继绪",), "天昊实业公司", "", "", 224, 428),
        (2, "article", "一、国有企业思政工作现状", True, (), "", "", "", 430, 628),
    ],
    "003_8a33f948501c2c2d.txt": [
        (0, "article", "国有企业党建促经营深度融合的产业赋能路径与发展启示——以北起院为例", False, ("曾程", "杜淏天"),
         "北京起重运输机械设计研究院有限公司，中国·北京 100007", "",
         "The industrial empowerment path and development inspiration of promoting deep integration of "
         "state-owned enterprise party building and operation - taking Beiqi Institute as an example", 3, 127),
    ],
    "004_4d0d513ed8a23c7b.txt": [   # the second article's title was displaced to the top of the page
        (0, "article", "新时期国有企业基层党建工作的创新路径", False, ("王涛",), "山西汾河焦煤股份有限公司三交河煤矿",
         "", "", 4, 434),
        (1, "article", "推动国有企业思想政治工作守正创新", False, ("刘莹",), "山西焦煤霍州煤电新闻中心", "", "", 1, 648),
        (2, "article", "党建与国企中心工作创新融合的理论探索", False, ("张倩",), "山西汾河焦煤股份有限公司", "", "",
         650, 882),
        (3, "notice", "受委托,我公司定于 2025年 4月 17日 9…", True, (), "", "", "", 884, 944),
        (4, "news", "中办、国办印发《关于加快构建普通高等学校毕业生高质量就业服务体系的意见》", False, (), "", "", "",
         946, 1017),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_segment_of_the_seeds(name):
    got = [(s.index, s.kind, s.title, s.title_is_fallback, s.authors, s.affiliation, s.doi, s.title_en,
            s.line_start, s.line_end) for s in _parse(name)]
    assert got == EXPECTED[name]


def test_seed_files_are_all_listed():
    assert sorted(p.name for p in SEEDS.glob("*.txt")) == sorted(EXPECTED)


def test_displaced_title_block_goes_to_the_untitled_article():
    seg = _parse("004_4d0d513ed8a23c7b.txt")[1]
    fronts = [b for b in seg.blocks if b.kind == "front"]
    assert [(b.text, b.line_start, b.line_end) for b in fronts] == [
        ("推动国有企业思想政治工作守正创新\n刘莹", 1, 2), ("（作者单位：山西焦煤霍州煤电新闻中心）", 648, 648)]
    assert any("具象的发展实践" in b.text for b in seg.blocks)


def test_notice_and_news_hold_no_article_text():
    segs = _parse("004_4d0d513ed8a23c7b.txt")
    notice, news = segs[3], segs[4]
    assert all("竞买" not in b.text for s in segs[:3] for b in s.blocks)
    assert any("竞买保证金" in b.text for b in notice.blocks)
    assert all("就业" not in b.text for s in segs[:4] for b in s.blocks)
    assert news.blocks[0].kind == "front" and news.blocks[0].line_start == 946
    assert all(b.headings == () for b in notice.blocks)     # `二、展示时间：……` is content, not a section


def test_front_matter_blocks_of_003():
    seg = _parse("003_8a33f948501c2c2d.txt")[0]
    kinds = [(b.kind, b.line_start) for b in seg.blocks[:7]]
    assert kinds == [("front", 3), ("abstract", 11), ("keywords", 15), ("front", 17), ("abstract", 25),
                     ("keywords", 29), ("body", 33)]
    assert seg.blocks[3].text == ("国有企业党建促经营深度融合的产业赋能路径与发展启示——以北起院为例\n曾程\n杜淏天\n"
                                  "北京起重运输机械设计研究院有限公司，中国·北京 100007")
    bio = [b for b in seg.blocks if b.kind == "bio"]
    assert len(bio) == 1 and bio[0].line_start == 43 and bio[0].text.startswith("曾程（1987-）")
    assert all(b.kind == "front" for b in seg.blocks if "Cheng Zeng" in b.text or "北京起重" in b.text)


# ---------------------------------------------------------------------------------- the rules, one by one

LEADING = """\
国有企业党建工作的思考
□ 张 三

国有企业党建工作十分重要。这是第一段的内容，讲的是党建工作的意义和作用。
一、党建工作的意义
党建工作能够凝聚人心。党建工作能够引领方向。
（作者单位：某某能源有限公司）

班组建设的实践探索
□ 李 四

班组建设是企业管理的基础。这是第二篇文章的开头，讲的是班组建设。
一、班组建设的做法
班组要开展安全活动。
（作者单位：某某矿业集团）
"""


def test_leading_titles_and_closing_affiliations():
    segs = parse_document(LEADING)
    assert [(s.title, s.authors, s.affiliation) for s in segs] == [
        ("国有企业党建工作的思考", ("张三",), "某某能源有限公司"),
        ("班组建设的实践探索", ("李四",), "某某矿业集团"),
    ]
    assert [b.headings for b in segs[1].blocks if b.kind == "body"] == [(), ("一、班组建设的做法",)]


TRAILING = """\
工会组织是职工的娘家人，工会工作要维护职工合法权益。
一、工会工作的优势
工会组织覆盖面广，工会工作群众基础好，工会能够及时反映职工诉求。
工会工作创新研究
姻某某实业公司 王五
一、思政工作现状
思政工作需要创新，思政队伍需要加强。思政工作要结合员工思想实际。
"""


def test_trailing_title_closes_the_body_before_it_and_the_rest_stays_untitled():
    segs = parse_document(TRAILING)
    assert [(s.title, s.title_is_fallback, s.authors, s.affiliation) for s in segs] == [
        ("工会工作创新研究", False, ("王五",), "某某实业公司"),
        ("一、思政工作现状", True, (), ""),
    ]


FRAGMENT_FIRST = """\
思政工作要结合员工实际，思政队伍要加强建设，思政工作才能落地。
工会工作创新研究
□ 王 五
一、工会工作的优势
工会组织覆盖面广，工会工作群众基础好，工会维护职工权益，工会工作创新有基础。
"""


def test_shared_vocabulary_decides_which_body_a_title_opens():
    # The file starts with untitled text (which would suggest titles printed after their articles), but the
    # title is about 工会 and so is the body after it.
    segs = parse_document(FRAGMENT_FIRST)
    titled = [s for s in segs if not s.title_is_fallback]
    assert len(titled) == 1 and titled[0].title == "工会工作创新研究"
    assert any("工会组织覆盖面广" in b.text for b in titled[0].blocks)
    assert not any("思政队伍" in b.text for b in titled[0].blocks)


DISPLACED = """\
推动思想政治工作守正创新
□ 赵 六

班组建设的实践探索
□ 钱 七

班组建设是企业管理的基础。班组要开展安全活动，班组建设要抓实抓细。
（作者单位：甲公司）

思想政治工作要守正创新。国有企业思想政治工作既要守正，又要创新。
一、守正的意义
思想政治工作的根基在于守正。
（作者单位：乙公司）
"""


def test_displaced_title_block_finds_the_article_left_without_one():
    segs = parse_document(DISPLACED)
    assert [(s.title, s.authors, s.affiliation, s.title_is_fallback) for s in segs] == [
        ("班组建设的实践探索", ("钱七",), "甲公司", False),
        ("推动思想政治工作守正创新", ("赵六",), "乙公司", False),
    ]


ENGLISH_FIRST = """\
Research on the integration of party building and business operation

Zhang San Li Si

Some University, Beijing, 100000, China

Abstract

This paper studies integration. It proposes measures.

Keywords

party building; integration

党建与经营融合研究

张三 李四

某某大学，北京 100000

摘要

本文研究党建与经营的融合问题。

关键词

党建；融合

1 引言

党建与经营融合是重要课题。
"""


def test_english_title_block_joins_the_chinese_article():
    (seg,) = parse_document(ENGLISH_FIRST)
    assert (seg.title, seg.title_en, seg.authors, seg.affiliation) == (
        "党建与经营融合研究", "Research on the integration of party building and business operation",
        ("张三", "李四"), "某某大学，北京 100000")
    assert [b.kind for b in seg.blocks] == ["front", "abstract", "keywords", "front", "abstract", "keywords",
                                            "body"]


ENGLISH_LAST = """\
党建与经营融合研究
张三
某某大学，北京 100000
摘要：本文研究党建与经营的融合问题。
1 引言
党建与经营融合是重要课题。党建与经营融合需要制度保障。

Research on the integration of party building and business operation
Zhang San
Some University, Beijing, 100000, China
Abstract: This paper studies integration.
"""


def test_english_matter_printed_at_the_end_joins_the_article_before_it():
    (seg,) = parse_document(ENGLISH_LAST)
    assert (seg.title, seg.title_en, seg.authors, seg.affiliation) == (
        "党建与经营融合研究", "Research on the integration of party building and business operation", ("张三",),
        "某某大学，北京 100000")
    assert [(b.kind, b.text) for b in seg.blocks if b.line_start > 7] == [
        ("front", "Research on the integration of party building and business operation\nZhang San\n"
                  "Some University, Beijing, 100000, China"),
        ("abstract", "This paper studies integration.")]


def test_a_short_line_after_a_title_like_line_is_not_a_byline_outside_front_matter():
    text = "前面是一段正文，讲了很多内容。\n\n党建工作的基本要求\n\n王涛\n\n后面还有正文，没有单位也没有摘要。\n"
    (seg,) = parse_document(text)
    assert seg.authors == () and seg.title_is_fallback


def test_notice_and_news_are_segments_of_their_own_kind():
    text = ("党建文章的标题\n□ 张 三\n\n党建文章的正文。一、第一部分\n内容。\n（作者单位：某公司）\n\n"
            "受委托，我公司定于2025年4月17日公开拍卖下列标的：\n一、标的名称：商铺租赁权。\n"
            "二、竞买保证金：5000元。\n三、报名时间：4月14日。\n咨询电话：15364781799\n某某拍卖有限公司\n"
            "2025 年 4 月 10日\n\n"
            "某部门印发《关于某事的意见》\n（上接1版）\n《意见》提出，优化培养供给体系。\n")
    segs = parse_document(text)
    assert [(s.kind, s.title_is_fallback) for s in segs] == [("article", False), ("notice", True), ("news", False)]
    assert segs[2].title == "某部门印发《关于某事的意见》"


# ------------------------------------------------------------------------------------------------ headings

def _paths(text: str) -> dict[str, tuple[str, ...]]:
    return {b.text: b.headings for s in parse_document(text) for b in s.blocks if b.kind == "body"}


def test_wrapped_heading_gets_its_tail_back():
    text = ("一、国有企业基层党建与经营发展融合的重\n要意义\n（一）有利于增强企业凝聚力\n\n正文一。\n\n"
            "（二）提升企业核心竞争力\n\n的需要\n\n党建工作可以为国有企业\n\n提供动力。\n")
    assert _paths(text) == {
        "正文一。": ("一、国有企业基层党建与经营发展融合的重要意义", "（一）有利于增强企业凝聚力"),
        "党建工作可以为国有企业提供动力。": ("一、国有企业基层党建与经营发展融合的重要意义", "（二）提升企业核心竞争力的需要"),
    }


def test_long_numbered_sentence_is_not_a_heading():
    text = ("（三）持续推进融合力度\n"
            "1、强化制度的落实是党建工作融入生产经营工作的基础制度是抓好党建工作落实的根本保证，更是党建工作与\n\n"
            "生产经营工作融合的推进剂。\n2、找准有效途径\n一方面持续抓好党建主题活动。\n")
    paths = _paths(text)
    assert paths["1、强化制度的落实是党建工作融入生产经营工作的基础制度是抓好党建工作落实的根本保证，"
                 "更是党建工作与生产经营工作融合的推进剂。"] == ("（三）持续推进融合力度",)
    assert paths["一方面持续抓好党建主题活动。"] == ("（三）持续推进融合力度", "2、找准有效途径")


def test_run_in_heading_enters_the_path_and_stays_in_the_text():
    text = "二、相关措施\n（一）完善组织体系建设。工会工作质量的高\n\n低与工会组织的整体能力挂钩。\n"
    assert _paths(text) == {"（一）完善组织体系建设。工会工作质量的高低与工会组织的整体能力挂钩。":
                            ("二、相关措施", "（一）完善组织体系建设")}


def test_levels_follow_numbering_style_not_markdown_level():
    # 001's extraction: `### （一）` and `#### （二）` are siblings, `### 3、` is the third item under （一）.
    text = ("## 一、策略\n### （一）路径探索\n1、创新载体\n甲。\n2、明确目标\n乙。\n### 3、理论武装\n丙。\n"
            "#### （二）凝聚合力\n##### 1、加强引领\n丁。\n### 二、结束语\n戊。\n#### 参考文献\n- [1] 某某. 题名[J]. 期刊, 2019.\n")
    segs = parse_document(text)
    got = {b.text: (b.kind, b.headings) for s in segs for b in s.blocks}
    assert got["丙。"] == ("body", ("一、策略", "（一）路径探索", "3、理论武装"))
    assert got["丁。"] == ("body", ("一、策略", "（二）凝聚合力", "1、加强引领"))
    assert got["戊。"] == ("body", ("二、结束语",))
    assert got["[1] 某某. 题名[J]. 期刊, 2019."] == ("references", ("参考文献",))


def test_keyword_heading_is_a_sibling_of_the_top_level_sections():
    text = "引言\n\n引言的内容。\n\n1 背景\n\n背景的内容。\n\n1.1 细节\n\n细节的内容。\n\n2 结语\n\n结语的内容。\n"
    assert _paths(text) == {"引言的内容。": ("引言",), "背景的内容。": ("1 背景",),
                            "细节的内容。": ("1 背景", "1.1 细节"), "结语的内容。": ("2 结语",)}


def test_unnumbered_markdown_headings_nest_by_level():
    text = "# 文档标题\n\n开头。\n\n## 背景\n\n背景。\n\n### 细节\n\n细节。\n\n## 方法\n\n方法。\n"
    segs = parse_document(text)
    assert [(s.title, s.title_is_fallback) for s in segs] == [("文档标题", False)]   # printed as a title
    assert _paths(text) == {"开头。": ("文档标题",), "背景。": ("文档标题", "背景"),
                            "细节。": ("文档标题", "背景", "细节"), "方法。": ("文档标题", "方法")}


def test_captions_and_citations():
    text = "1 方法\n\n见图1所示：\n\n图1 党建与生产经营协同推进机制运行流程图\n\n格局^[1]。\n"
    (seg,) = parse_document(text)
    assert [(b.kind, b.text) for b in seg.blocks] == [
        ("body", "见图1所示："), ("caption", "图1 党建与生产经营协同推进机制运行流程图"), ("body", "格局[1]。")]


# ------------------------------------------------- lines wrapped by a narrow (PDF) column keep their structure

@pytest.mark.parametrize("head, title, authors", [
    # a title wrapped with a short name-shaped tail, then a blank line and the byline
    ("国有企业党建工作与生产经营深度融合路径\n探析\n\n杨晓炜\n", "国有企业党建工作与生产经营深度融合路径探析", ("杨晓炜",)),
    # wrapped over three lines
    ("国有企业党建工作与生产经营\n深度融合的实践路径与\n探析\n\n杨晓炜\n", "国有企业党建工作与生产经营深度融合的实践路径与探析",
     ("杨晓炜",)),
    # the same title on one line: unchanged
    ("国有企业党建工作与生产经营深度融合路径探析\n\n杨晓炜\n", "国有企业党建工作与生产经营深度融合路径探析", ("杨晓炜",)),
    # two authors stacked one a line under the title (no blank line between them): both are names
    ("国有企业党建工作与生产经营深度融合路径探析\n张三\n李四\n", "国有企业党建工作与生产经营深度融合路径探析", ("张三",)),
])
def test_wrapped_title_tail_is_not_the_byline(head, title, authors):
    text = head + "\n大唐凉山新能源有限公司 四川 成都 610074\n\n【摘要】：国有企业是国家经济发展的支柱。\n\n正文第一段。\n"
    (seg,) = parse_document(text)
    assert (seg.title, seg.authors[:1]) == (title, authors)
    assert not any(b.kind == "body" and "杨晓炜" in b.text for b in seg.blocks)


@pytest.mark.parametrize("lines, want", [
    # wrapped mid-word: the tail continues the list
    ("【关键词】：国有企业；党建工作；生产经\n营；深度融合；高质量发展", "国有企业；党建工作；生产经营；深度融合；高质量发展"),
    ("Key words: state-owned enterprises; Party building\nintegration; Production and operation",
     "state-owned enterprises; Party building integration; Production and operation"),
    # one line: unchanged
    ("【关键词】：国有企业；党建工作；生产经营", "国有企业；党建工作；生产经营"),
])
def test_wrapped_keywords_continue_on_the_next_line(lines, want):
    text = "题目之类的长标题文字\n\n张三\n\n某某能源有限公司\n\n" + lines + "\n\n一、引言\n\n正文第一段。\n"
    (seg,) = parse_document(text)
    kw = [b.text for b in seg.blocks if b.kind == "keywords"]
    assert kw == [want]
    assert [b.text for b in seg.blocks if b.kind == "body"] == ["正文第一段。"]


def test_keywords_end_at_a_blank_line_or_a_sentence():
    # a blank line ends the list; a line with a sentence in it (no blank line between) is the next paragraph
    for sep in ("\n\n", "\n"):
        text = "【关键词】：国有企业；党建工作" + sep + "国有企业是国家经济发展的支柱。党建是优势。\n"
        (seg,) = parse_document(text)
        assert [(b.kind, b.text) for b in seg.blocks] == [
            ("keywords", "国有企业；党建工作"), ("body", "国有企业是国家经济发展的支柱。党建是优势。")], sep


@pytest.mark.parametrize("text, captions, body", [
    # a 1-character tail wrapped off the caption
    ("见图1所示：\n\n图1 党建与生产经营协同推进机制运行流程\n图\n\n格局[1]。\n",
     ["图1 党建与生产经营协同推进机制运行流程图"], ["见图1所示：", "格局[1]。"]),
    # two captions in a row stay two captions
    ("图1 党建与生产经营协同推进机制运行流程图\n表2 考核指标\n\n格局。\n",
     ["图1 党建与生产经营协同推进机制运行流程图", "表2 考核指标"], ["格局。"]),
    # a paragraph straight after a caption (its next line is text too) is not a tail
    ("图1 党建与生产经营协同推进机制运行流程图\n这是下一段\n的第二行。\n",
     ["图1 党建与生产经营协同推进机制运行流程图"], ["这是下一段的第二行。"]),
])
def test_wrapped_caption_keeps_its_tail(text, captions, body):
    (seg,) = parse_document(text)
    assert [b.text for b in seg.blocks if b.kind == "caption"] == captions
    assert [b.text for b in seg.blocks if b.kind == "body"] == body


@pytest.mark.parametrize("aff_lines, want", [
    # wrapped before the postcode: one affiliation
    ("山西西山晋兴能源有限责任公司 山西 太原\n030000", "山西西山晋兴能源有限责任公司 山西 太原 030000"),
    ("大唐凉山新能源有限公司 四川 成都\n610074", "大唐凉山新能源有限公司 四川 成都 610074"),
    # one line: unchanged
    ("大唐凉山新能源有限公司 四川 成都 610074", "大唐凉山新能源有限公司 四川 成都 610074"),
    # two affiliations stacked: the first is the article's, the second is not glued to it
    ("大唐凉山新能源有限公司\n四川大学公共管理学院", "大唐凉山新能源有限公司"),
])
def test_wrapped_affiliation_is_one(aff_lines, want):
    text = "国有企业党建工作的探索实践\n\n刘隆\n\n" + aff_lines + "\n\n【摘要】：党建工作是根与魂。\n\n正文第一段。\n"
    (seg,) = parse_document(text)
    assert seg.affiliation == want
    assert [b.text for b in seg.blocks if b.kind == "body"] == ["正文第一段。"]


@pytest.mark.parametrize("doi_lines, want", [
    ("【DOI】 10.12252/j.issn.2096-\n6288.2020.04.106", "10.12252/j.issn.2096-6288.2020.04.106"),
    ("【DOI】 10.12252/j.issn.2096-6288.2020.04.106", "10.12252/j.issn.2096-6288.2020.04.106"),
])
def test_wrapped_doi_keeps_its_rest(doi_lines, want):
    text = "【摘要】：党建工作是根与魂。\n\n" + doi_lines + "\n\n当前，国有企业正处于改革的关键时期。\n"
    (seg,) = parse_document(text)
    assert seg.doi == want
    assert [b.text for b in seg.blocks if b.kind == "body"] == ["当前，国有企业正处于改革的关键时期。"]
    assert [b.text for b in seg.blocks if b.kind == "front"] == ["【DOI】 " + want]


@pytest.mark.parametrize("text, heading", [
    # wrapped into three full-width lines, a blank line after
    ("一、当前国企党建与生产经\n营工作深度融合现状及存在\n不足\n\n当前，党委积极构建融合机制。\n",
     "一、当前国企党建与生产经营工作深度融合现状及存在不足"),
    # one line: unchanged
    ("一、当前国企党建与生产经营工作深度融合现状及存在不足\n\n当前，党委积极构建融合机制。\n",
     "一、当前国企党建与生产经营工作深度融合现状及存在不足"),
    # a short heading over a longer unpunctuated line: the line is its paragraph's start, not its tail
    ("四、结束语\n国有企业基层党建与经营发展的深度融合是\n\n新时代国有企业发展的必然选择。\n", "四、结束语"),
    # a paragraph straight under the heading (punctuated) is no tail
    ("一、当前国企党建与生产经营\n当前，党委积极构建融合机制，\n成效明显。\n", "一、当前国企党建与生产经营"),
])
def test_heading_wrapped_by_a_column_gets_its_tails(text, heading):
    assert set(_paths(text).values()) == {(heading,)}


@pytest.mark.parametrize("head, title", [
    ("中办、国办印发《关于加快构建普通高等学\n校毕业生高质量就业服务体系的意见》\n",
     "中办、国办印发《关于加快构建普通高等学校毕业生高质量就业服务体系的意见》"),
    ("中办、国办印发《关于加快构建普通高等学校毕业生高质量就业服务体系的意见》\n",
     "中办、国办印发《关于加快构建普通高等学校毕业生高质量就业服务体系的意见》"),
])
def test_news_headline_wrapped_over_two_lines(head, title):
    text = ("受委托，我公司定于2025年4月17日在中拍平台以电子竞价的方式公开拍卖下列标的。\n咨询电话：15364781799\n"
            "2025 年 4 月 10日\n" + head + "（上接1版）\n《意见》提出，优化培养供给体系。\n")
    news = [s for s in parse_document(text) if s.kind == "news"]
    assert [s.title for s in news] == [title]
    assert [b.text for b in news[0].blocks] == [title, "《意见》提出，优化培养供给体系。"]


def test_numbered_sentence_wrapped_over_three_lines_is_no_heading():
    text = "五、竞买登记手续：\n1、凡具备完全民事行为能力的公民、法人\n和其它组织均\n\n可参加竞买。\n"
    assert _paths(text) == {"1、凡具备完全民事行为能力的公民、法人和其它组织均可参加竞买。": ("五、竞买登记手续",)}


@pytest.mark.parametrize("aff", [
    "北京起重运输机械设计研究院有限公司，中国·北京 100007",          # one line
    "北京起重运输机械设计研究院有限公司，中\n国·北京 100007",         # wrapped mid-word by a column
])
def test_name_line_over_a_wrapped_affiliation_is_a_byline(aff):
    text = ("国有企业党建促经营深度融合的产业赋能路\n径与发展启示\n\n曾程 杜淏天\n" + aff +
            "\n\n目前，国有企业正处于深化改革的关键时期。\n")
    (seg,) = parse_document(text)
    assert (seg.title, seg.authors, seg.affiliation) == (
        "国有企业党建促经营深度融合的产业赋能路径与发展启示", ("曾程", "杜淏天"), "北京起重运输机械设计研究院有限公司，中国·北京 100007")
    assert [b.text for b in seg.blocks if b.kind == "body"] == ["目前，国有企业正处于深化改革的关键时期。"]


def test_english_title_wrapped_over_five_lines():
    en = ("The industrial empowerment path and\ndevelopment inspiration of promoting deep\n"
          "integration of state-owned enterprise party\nbuilding and operation - taking Beiqi Institute\nas an example\n"
          "Cheng Zeng Gengtian Du\nBeijing Crane Transport Machinery Design and\n"
          "Research Institute Co., Ltd., Beijing, 100007,\nChina\nAbstract\nThis article focuses on party building.\n\n")
    zh = "国有企业党建促经营深度融合的产业赋能路径与发展启示\n\n曾程 杜淏天\n北京起重运输机械设计研究院有限公司，中国·北京 100007\n\n摘要：本文围绕党建。\n"
    (seg,) = parse_document(en + zh)
    assert seg.title_en == ("The industrial empowerment path and development inspiration of promoting deep integration "
                            "of state-owned enterprise party building and operation - taking Beiqi Institute as an example")
    assert not any(b.kind == "body" for b in seg.blocks)        # `China` is the affiliation's last word
    assert any(b.kind == "front" and b.text.endswith("China") for b in seg.blocks)
