"""Regulations and laws: 编 > 章 > 节 heading paths, the 条 as each chunk's locator, items inside a 条 as text.

Real documents of the dev corpus (hand-checked against the files), then one synthetic case per rule.
"""
from functools import lru_cache
from pathlib import Path

import pytest

from index.chunk import Chunk, chunk_document
from index.document import Document
from index.structure import LineKind, parse_document
from index.structure.lines import classify

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "dev"
needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"dev corpus not found at {DEV} (shared/ beside the repo)")


@lru_cache(maxsize=None)
def _chunks(rel: str) -> tuple[Chunk, ...]:
    return tuple(chunk_document(Document.of_text((DEV / rel).read_text(encoding="utf-8"), "md"), rel))


def _with(chunks, needle: str) -> Chunk:
    found = [c for c in chunks if needle in c.text]
    assert found, needle
    return found[0]


# (file, title, date, number of 条 lines, a needle, its heading path, its locator)
REAL = [
    ("regulations/jianchafa_2018.md", "中华人民共和国监察法", "2018年3月20日", 69,
     "留置场所的设置、管理和监督依照国家有关规定执行", ("第四章\u3000监察权限",), "第二十一条至第二十二条"),
    ("regulations/jilv_chufen_tiaoli_2023.md", "中国共产党纪律处分条例 2023", "2023年12月19日", 158,
     "（四）留党察看；", ("第一编 总则", "第二章 违纪与纪律处分"), "第七条至第八条"),
    ("regulations/jianchafa_shishi_tiaoli_2021.md", "中华人民共和国监察法实施条例", "2021年7月20日", 287,   # not 自…施行
     "徇私舞弊不征、少征税款罪", ("第二章 监察机关及其职责", "第三节 监察调查"), "第二十八条至第二十九条"),
    ("regulations/dangzhang_2017_zh_en.md", "中国共产党章程", "2017年10月24日", 55,
     "国有企业党委（党组）发挥领导作用", ("第五章\u3000党的基层组织",), "第三十三条"),
    ("regulations/gongwu_jiedai_guiding.md", "党政机关国内公务接待管理规定", "", 26,
     "为了规范党政机关国内公务接待管理", (), "第一条至第三条"),
]


@needs_dev
@pytest.mark.parametrize("rel, title, date, n_clauses, needle, path, locator", REAL, ids=[r[0] for r in REAL])
def test_real_regulations(rel, title, date, n_clauses, needle, path, locator):
    text = (DEV / rel).read_text(encoding="utf-8")
    (seg,) = parse_document(text)
    assert (seg.kind, seg.title, seg.title_is_fallback, seg.date) == ("regulation", title, False, date)
    lines, _ = classify(text.split("\n"))
    assert sum(ln.kind is LineKind.CLAUSE for ln in lines) == n_clauses      # counted with grep in the file
    c = _with(_chunks(rel), needle)
    assert (c.segment_kind, c.headings, c.locator) == ("regulation", path, locator)


@needs_dev
def test_the_party_constitution_cites_article_33_in_chinese_and_english():
    all_chunks = _chunks("regulations/dangzhang_2017_zh_en.md")
    chunks = [c for c in all_chunks if c.locator == "第三十三条"]
    assert chunks and all(c.headings == ("第五章\u3000党的基层组织",) for c in chunks)
    assert chunks[0].text.startswith("第三十三条\u3000街道、乡、镇党的基层委员会")     # the gap as printed
    assert any("Primary-level Party organizations" in c.text for c in chunks)         # the translation, too
    # Its 总纲 (general program, before 第一章) heads the path where a chapter would; YAML front matter is gone.
    assert _with(all_chunks, "中国共产党是中国工人阶级的先锋队").headings == ("总纲",)
    assert not any("layout: default" in c.text or "Hello" in c.text for c in all_chunks)


@needs_dev
@pytest.mark.parametrize("rel", sorted(p.relative_to(DEV).as_posix() for p in (DEV / "regulations").glob("*.md"))
                         if DEV.is_dir() else [])
def test_every_regulation_chunk_carries_its_article(rel):
    # A chunk never starts inside a 条 without its number; no chunk sits under an item; headings are 编/章/节.
    for c in _chunks(rel):
        assert c.segment_kind == "regulation"
        if c.block != "body":
            continue
        if c.text.startswith("第") and "条" in c.text[:10]:
            assert c.locator.startswith(c.text[:c.text.index("条") + 1]), (rel, c.text[:20], c.locator)
        assert all(h.startswith("第") or h in ("总纲", "总则", "附则") for h in c.headings), (rel, c.headings)
    # Under a chapter nearly every chunk names its 条 (the exceptions: text between a 章 heading and its first
    # 条, such as the constitution's English chapter title). A 总纲 or preamble has no 条.
    in_chapters = [c for c in _chunks(rel) if c.block == "body" and any("章" in h for h in c.headings)]
    assert sum(bool(c.locator) for c in in_chapters) >= 0.9 * len(in_chapters), rel


LAW = """# 某某管理条例

（2020年1月2日某某会议通过）

目　　录

第一章　总则

第二章　管理

第一章　总　　则

第一条　为了规范管理，制定本条例。

第二条　本条例适用于下列单位：

（一）国有企业；

（二）事业单位。

第二章　管理

第一节　设立

第三条　设立应当报批。

第四条　报批材料包括：

1.申请书；

2.章程。

第二节　变更

第五条 变更应当备案。{long}

第六条　本条例自发布之日起施行。
"""


