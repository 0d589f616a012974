import math

import pytest

from eval.metrics import (
    abstention_precision_recall,
    aggregate,
    author_recall,
    canonical,
    chars_before_first_hit,
    first_hit_rank,
    hit_at_k,
    hit_curve,
    is_hit,
    junk_reason,
    mrr_at_k,
    ndcg_at_k,
    normalize_title,
    reading_length,
    title_matches,
)


@pytest.mark.parametrize("raw, want", [
    ("具 象 的 发 展 实 践", "具象的发展实践"),          # spaced CJK from PDF extraction
    ("提升企\n\n业竞争力的关键。", "提升企业竞争力的关键。"),  # hard-wrapped line joined
    ("ＡＢＣ１２３，", "ABC123,"),                        # full-width folded by NFKC
    ("a\u3000b\tc", "abc"),                              # ideographic space and tab
    ("", ""),
])
def test_canonical(raw, want):
    assert canonical(raw) == want


@pytest.mark.parametrize("text, anchors, want", [
    ("将抽象的政治理论转化为\n\n具 象 的 发 展 实 践", ["具象的发展实践"], True),
    ("党建与经营“两张皮” 的问题", ["“两张皮”的问题"], True),     # space in the text only
    ("党建与经营“两张皮”的问题", ["“两张皮” 的问题"], True),      # space in the anchor only
    ("全员，提升", ["全员,提升"], True),                         # a cleaner folded the comma
    ("党建工作", ["党建与业务"], False),
    ("党建工作", [], False),                                     # unanswerable: never a hit
    ("党建工作", ["", "  "], False),                             # empty anchors are no free hit
    ("甲乙丙", ["丁", "乙丙"], True),                              # any anchor
])
def test_is_hit(text, anchors, want):
    assert is_hit(text, anchors) is want


@pytest.mark.parametrize("texts, anchors, want", [
    (["甲", "乙", "丙"], ["乙"], 2),
    (["甲乙", "乙", "丙"], ["乙"], 1),
    (["甲", "乙", "丙"], ["丁"], None),
    ([], ["丁"], None),
    (["甲", "乙"], [], None),
])
def test_first_hit_rank(texts, anchors, want):
    assert first_hit_rank(texts, anchors) == want


@pytest.mark.parametrize("rank, k, hit, mrr, ndcg", [
    (1, 10, 1.0, 1.0, 1.0),
    (2, 10, 1.0, 0.5, 1 / math.log2(3)),
    (3, 10, 1.0, 1 / 3, 0.5),
    (10, 10, 1.0, 0.1, 1 / math.log2(11)),
    (11, 10, 0.0, 0.0, 0.0),
    (5, 1, 0.0, 0.0, 0.0),
    (5, 5, 1.0, 0.2, 1 / math.log2(6)),
    (None, 10, 0.0, 0.0, 0.0),
])
def test_rank_metrics(rank, k, hit, mrr, ndcg):
    assert hit_at_k(rank, k) == hit
    assert mrr_at_k(rank, k) == pytest.approx(mrr)
    assert ndcg_at_k(rank, k) == pytest.approx(ndcg)


@pytest.mark.parametrize("call, message", [
    (lambda: hit_at_k(1, 0), "k must be a positive integer, got 0"),
    (lambda: mrr_at_k(0, 10), "rank is 1-based"),
    (lambda: ndcg_at_k(-1, 10), "rank is 1-based"),
    (lambda: hit_curve([1], max_k=0), "k must be a positive integer"),
    (lambda: chars_before_first_hit(["a"], ["a"], k=0), "k must be a positive integer"),
])
def test_bad_arguments_name_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("texts, anchors, k, want", [
    (["甲乙", "丙丁戊", "目标"], ["目标"], 10, 5),      # read the two passages above the hit
    (["目标", "丙丁戊"], ["目标"], 10, 0),               # hit first: nothing read before it
    (["甲 乙\n", "丙"], ["丁"], 10, 3),                   # miss: the whole list, whitespace not counted
    (["甲乙", "丙丁", "目标"], ["目标"], 2, 4),          # hit below k counts as a miss of the top k
    (["甲乙", "丙丁", "戊"], ["戊"], 3, 4),
])
def test_chars_before_first_hit(texts, anchors, k, want):
    assert chars_before_first_hit(texts, anchors, k) == want


