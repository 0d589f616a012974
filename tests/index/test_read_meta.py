"""index.readers.meta: junk titles and authors, journal header lines, DOIs (tables of real shapes)."""
import pytest

from index.readers.meta import JournalRef, clean_authors, clean_title, find_doi, parse_journal_line


@pytest.mark.parametrize("raw, want", [
    ("国务院关于深入实施“人工智能+”行动的意见", "国务院关于深入实施“人工智能+”行动的意见"),
    ("  上海市劳动合同条例 ", "上海市劳动合同条例"),
    ("State-owned Enterprise Reform in China", "State-owned Enterprise Reform in China"),
    ("Microsoft Word - 2024年工作要点.docx", ""),
    ("Microsoft Word - 国企党建研究", ""),             # the tool's prefix: what follows is a file name
    ("WPS文字 - 新建文档", ""),
    ("untitled", ""),
    ("Untitled-1", ""),
    ("无标题", ""),
    ("Document1", ""),
    ("文档1", ""),
    ("新建 Microsoft Word 文档", ""),
    ("党建论文终稿.doc", ""),
    ("report_2024_final", ""),
    ("scan0001", ""),
    ("C:\\Users\\admin\\Desktop\\稿件.pdf", ""),
    ("2024-03-01", ""),
    ("about:blank", ""),                            # a browser print of a page with no <title>
    ("https://www.gov.cn/zhengce/content/2025-08/27/content_7037861.htm", ""),
    ("", ""),
])
def test_clean_title(raw, want):
    assert clean_title(raw) == want


@pytest.mark.parametrize("raw, want", [
    ("张三", ("张三",)),
    ("张三；李四", ("张三", "李四")),
    ("张三, 李四、王五", ("张三", "李四", "王五")),
    ("Administrator", ()),
    ("微软用户", ()),
    ("Microsoft Office User", ()),
    ("USER-20240301", ()),
    ("张三; admin", ("张三",)),
    ("", ()),
])
def test_clean_authors(raw, want):
    assert clean_authors(raw) == want


@pytest.mark.parametrize("line, want", [
    ("《中国政策研究》2024年第3期", JournalRef("中国政策研究", "2024", "3")),
    ("中国政策研究 2024 年第 3 期", JournalRef("中国政策研究", "2024", "3")),
    ("中国政策研究·2024年第12期", JournalRef("中国政策研究", "2024", "12")),
    ("《党建研究》2023年第03期 总第411期", JournalRef("党建研究", "2023", "3")),
    ("2024年第3期《中国政策研究》", JournalRef("中国政策研究", "2024", "3")),
    ("第42卷 《管理世界》 2021年第五期", JournalRef("管理世界", "2021", "5")),
    ("中国政策研究 ２０２４年第３期", JournalRef("中国政策研究", "2024", "3")),      # full-width digits
    ("西南大学学报（社会科学版）2022年第4期", JournalRef("西南大学学报(社会科学版)", "2022", "4")),
    ("《中国政策研究》2024年3期", JournalRef("中国政策研究", "2024", "3")),
    # sentences that mention an issue are not header lines
    ("本文发表于《中国政策研究》2024年第3期，引起了广泛的讨论和关注。", None),
    ("习近平总书记在《求是》2024年第3期发表重要文章", None),
    ("2024年第3期", None),                                  # no journal named
    ("国有企业党建工作与生产经营深度融合路径探析", None),
    ("", None),
])
def test_parse_journal_line(line, want):
    assert parse_journal_line(line) == want


@pytest.mark.parametrize("text, want", [
    ("DOI:10.12417/3041-0630.26.08.049", "10.12417/3041-0630.26.08.049"),
    ("doi: 10.1000/xyz123.", "10.1000/xyz123"),
    ("https://doi.org/10.3969/j.issn.1002-9753.2024.03.001）", "10.3969/j.issn.1002-9753.2024.03.001"),
    ("DOI：10.16011/j.cnki.jjwt.2024.03.005，", "10.16011/j.cnki.jjwt.2024.03.005"),
    ("没有标识符的一行 10.5 亿元", ""),
])
def test_find_doi(text, want):
    assert find_doi(text) == want
