"""Tables for the pure text functions in index/normalize.py (rows taken from the seed extractions)."""
import pytest

from index.normalize import (
    clean_line, clean_meta, collapse_spaces, ends_sentence, fold_width, join_lines, join_wrapped,
    line_starts_and_text, searchable, sentence_spans, split_wrapped, strip_markup,
)


@pytest.mark.parametrize("raw, want", [
    ("具 象 的 发 展 实 践 ，将 宏 观", "具象的发展实践，将宏观"),            # 004: spaced CJK, space before ，
    ("垒 作 用 和 党 员 的 先 锋 模 范 作", "垒作用和党员的先锋模范作"),
    ("有企业党建与经营 “两张皮” 的问题", "有企业党建与经营“两张皮”的问题"),  # 002: spaces around quotes
    ("“强党建 保稳定 促经营 助发展”", "“强党建保稳定促经营助发展”"),        # every CJK gap goes, by choice
    ("发展启示 ——以北起院为例", "发展启示——以北起院为例"),                # 003 title: space before the dash
    ("Party building and   operation - taking", "Party building and operation - taking"),  # English kept
    ("在 2020 年组织开展", "在 2020 年组织开展"),                          # spaces around numbers kept
    ("搭建线上党建平台，如党 建 APP、微信", "搭建线上党建平台，如党建 APP、微信"),
    (" 国有企业基层党建\t", "国有企业基层党建"),                            # 002 line 1: leading space
    ("中　国　共　产　党", "中国共产党"),                                    # ideographic spaces
    ("ＡＢＣ１２３，。（）", "ABC123，。（）"),                               # fold alnum only, keep punctuation
    ("协调运转。^[3]", "协调运转。[3]"),                                     # extraction's superscript marker
    ("- [1] 夏海龙.国有企业", "[1] 夏海龙.国有企业"),                         # markdown list bullet
    ("**[摘要]** 党建工作", "[摘要] 党建工作"),                               # markdown bold
    ("## 一、当前国企党建", "一、当前国企党建"),                               # markdown heading hashes
    ("党建\u200b工作\ufeff", "党建工作"),                                    # zero-width characters
    ("□ 刘 莹", "刘莹"),                                                   # 004 byline glyph
    ("姻平煤神马建工集团建井一处 李宁坡", "平煤神马建工集团建井一处李宁坡"),   # 002: 姻 is the extracted glyph
    ("姻亲关系不在此列。", "姻亲关系不在此列。"),                             # ... and a real word elsewhere
    ("　　第十条　国家监察工作", "第十条\u3000国家监察工作"),                 # the 条's gap, as printed
    ("第一条 为了维护党章", "第一条 为了维护党章"),                           # ... a plain space stays one
    ("第一章　总　　则", "第一章\u3000总则"),                                # a chapter's too; inner gaps go
    ("第十条国家监察工作", "第十条国家监察工作"),                             # no gap is added where none was
    ("第一百一十二条　利用职权", "第一百一十二条\u3000利用职权"),
    ("在第十条 规定的范围内", "在第十条规定的范围内"),                        # only a leading number keeps it
    ("标题&nbsp;&nbsp;正文&amp;附件&#12288;", "标题正文&附件"),              # entities decoded, then spacing
    ("<!-- 页头 -->正文<br/>内容<span class=\"x\">强调</span>", "正文内容强调"),   # inline comments and tags
    ("\\[\\[链接\\]\\]", "[[链接]]"),                                          # markdown escapes
])
def test_clean_line(raw, want):
    assert clean_line(raw) == want


@pytest.mark.parametrize("raw, want", [
    ("大唐凉山新能源有限公司 四川 成都 610074", "大唐凉山新能源有限公司 四川 成都 610074"),
    ("  山西汾河焦煤　股份有限公司 ", "山西汾河焦煤 股份有限公司"),
    ("ＤＯＩ：１０", "DOI：10"),
])
def test_clean_meta_keeps_word_spaces(raw, want):
    assert clean_meta(raw) == want


def test_fold_width_touches_only_alnum_and_spaces():
    assert fold_width("Ｚｚ９，；：？！“”（）【】") == "Zz9，；：？！“”（）【】"


@pytest.mark.parametrize("line, want", [
    ("推动项目顺利完成。", True),
    ("“两张皮”现象难以根除。”", True),               # closing quote after the stop
    ("协调运转。[3]", True),                         # citation after the stop
    ("这不仅提高了！", True),
    ("providing inspiration for the new era.", True),
    ("国有企业基层党建与经营发展融合是提升企", False),  # hard wrap mid-word
    ("具体体现为三类典型机制：", False),
    ("引导工会职工按照制度开展工作；", False),          # ； continues a sentence across a wrap
    ("2019(01): 1.", False),                          # a number's dot is not a sentence end
    ("（2004年12月16日）", True),                      # a whole parenthetical line stands alone
    ("（2018年3月20日第十三届全国人民代表大会第一次会议通过）", True),
    ("（一）加强组织领导", False),                      # an item number is not a parenthetical line
    ("", False),
])
def test_ends_sentence(line, want):
    assert ends_sentence(line) is want