def test_reading_length_ignores_whitespace():
    assert reading_length("甲 乙\n\n丙\u3000") == 3


@pytest.mark.parametrize("found, answerable, precision, recall", [
    # abstained on q3 (unanswerable) and q2 (answerable); q4 unanswerable but answered
    ([True, False, False, True], [True, True, False, False], 0.5, 0.5),
    ([True, True, False, False], [True, True, False, False], 1.0, 1.0),   # perfect
    ([False, False, False, False], [True, True, False, False], 0.5, 1.0),  # abstain on everything
    ([True, True], [True, False], math.nan, 0.0),                          # never abstained
    ([False, True], [True, True], 0.0, math.nan),                          # nothing unanswerable
])
def test_abstention_precision_recall(found, answerable, precision, recall):
    p, r = abstention_precision_recall(found, answerable)
    assert (math.isnan(p) and math.isnan(precision)) or p == pytest.approx(precision)
    assert (math.isnan(r) and math.isnan(recall)) or r == pytest.approx(recall)


def test_abstention_lengths_must_match():
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        abstention_precision_recall([True, False], [True])


def test_hit_curve():
    assert hit_curve([1, 3, None, 2], max_k=4) == [0.25, 0.5, 0.75, 0.75]
    assert all(math.isnan(v) for v in hit_curve([], max_k=3))


def test_aggregate_groups_by_kind_in_kinds_order():
    rows = [
        {"kind": "english", "hit@1": 1.0, "mrr": 1.0},
        {"kind": "direct", "hit@1": 0.0, "mrr": 0.5},
        {"kind": "direct", "hit@1": 1.0, "mrr": 1.0},
        {"kind": "unanswerable", "hit@1": None, "mrr": None},
    ]
    got = aggregate(rows, ["hit@1", "mrr"])
    assert list(got) == ["direct", "english", "unanswerable", "all"]
    assert got["direct"] == {"n": 2.0, "hit@1": 0.5, "mrr": 0.75}
    assert got["english"]["hit@1"] == 1.0
    assert got["unanswerable"]["n"] == 1.0 and math.isnan(got["unanswerable"]["hit@1"])
    # None values are left out of the mean, not counted as zeros
    assert got["all"]["n"] == 4.0 and got["all"]["hit@1"] == pytest.approx(2 / 3)


def test_aggregate_other_group_key():
    rows = [{"system": "b", "x": 1}, {"system": "a", "x": 3}, {"system": "a", "x": 5}]
    got = aggregate(rows, ["x"], group_key="system")
    assert list(got) == ["a", "b", "all"] and got["a"]["x"] == 4.0 and got["all"]["x"] == 3.0


@pytest.mark.parametrize("got, accepted, want", [
    ("《中央八项规定实施细则》", ["中央八项规定实施细则"], True),        # book-title marks
    ("中国共产党章程 ", ["中国共产党章程"], True),                     # whitespace
    ("中国共产党纪律处分条例 2023", ["中国共产党纪律处分条例"], False),  # an extra word is another title
    ("中国共产党纪律处分条例 2023", ["中国共产党纪律处分条例", "中国共产党纪律处分条例 2023"], True),
    ("关于厉行节约反对食品浪费的意见。", ["关于厉行节约反对食品浪费的意见"], True),   # trailing full stop
    ("", ["中国共产党章程"], False),                                   # no title never matches
    ("中国共产党章程", [""], False),
    ("Hello", ["中国共产党章程"], False),                              # front matter is not the title
])
def test_title_matches(got, accepted, want):
    assert title_matches(got, accepted) is want


def test_normalize_title_folds_width_and_quotes():
    assert normalize_title("国务院关于深入实施“人工智能＋”行动的意见") == "国务院关于深入实施人工智能+行动的意见"