def _law(**kw) -> tuple:
    text = LAW.format(long="备案材料应当齐全。" * 60)
    return parse_document(text), chunk_document(text, "law.md", **kw)


def test_synthetic_law_paths_locators_and_items():
    (seg,), chunks = _law()
    assert (seg.kind, seg.title, seg.date) == ("regulation", "某某管理条例", "2020年1月2日")
    by = {c.locator: c for c in chunks if c.locator}
    assert by["第一条至第二条"].headings == ("第一章\u3000总则",)
    assert "（一）国有企业；\n（二）事业单位。" in by["第一条至第二条"].text     # items stay in their 条
    assert by["第三条至第四条"].headings == ("第二章\u3000管理", "第一节\u3000设立")   # 章 above 节
    assert "1.申请书；" in by["第三条至第四条"].text
    assert all(h.startswith("第") for c in chunks for h in c.headings)           # never an item or the title
    assert not any("目录" in c.text.replace("　", "") for c in chunks)


def test_long_article_split_into_chunks_keeps_its_number_on_each():
    _, chunks = _law()
    fifth = [c for c in chunks if "备案材料应当齐全" in c.text]
    assert len(fifth) >= 2
    # Every piece names 第五条 (the last may run on into the short 第六条 of the same 节: "第五条至第六条").
    assert all(c.locator.startswith("第五条") and c.headings == ("第二章\u3000管理", "第二节\u3000变更") for c in fifth)
    assert fifth[0].text.startswith("第五条 变更应当备案。")                    # a plain space, as printed
    assert [c.line_start for c in fifth] == sorted(c.line_start for c in fifth)


@pytest.mark.parametrize("text, kind", [
    ("第一条　甲。\n第二条　乙。\n第三条　丙。\n", "regulation"),                       # three 条: a regulation
    ("第一条　甲。\n第二条　乙。\n", "other"),                                         # two are not enough
    ("第一条路径是加强党建。第二条路径是完善制度。第三条路径是强化监督。\n", "other"),    # no gap: prose
    ("第一条经验是甲。\n第二条经验是乙。\n第三条经验是丙。\n", "other"),                   # three in order: prose too
    ("".join(f"第{n}条本办法规定事项{n}。\n" for n in "一二三四五六"), "regulation"),       # gaps lost upstream
    ("".join(f"第{n}条本办法规定事项。\n" for n in "一三五七九十"), "other"),               # not a sequence
])
def test_regulation_is_detected_from_article_lines(text, kind):
    assert [s.kind for s in parse_document(text)] == [kind]


def test_part_chapter_section_levels_and_merged_range():
    text = ("第一编　总则\n第一章　原则\n第一条　甲。\n第二条　乙。\n第二章　范围\n第三条　丙。\n"
            "第二编　分则\n第三章　处分\n第一节　警告\n第四条　丁。\n第二节　撤职\n第五条　戊。\n")
    got = [(c.headings, c.locator) for c in chunk_document(text, "x.txt")]
    assert got == [(("第一编\u3000总则", "第一章\u3000原则"), "第一条至第二条"),
                   (("第一编\u3000总则", "第二章\u3000范围"), "第三条"),
                   (("第二编\u3000分则", "第三章\u3000处分", "第一节\u3000警告"), "第四条"),
                   (("第二编\u3000分则", "第三章\u3000处分", "第二节\u3000撤职"), "第五条")]


def test_article_number_on_its_own_line_keeps_a_gap_from_its_text():
    text = "第一条\n\n为了规范管理，制定本规定。\n\n第二条\n\n本规定适用于机关。\n\n第三条\n\n本规定自发布之日起施行。\n"
    chunks = chunk_document(text, "x.md")
    assert chunks[0].text.startswith("第一条\u3000为了规范管理")
    assert chunks[0].locator == "第一条至第三条"


def test_articles_lost_their_gap_upstream_still_open_articles_once_the_genre_is_known():
    text = "第一条　甲。\n第二条　乙。\n第三条　丙。\n第四条丁。\n"
    chunks = chunk_document(text, "x.txt")
    assert chunks[-1].locator.endswith("第四条")


@pytest.mark.parametrize("adoption, date, publisher", [
    ("（2021年12月6日中共中央政治局会议审议批准 2021年12月24日中共中央发布）", "2021年12月24日", "中共中央"),
    ("（2021年7月20日国家监察委员会全体会议决定，自2021年9月20日起施行）", "2021年7月20日", ""),   # effective date
    ("（2018年3月20日第十三届全国人民代表大会第一次会议通过）", "2018年3月20日", ""),
    ("（2009年7月1日）", "2009年7月1日", ""),
])
def test_adoption_line_gives_date_and_publisher(adoption, date, publisher):
    text = f"# 某某条例\n\n{adoption}\n\n第一条　甲。\n\n第二条　乙。\n\n第三条　丙。\n"
    (seg,) = parse_document(text)
    assert (seg.kind, seg.date, seg.publisher) == ("regulation", date, publisher)


@pytest.mark.parametrize("text, n", [("一", 1), ("十", 10), ("十七", 17), ("二十", 20), ("一百一十二", 112),
                                     ("一百零五", 105), ("两千", 2000), ("45", 45), ("条", -1)])
def test_chinese_article_numbers(text, n):
    from index.structure.regulation import cn_number
    assert cn_number(text) == n


def test_articles_glued_to_their_text_still_get_locators():
    text = "".join(f"第{n}条本办法规定的第{n}件事项。\n\n" for n in "一二三四五六")
    chunks = chunk_document(text, "x.txt")
    assert chunks[0].locator == "第一条至第六条"