@pytest.mark.parametrize("lines, want", [
    (["提升企", "", "业竞争力的关键。"], ["提升企业竞争力的关键。"]),                 # 002: wrap with blank line
    (["汇聚全员共建共", "", "治的强大合力，从基层层面夯实。"], ["汇聚全员共建共治的强大合力，从基层层面夯实。"]),
    (["第一段结束。", "第二段开始", "接着写。"], ["第一段结束。", "第二段开始接着写。"]),  # 。 stays a break
    (["（一）融合意识不足", "部分国有企业对基层党建"], ["（一）融合意识不足", "部分国有企业对基层党建"]),
    (["具 象 的", "发 展 实 践。"], ["具象的发展实践。"]),                           # spaced CJK over a wrap
    (["This article focuses on the", "theme of integration."], ["This article focuses on the theme of integration."]),
    (["竞买保证金：1-15号标的，16-", "19号标的 5000元/间。"], ["竞买保证金：1-15号标的，16-19号标的 5000元/间。"]),
    (["具体体现为：", "1、凡具备完全民事行为能力的公民", "可参加竞买。"],
     ["具体体现为：", "1、凡具备完全民事行为能力的公民可参加竞买。"]),               # numbered item starts anew
    (["", "  ", ""], []),
])
def test_join_wrapped(lines, want):
    assert join_wrapped(lines, is_heading=lambda s: s.startswith("（一）")) == want


def test_split_wrapped_ranges_cover_every_line_once():
    lines = ["甲乙", "丙丁。", "戊己", "（一）庚辛", "壬癸。"]
    ranges = split_wrapped(lines)
    assert ranges == [(0, 2), (2, 3), (3, 5)]
    assert [i for a, b in ranges for i in range(a, b)] == list(range(len(lines)))


@pytest.mark.parametrize("lines, want", [
    (["General Program", "中国共产党是中国工人阶级的先锋队。"], [(0, 1), (1, 2)]),       # a wrap never switches
    (["中国共产党章程", "CONSTITUTION OF THE COMMUNIST PARTY", "（2017年10月24日通过）"], [(0, 1), (1, 2), (2, 3)]),
    (["搭建线上党建平台，如党建", "APP、微信公众号等。"], [(0, 2)]),                         # mixed: a real wrap
    (["the state-owned", "enterprises of China."], [(0, 2)]),
])
def test_split_wrapped_breaks_where_the_script_switches(lines, want):
    assert split_wrapped(lines) == want


def test_article_number_on_its_own_line_is_joined_with_a_gap():
    assert join_lines(["第一条", "为了规范管理，制定本规定。"]) == "第一条\u3000为了规范管理，制定本规定。"
    assert join_lines(["第一", "条路径"]) == "第一条路径"


def test_line_offsets_point_at_each_line():
    lines = ["This is", "English text", "和中文"]
    starts, pieces = line_starts_and_text(lines)
    text = "".join(pieces)
    assert text == join_lines(lines) == "This is English text和中文"
    assert [text[s:s + len(line)] for s, line in zip(starts, lines)] == lines


@pytest.mark.parametrize("raw, want", [
    ("脱节格局^[1]。下一句[2-3]，再一句［4］", "脱节格局。下一句，再一句"),
    ("中国能建[1]在此方面", "中国能建在此方面"),
    ("文献[J]. 当代电力文化, 2019(01): 1.", "文献[J]. 当代电力文化, 2019(01): 1."),  # [J] is not a citation
    ("第一段\n\n第二段  English   words", "第一段第二段 English words"),
    ("具 象 的 发 展", "具象的发展"),
    ("ＡＰＰ平台¹", "APP平台"),
])
def test_searchable(raw, want):
    assert searchable(raw) == want


def test_strip_markup_keeps_link_text_and_drops_images():
    assert strip_markup("见[国资委网站](https://www.sasac.gov.cn)![图](a.png)") == "见国资委网站"


def test_collapse_spaces_is_idempotent():
    s = "具 象 的 发 展 实 践 ，将 宏 观 “两张皮” 的 English  words"
    assert collapse_spaces(collapse_spaces(s)) == collapse_spaces(s)


@pytest.mark.parametrize("text, max_chars, want", [
    ("甲乙丙。丁戊己。", 4, ["甲乙丙。", "丁戊己。"]),
    ("甲乙丙丁戊己。", 10, ["甲乙丙丁戊己。"]),                       # short enough: not cut
    ("甲乙，丙丁；戊己庚辛。", 5, ["甲乙，", "丙丁；", "戊己庚辛。"]),   # ；then ，when a sentence is too long
    ("甲乙丙丁戊己庚辛", 3, ["甲乙丙", "丁戊己", "庚辛"]),               # no punctuation: hard cut
    ("One sentence here. Another one.", 20, ["One sentence here.", " Another one."]),
])
def test_sentence_spans(text, max_chars, want):
    spans = sentence_spans(text, max_chars)
    assert [text[s:e] for s, e in spans] == want
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))      # contiguous: nothing lost