@pytest.mark.parametrize("got, gold, want", [
    (["曾程", "杜淏天"], ["曾程", "杜淏天"], (2, 2)),
    (["曾程"], ["曾程", "杜淏天"], (1, 2)),
    (["曾 程", "王涛"], ["曾程"], (1, 1)),        # compared canonically
    ([], [], (0, 0)),                             # no authors to find adds nothing
    (["束龙"], [], (0, 0)),
])
def test_author_recall(got, gold, want):
    assert author_recall(got, gold) == want


@pytest.mark.parametrize("text, reason", [
    # clean text of every genre
    ("第十条　党员受到警告处分一年内、受到严重警告处分一年半内，不得在党内提拔职务。", None),
    ("第一章　总则\n第二章　监察机关及其职责\n第三章　监察范围和管辖\n第四章　监察权限\n第五章　监察程序", None),
    ("（一）警告；\n（二）记过；\n（三）记大过；\n（四）降级；\n（五）撤职；\n（六）开除。", None),
    ("完善适配人工智能发展的数据产权和版权制度，推动公共财政资助项目形成的版权内容依法合规开放。", None),
    ("（作者：董开星 单位：上海市纪委监委）", None),                       # a byline is citation data
    ("国有企业党建工作与生产经营深度融合路径探析\n杨晓炜\n大唐凉山新能源有限公司 四川 成都 610074", None),
    ("根据《中华人民共和国劳动法》，制定本条例。来源于实践的经验应当总结。", None),
    ("受委托,我公司定于 2025年 4月 17日 9时在本公司拍卖厅公开拍卖。", None),
    # markup
    ("<div class=\"content\">正文</div>", "markup: html tag"),
    ("党建&nbsp;工作", "markup: html entity"),
    ("\\[\\[http://hbb.hbuas.edu.cn/zdhbzw.pdf\\|PDF文件下载\\]\\]", "markup: escaped or wiki brackets"),
    ("见附件\\[1-2\\]", "markup: escaped or wiki brackets"),
    ("### 中国共产党章程", "markup: markdown heading"),
    ("---\nlayout: default\ntitle: Hello", "markup: front matter"),
    # site chrome and page metadata
    ("https://www.mee.gov.cn/zcwj/gwywj/202508/t20250827_1126207.shtml 1/3", "metadata: url line"),
    ("正文。\nhttp://www.gov.cn/guoqing/2018-05/03/content_5287353.htm", "metadata: url line"),
    ("我公司定于4月17日在中拍平台（https://paimai.caa123.org.cn/）以电子竞价的方式公开拍卖。", None),  # content
    ("京ICP备12013311号", "metadata: site registration"),
    ("中国法院国际互联网站版权所有，未经协议授权禁止下载使用或建立镜像", "metadata: copyright line"),
    ("Copyright © 2018 All rights reserved.", "metadata: copyright line"),
    ("首页 > 中南海 > 正文", "navigation: breadcrumb"),
    ("[打印] 仅打印内容", "navigation: page tools"),
    ("| 发布时间: 2018-05-17 | 浏览次数: 2168", "metadata: view counter"),
    ("发布时间：2025-08-27 来源：中国政府网 字号：[大] [中] [小]", "metadata: font size switch"),
    ("【发布单位】中共中央\n【发布文号】", "metadata: law-database field"),
    ("2026/5/19 19:11 国务院关于深入实施“人工智能+”行动的意见", "metadata: print timestamp"),
    ("来源：本站原创  作者：医技药剂党支部", "metadata: site field"),
    ("正文的最后一句。\n责任编辑：柴敏懿", "metadata: site field"),
    ("2020-01-03 18:13", "metadata: date-time stamp"),
    ("首页 | 简 | 繁 | EN | 登录", "navigation: menu items"),
    ("首页\n|\n简", "navigation: lone menu word"),
    ("京彩好评：倾听历史回响\n人民论坛网评 | 铭记历史\n在政务公开中筑牢凝心聚力促发展的压舱石\n"
     "党建论坛 | 读懂中国共产党的民字密码\n初心印记丨从一段故事感受理论的力量", "navigation: link list"),
])
def test_junk_reason(text, reason):
    assert junk_reason(text) == reason
