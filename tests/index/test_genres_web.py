"""Web pages and site mirrors saved as .txt/.md: the page title is the title, 来源/作者/发布时间 are metadata,
navigation and markup are dropped, a dated chronology stays one document; DocMeta fills what the text lacks."""
import re

import pytest

from index.chunk import chunk_document
from index.document import DocMeta, Document
from index.normalize import clean_line
from index.structure import parse_document
from index.structure.web import meta_fields

PAGE = """<!-- 页面顶部 -->
当前位置：首页 > 党建工作 > 理论学习
加强基层党组织建设的几点思考文章来源：某某日报作者：张三&nbsp;&nbsp;发布时间：2016-10-27 点击数：1234

　　基层党组织是党在社会基层组织中的战斗堡垒，是党的全部工作和战斗力的基础。

<!--
<div class="ad">广告</div>
-->
　　加强基层党组织建设，必须坚持问题导向，&nbsp;把党的政治建设摆在首位。<br/>

【打印正文】 【关闭窗口】
上一篇：关于开展主题教育的通知
下一篇：某某支部召开组织生活会
"""

JUNK = re.compile(r"&nbsp;|<!--|-->|<br|#|\*\*|上一篇|下一篇|文章来源|发布时间|点击数|打印正文|当前位置")


def test_page_title_metadata_and_no_furniture_in_chunks():
    (seg,) = parse_document(PAGE)
    assert (seg.kind, seg.title, seg.title_is_fallback) == ("web", "加强基层党组织建设的几点思考", False)
    assert (seg.authors, seg.date, seg.publisher) == (("张三",), "2016-10-27", "某某日报")
    chunks = chunk_document(PAGE, "page.md")
    # The comment between the paragraphs keeps them apart: a chunk citing lines 4-9 would cite the comment.
    assert [c.text for c in chunks] == [
        "基层党组织是党在社会基层组织中的战斗堡垒，是党的全部工作和战斗力的基础。",
        "加强基层党组织建设，必须坚持问题导向，把党的政治建设摆在首位。"]
    assert not any(JUNK.search(c.text) for c in chunks)
    assert all((c.segment_kind, c.date, c.publisher, c.authors) == ("web", "2016-10-27", "某某日报", ("张三",))
               for c in chunks)


def test_page_chunks_quote_their_source_lines():
    lines = PAGE.split("\n")
    for c in chunk_document(PAGE, "page.md"):
        source = "".join(clean_line(line) for line in lines[c.line_start - 1:c.line_end])
        assert re.sub(r"\s", "", c.text) in re.sub(r"\s", "", source)


def test_title_line_above_a_metadata_line():
    text = "某某街道开展党员志愿服务活动\n\n来源：某某区委组织部　　发布日期：2021年5月6日\n\n5月6日上午，某某街道组织党员开展志愿服务。\n"
    (seg,) = parse_document(text)
    assert (seg.title, seg.publisher, seg.date, seg.kind) == \
        ("某某街道开展党员志愿服务活动", "某某区委组织部", "2021年5月6日", "web")
    assert [b.text for b in seg.blocks] == ["5月6日上午，某某街道组织党员开展志愿服务。"]


@pytest.mark.parametrize("line, fields", [
    ("文章来源：某某报 作者：张三 发布时间：2016-10-27", {"文章来源": "某某报", "作者": "张三", "发布时间": "2016-10-27"}),
    ("来源：新华社", {"来源": "新华社"}),
    ("发布时间：2020-01-02 浏览次数：88", {"发布时间": "2020-01-02", "浏览次数": "88"}),
    ("作者：王五", None),                                        # a byline: the title block pass reads it
    ("时间：2025年4月17日", None),                               # one weak label alone is content (a notice's time)
    ("来源：自筹资金，主要用于支付党员教育培训、党建活动场地租赁和相关设备购置等各项费用", None),  # a sentence
    ("经费来源：财政拨款", None),                                # not at the start of the line
])
def test_metadata_line_shapes(line, fields):
    assert meta_fields(line) == fields


@pytest.mark.parametrize("line", [
    "【打印正文】【关闭窗口】", "上一篇：某某文章", "下一篇：没有了", "当前位置：首页 > 新闻中心", "[back](./)",
    "\\[\\[http://example.edu.cn/a.pdf\\|PDF文件下载\\]\\]", "http://www.example.gov.cn/",
])
def test_navigation_lines_are_dropped(line):
    text = f"# 标题\n\n正文第一段，内容很多很多很多。\n\n{line}\n\n正文第二段，内容也很多。\n"
    got = [c.text for c in chunk_document(text, "x.md")]
    assert got == ["正文第一段，内容很多很多很多。", "正文第二段，内容也很多。"], got   # dropped, and never cited


