"""Chinese tokenization for BM25: the only module that imports jieba.

One `Tokenizer` serves build time and query time. Its user dictionary (shipped domain terms plus terms the
corpus itself puts in quotation marks) is saved in the index folder, so a query is cut exactly the way the
chunks were, whatever the corpus looks like when the index is opened.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import unicodedata
from pathlib import Path

import jieba

from index.normalize import simplified

TOKENIZER_VERSION = 2   # 2: traditional characters are simplified before cutting (index.normalize.simplified)

jieba.setLogLevel(logging.WARNING)

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# “一岗双责” 「三重一大」 ‘两张皮’: quoted runs of 2-10 CJK characters (digits allowed) are domain terms.
_QUOTED = re.compile(rf"[“「『‘\"]([{_CJK}0-9０-９]{{2,10}})[”」』’\"]")
_HAS_WORD = re.compile(rf"[{_CJK}A-Za-z0-9]")


def _data_lines(name: str) -> list[str]:
    text = (Path(__file__).parent / "data" / name).read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


STOPWORDS = frozenset(_data_lines("stopwords.txt"))


def mine_terms(texts) -> list[str]:
    """Domain terms of a corpus: the shipped list plus every quoted CJK term, sorted and de-duplicated."""
    found = set(_data_lines("terms.txt"))
    for text in texts:
        # Extraction leaves spaces inside CJK runs; they would hide a quoted term.
        compact = re.sub(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])", "", text)
        # simplified, as the tokenizer sees text: a traditional document's quoted term must match its cut form
        found.update(simplified(m.group(1)) for m in _QUOTED.finditer(compact))
    return sorted(found)


@functools.lru_cache(maxsize=1)
def _base_dictionary() -> tuple[dict, int]:
    """jieba's prefix dictionary, built once per process from jieba's own dictionary file.

    Not from jieba's marshal cache in /tmp: nothing we read back from disk is deserialized, and here the cache
    saves no time. Building costs about 2 s; every Tokenizer after the first copies it in milliseconds.
    """
    with _BASE_LOCK:
        tk = jieba.Tokenizer()
        return tk.gen_pfdict(tk.get_dict_file())


_BASE_LOCK = threading.Lock()


def word_frequency(word: str) -> int:
    """How common `word` is in jieba's own dictionary (0: not a word jieba knows)."""
    return _base_dictionary()[0].get(word, 0)


def settings(terms) -> dict:
    """What goes into the manifest: a change in any of these means the BM25 index must be rebuilt."""
    return {
        "version": TOKENIZER_VERSION,
        "jieba": jieba.__version__,
        "mode": "search",
        "userdict_sha256": hashlib.sha256("\n".join(terms).encode()).hexdigest(),
        "stopwords_sha256": hashlib.sha256("\n".join(sorted(STOPWORDS)).encode()).hexdigest(),
    }


class Tokenizer:
    """jieba in search mode over NFKC-folded, lower-cased text, with the user terms and stopwords removed.

    Search mode emits both a long word and the dictionary words inside it (“基层党建” -> 基层, 党建, 基层党建),
    so a question that uses the short form still meets a passage that uses the long one.
    """

    def __init__(self, terms: list[str]):
        self.terms = tuple(terms)
        self._jieba = jieba.Tokenizer()
        self._lock = threading.Lock()
        # Loading jieba's dictionary costs about 2 s; it runs in the background so that opening an index (and
        # loading the model meanwhile) is not held up. The first cut waits for it.
        self._ready = threading.Thread(target=self._load, name="jieba-dictionary", daemon=True)
        self._ready.start()

    def _load(self) -> None:
        tk = self._jieba
        freq, tk.total = _base_dictionary()
        tk.FREQ = dict(freq)    # add_word below writes into it; the shared base stays clean
        tk.initialized = True
        for term in self.terms:
            # A high frequency makes jieba keep the term whole rather than split it.
            tk.add_word(term, freq=100_000)

    def settings(self) -> dict:
        return settings(self.terms)

    def __call__(self, text: str) -> list[str]:
        text = simplified(unicodedata.normalize("NFKC", text)).lower()
        self._ready.join()
        # jieba's add_word mutates shared state lazily; cutting from many threads at once is not documented safe.
        with self._lock:
            words = list(self._jieba.cut_for_search(text))
        return [w for w in (w.strip() for w in words) if w and _HAS_WORD.search(w) and w not in STOPWORDS]
