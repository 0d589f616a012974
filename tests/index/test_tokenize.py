import pytest

from index.tokenize import STOPWORDS, Tokenizer, mine_terms, settings


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(mine_terms(["党建与业务“两张皮”", "落实“三重一大”决策制度和“第一议题”制度"]))


@pytest.mark.parametrize("text, token", [
    ("什么是“一岗双责”？", "一岗双责"),        # shipped domain term
    ("如何解决两张皮问题", "两张皮"),          # mined from quotes, found unquoted in a question
    ("三重一大事项", "三重一大"),
    ("第一议题制度", "第一议题"),
    ("Party Building", "party"),               # English lower-cased
    ("ＡＢＣ公司", "abc"),                     # full-width folded
])
def test_domain_terms_stay_whole(tok, text, token):
    assert token in tok(text)


def test_stopwords_and_punctuation_dropped(tok):
    out = tok("如何把党组织的前置研究程序融入公司治理？")
    assert "如何" not in out and "的" not in out and "？" not in out
    assert {"党组织", "前置研究", "公司治理"} <= set(out)


def test_search_mode_emits_parts_of_long_words(tok):
    assert {"基层", "党建"} <= set(tok("基层党建"))


def test_mining_reads_quoted_terms_through_extraction_spaces():
    assert "一融两学三推动" in mine_terms(["实施 “一 融 两 学 三 推 动” 工程"])
    assert "太长的一个引号里的句子不是术语吧" not in mine_terms(["“太长的一个引号里的句子不是术语吧”"])


def test_settings_change_with_the_user_dictionary():
    assert settings(["甲乙"]) != settings(["甲乙", "丙丁"])
    assert settings(["甲乙"]) == settings(["甲乙"])
    assert "的" in STOPWORDS


def test_same_tokens_at_build_and_query_time():
    terms = mine_terms(["“揭榜挂帅”机制"])
    assert Tokenizer(terms)("推行揭榜挂帅") == Tokenizer(list(terms))("推行揭榜挂帅")