def test_a_sentence_mentioning_the_previous_article_is_text():
    text = "# 标题\n\n正如我们在上一篇文章中所说，基层党建需要久久为功。\n"
    assert "上一篇文章" in chunk_document(text, "x.md")[0].text


def test_yaml_front_matter_is_not_text_or_title():
    text = "---\nlayout: default\ntitle: Hello\n---\n\n## 某某制度汇编\n\n制度正文，共有若干条规定。\n"
    (seg,) = parse_document(text)
    assert seg.title == "某某制度汇编"
    assert [b.text for b in seg.blocks] == ["制度正文，共有若干条规定。"]


CHRONOLOGY = """# 某某党委大事记

2016年10月27日

某某党委召开全体会议，研究部署年度工作。

2016年11月3日

某某党委开展主题党日活动。

2017年1月5日

某某党委召开民主生活会。

2017年3月8日

某某党委表彰优秀共产党员。
"""


def test_a_dated_chronology_is_one_document_with_dates_as_headings():
    segs = parse_document(CHRONOLOGY)
    assert [(s.title, s.title_is_fallback) for s in segs] == [("某某党委大事记", False)]
    paths = {b.text: b.headings[-1] for b in segs[0].blocks}     # (an article's `#` title heads its path)
    assert paths["某某党委开展主题党日活动。"] == "2016年11月3日"
    assert paths["某某党委表彰优秀共产党员。"] == "2017年3月8日"


def test_the_same_chronology_without_a_title_is_still_one_document():
    assert len(parse_document(CHRONOLOGY.split("\n", 2)[2])) == 1


def test_one_closing_date_still_ends_a_notice():
    text = ("受委托，我公司定于2025年4月17日公开拍卖下列标的：\n一、标的名称：商铺租赁权。\n二、竞买保证金：5000元。\n"
            "三、报名时间：4月14日。\n咨询电话：15364781799\n某某拍卖有限公司\n2025 年 4 月 10日\n\n"
            "党建工作的新思路\n□ 张 三\n\n党建工作的正文很长很长。\n（作者单位：某公司）\n")
    segs = parse_document(text)
    assert [s.kind for s in segs] == ["notice", "article"]
    assert segs[0].date == "2025年4月10日"


def test_document_metadata_fills_what_the_text_does_not_state():
    text = "正文第一段，说明了某项工作的要求。\n\n正文第二段，说明了另一项工作的要求。\n"
    meta = DocMeta(title="某项工作的说明", authors=("李四",), date="2024-03-01", source="某某网")
    (seg,) = parse_document(text, meta)
    assert (seg.title, seg.title_is_fallback, seg.authors, seg.date) == ("某项工作的说明", False, ("李四",), "2024-03-01")
    chunks = chunk_document(Document.of_text(text, "html", meta), "x.html")
    assert {(c.title, c.date, c.publisher) for c in chunks} == {("某项工作的说明", "2024-03-01", "某某网")}


def test_markdown_title_comes_before_the_document_metadata_title():
    text = "# 文中的标题\n\n正文。\n"
    (seg,) = parse_document(text, DocMeta(title="网页的标题"))
    assert seg.title == "文中的标题"


def test_text_authors_come_before_the_document_metadata_authors():
    text = "党建工作的若干思考\n作者：王五\n\n一、意义\n党建工作十分重要。\n"
    (seg,) = parse_document(text, DocMeta(authors=("系统管理员",)))
    assert seg.authors == ("王五",)


def test_metadata_of_a_many_segment_file_is_not_spread_over_its_articles():
    text = ("党建文章的标题\n□ 张 三\n\n党建文章的正文。\n（作者单位：某公司）\n\n"
            "另一篇文章的标题\n□ 李 四\n\n另一篇的正文。\n（作者单位：某公司）\n")
    segs = parse_document(text, DocMeta(title="合订本"))
    assert [s.title for s in segs] == ["党建文章的标题", "另一篇文章的标题"]


def test_citations_of_each_genre_say_what_the_researcher_cites():
    from assistant.cite import citation_for
    page = citation_for(chunk_document(PAGE, "page.md")[0])
    assert page.reference().startswith("张三. 加强基层党组织建设的几点思考[EB/OL]. 某某日报, 2016-10-27.")
    law = "# 某某条例\n\n第一章　总则\n\n第一条　为了规范管理，制定本条例。\n\n第二条　甲。\n\n第三条　乙。\n"
    cite = citation_for(chunk_document(law, "law.md")[0])
    assert cite.reference().startswith("某某条例[Z]")
    assert cite.location() == "第一章\u3000总则 > 第一条至第三条，law.md:5-9"
