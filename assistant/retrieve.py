"""Ranking over a loaded index: dense, sentence-level, BM25, their fusion, and the rules that reorder it.

`LoadedIndex` is one index in memory with what querying derives from it (public: benchmarks and tuning use it).
`rank(index, query, cfg)` is the whole ranking stage and `collapse(...)` the near-duplicate stage of
`Assistant.ask`; the functions below them are numpy in, numpy out, no records.

Scores of different retrievers are never added: cosine similarities and BM25 scores live on unrelated scales,
so only ranks are fused (weighted reciprocal rank fusion).
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from assistant.errors import UnknownSourceError
from assistant.query import AskConfig, Query, is_latin
from index import dense, store
from index.tokenize import Tokenizer

MEMO_MAX = 4096   # chunks whose ask-time work is remembered; far more than the candidates of many asks

Trace = Callable[[str, float], None]


def _remember(memo: dict, key, value) -> None:
    if len(memo) >= MEMO_MAX:
        memo.clear()     # start over rather than track recency: refilling costs ~0.2 ms a chunk
    memo[key] = value


@dataclass(frozen=True)
class LoadedIndex:
    """One loaded index and what is derived from it; replaced as a whole, never mutated."""
    stored: store.StoredIndex
    tokenizer: Tokenizer
    sentence_starts: np.ndarray                      # first sentence row of each chunk (len n + 1)
    sentence_index: object                           # faiss index over the sentence vectors
    by_source: dict[str, np.ndarray]
    by_article: dict[str, np.ndarray]
    blocks: np.ndarray                               # block kind of each chunk (str array)
    latin: np.ndarray                                # bool: the chunk is mostly Latin script
    names: tuple[str, ...]                           # titles and 《》 names of the corpus (document_names)
    thresholds: object = None                        # evidence.Thresholds this index calibrated for itself
    title_names: tuple[str, ...] = ()                # titles alone, in core form (document_titles)
    authors: dict = field(default_factory=dict)      # author name -> article keys ("file#n") they wrote
    titles: dict = field(default_factory=dict)       # article key -> its title (simplified, whitespace-free)
    doi: np.ndarray | None = None                    # bool: the chunk's text holds "DOI" (a question asking for it)
    # Memos of per-chunk work done at ask time, for the chunks asks actually return. Bounded: at a million
    # chunks, memos of every chunk would outgrow the index itself (bigram sets ~12 KB a chunk).
    terms_cache: dict = field(default_factory=dict)  # row -> term sets of its sentences
    bigrams_cache: dict = field(default_factory=dict)  # row -> character bigrams
    df_cache: dict = field(default_factory=dict)       # term -> chunks holding it (English concept weights)
    title_cache: dict = field(default_factory=dict)    # title -> its terms
    romanized_cache: dict = field(default_factory=dict)  # one entry: the authors' pinyin forms (romanized_authors)

    def bigrams(self, row: int) -> frozenset[str]:
        """Character bigrams of chunk `row`, for the near-duplicate test; computed when first compared."""
        grams = self.bigrams_cache.get(row)
        if grams is None:
            grams = char_bigrams(self.stored.chunks[row].text)
            _remember(self.bigrams_cache, row, grams)
        return grams

    def sentence_terms(self, row: int) -> list[set[str]]:
        """The jieba terms of each sentence of chunk `row`; cut once, then reused (jieba is most of a query's cost)."""
        terms = self.terms_cache.get(row)
        if terms is None:
            text = self.stored.chunks[row].text
            a, b = self.sentence_starts[row], self.sentence_starts[row + 1]
            terms = [set(self.tokenizer(text[s:e])) for s, e in self.stored.sentences[a:b, 1:]]
            _remember(self.terms_cache, row, terms)   # a race only computes the same value twice
        return terms

    def title_terms(self, row: int) -> set[str]:
        """The jieba terms of the title of chunk `row`'s document."""
        title = self.stored.chunks[row].title
        terms = self.title_cache.get(title)
        if terms is None:
            terms = set(self.tokenizer(title))
            _remember(self.title_cache, title, terms)
        return terms

    def term_df(self, term: str) -> int | None:
        """How many chunks hold every jieba token of `term` (at most the rarest token's count; 0: absent from
        the corpus); None when the BM25 engine does not expose its postings (then all terms weigh alike)."""
        if term in self.df_cache:
            return self.df_cache[term]
        bm25 = self.stored.bm25
        indptr = getattr(bm25, "scores", {}).get("indptr") if isinstance(getattr(bm25, "scores", None), dict) else None
        vocab = getattr(bm25, "vocab_dict", None)
        df = None
        if indptr is not None and vocab is not None:
            tokens = list(self.tokenizer(term)) or [term]
            ids = [vocab.get(t) for t in tokens]
            df = 0 if any(i is None for i in ids) else int(min(indptr[i + 1] - indptr[i] for i in ids))
        _remember(self.df_cache, term, df)
        return df

    def allowed(self, sources=None, articles=None) -> np.ndarray | None:
        """Chunk rows of the given files and/or article keys ("file#n"); None when neither is given."""
        if not sources and not articles:
            return None
        parts = []
        for names, table, label in ((sources, self.by_source, "source"), (articles, self.by_article, "article")):
            if isinstance(names, str):
                names = [names]
            for name in names or ():
                if not isinstance(name, str) or name not in table:
                    known = ", ".join(sorted(table)[:12])
                    raise UnknownSourceError(f"unknown {label} {name!r}; the index has: {known}")
                parts.append(table[name])
        return np.unique(np.concatenate(parts))

    @classmethod
    def of(cls, stored: store.StoredIndex) -> "LoadedIndex":
        from index.normalize import simplified

        chunks = stored.chunks
        counts = np.bincount(stored.sentences[:, 0], minlength=len(chunks)) if len(stored.sentences) else \
            np.zeros(len(chunks), np.int64)
        starts = np.concatenate([[0], np.cumsum(counts)])
        by_source: dict[str, list[int]] = {}
        by_article: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            by_source.setdefault(c.source, []).append(i)
            by_article.setdefault(f"{c.source}#{c.article}", []).append(i)
        # A backend that searches sentences itself (Milvus) brings its own; else exact FAISS over the vectors.
        sentence_index = stored.sentence_search or dense.flat_index(stored.sentence_vectors)
        authors: dict[str, set[str]] = {}
        titles: dict[str, str] = {}
        for key, rows in by_article.items():
            c = chunks[rows[0]]
            for name in c.authors:
                if len(name) >= 2:
                    authors.setdefault(simplified(name), set()).add(key)
            if c.title and not c.title_is_fallback:
                titles[key] = _compact(simplified(c.title))
        return cls(stored, Tokenizer(list(stored.terms)), starts, sentence_index,
                   {k: np.asarray(v) for k, v in by_source.items()},
                   {k: np.asarray(v) for k, v in by_article.items()},
                   np.asarray([c.block for c in chunks]), np.asarray([is_latin(c.text) for c in chunks]),
                   document_names(chunks), title_names=document_titles(chunks),
                   authors={k: tuple(sorted(v)) for k, v in authors.items()},
                   titles=titles, doi=np.asarray(["doi" in c.text.lower() for c in chunks], dtype=bool))

    def holds_document(self, name: str) -> bool:
        """Whether a document called `name` (as a question writes it in 《》) is in the corpus: see `holds_document`."""
        return holds_document(self.names, name)


def document_names(chunks) -> tuple[str, ...]:
    """The documents a corpus holds or cites by name: every title, and every 《》 name in its text (simplified,
    in the core form `holds_document` compares)."""
    from index.normalize import simplified

    names: set[str] = set()
    for c in chunks:
        if c.title:
            names.add(_core_name(simplified(c.title)))
        names.update(_core_name(simplified(n)) for n in _NAME_IN_TEXT.findall(c.text))
    return tuple(sorted(n for n in names if n))


def document_titles(chunks) -> tuple[str, ...]:
    """The titles of the corpus' own documents (not the names its text cites), in the core form of `holds_document`."""
    from index.normalize import simplified

    return tuple(sorted({n for n in (_core_name(simplified(c.title)) for c in chunks if c.title) if n}))


def speaks_of(text: str, name: str) -> bool:
    """Whether a passage names the document `name` (in its core form: 《劳动法》 for 《中华人民共和国劳动法》)."""
    from index.normalize import simplified

    want = _core_name(simplified(name))
    return len(want) < 2 or want in _compact(simplified(text))


def holds_document(names: tuple[str, ...], name: str) -> bool:
    """Whether `name` is one of `names` (from `document_names`), or contained in one, or contains one, once edition notes
    (「（2023年修订）」「（试行）」) and the prefixes 「中华人民共和国」「中国共产党」 are set aside.

    《监察法》 is the corpus' 《中华人民共和国监察法》; 《中央企业合规管理办法》 is no 《党政机关办公用房管理办法》. A name
    cited in the corpus' text counts too: the corpus then speaks of it (and a name too short to tell documents
    apart never refuses a question).
    """
    from index.normalize import simplified

    want = _core_name(simplified(name))
    if len(want) < 2:
        return True
    return any(want in core or (len(core) >= 4 and core in want) for core in names)


_NAME_IN_TEXT = re.compile(r"《([^《》\n]{2,60})》")
_EDITION = re.compile(r"[（(][^（）()]{0,12}[）)]")


def _compact(text: str) -> str:
    return "".join(text.split()).strip("#").strip()


def _core_name(name: str) -> str:
    core = _EDITION.sub("", _compact(name))
    return core.removeprefix("中华人民共和国").removeprefix("中国共产党") or core


# ---------------------------------------------------------------- the ranking stage

def rank(index: LoadedIndex, q: Query, cfg: AskConfig, trace: Trace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every chunk worth a look for `q`, best first: (fused scores, chunk rows).

    Steps, each timed through `trace` when given: dense (passage vectors), sentence (best sentence per
    chunk), bm25, fusion (weighted RRF), then two reorderings: demoted blocks (references, captions, bios)
    go below body text, and each article's abstract/keywords/front matter keeps only its best chunk.
    """
    clock = Clock(trace)
    rankings, weights = [], []
    # Milvus fuses dense + BM25 by RRF in the server (index.milvus_store); English questions keep the local
    # fusion, since their script penalty reorders the dense ranking before it is fused.
    engine = index.stored.dense
    server = q.mode == "hybrid" and not q.latin and getattr(engine, "fuses", lambda c: False)(cfg)
    if q.mode in ("hybrid", "dense") and not server:
        rankings.append(dense_step(index, q, cfg))
        weights.append(cfg.dense_weight_latin if q.latin else cfg.dense_weight)
        clock.lap("rank: dense")
        rankings.append(sentence_step(index, q, cfg))
        weights.append(cfg.sentence_weight_latin if q.latin else cfg.sentence_weight)
        clock.lap("rank: sentences")
    if q.mode in ("hybrid", "bm25") and not server:
        _, ids = sparse_ranking(bm25_scores(index, list(q.terms)), cfg.candidates, q.allowed)
        rankings.append(ids)
        weights.append(cfg.bm25_weight_latin if q.latin else cfg.bm25_weight)
        clock.lap("rank: bm25")
    if server:
        scores, ids = engine.hybrid(q, cfg, sentence_step(index, q, cfg))
        clock.lap("rank: milvus hybrid")
    else:
        scores, ids = rrf(rankings, weights, cfg.rrf_k)
    asked = asked_blocks(q.match) if cfg.asked_blocks else ()
    focus = focused_articles(index, q) if cfg.article_focus else ()
    if asked or focus:
        scores, ids = pointed(index, q, cfg, scores, ids, asked, focus)
        clock.lap("rank: asked block / named article")
    include = set(q.include) | {b for b in asked if b in BLOCK_KINDS}
    scores, ids = demote_blocks(index, scores, ids, [b for b in cfg.demoted_blocks if b not in include])
    keep = one_per_front_block(index, ids)
    clock.lap("rank: fusion")
    return scores[keep], ids[keep]


# ---------------------------------------------------------------- what the question points at

# A question that asks for a block by the name every Chinese journal gives it (参考文献, 关键词, 摘要, DOI, the
# author's 简介) wants that block, which ranking otherwise keeps below body text (references, bios) or keeps one
# chunk of (front matter): seeds/ direct questions such as 「刘隆的文章列了哪些参考文献？」 missed their top 10.
# These are the block names of the genre, not phrases of one question set.
# An English question asks for them by their English names; "abstract" only as a noun of the paper (「the
# abstract」, 「abstract of」), since "abstract theory" asks for no block.
ASKED_BLOCKS = (
    # "use as references" is 参照 (the cases a paper draws on), not its reference list
    (re.compile(r"参考文献|引用|引文|援引|发表在|发表于|刊登在|刊载于|(?<!as )(?<!as a )\breferences?\b|\bbibliograph"
                r"|\bcit(?:e|es|ed|ing)\b|\b(?:published|appeared) in\b", re.I), "references"),
    (re.compile(r"关键词|关键字|\bkey ?words?\b", re.I), "keywords"),
    (re.compile(r"摘要|\babstract of\b|(?:\b(?:the|its|english|chinese)|'s) abstract\b"
                r"(?!\s+(?:theor|concept|idea|principle|notion|politic|terms?\b|words?\b|language|thinking|ideolog))",
                re.I), "abstract"),
    (re.compile(r"作者简介|个人简介|教育背景|学历|研究方向|籍贯|职称|\bbiograph|\b(?:author'?s?|personal) (?:bio|profile)\b"
                r"|\b(?:educational|professional|academic) background\b|\bresearch (?:interests?|directions?|fields?)\b"
                r"|\b(?:professional|academic) title\b|\bnative place\b", re.I), "bio"),
    # the author's unit (作者单位) is printed under the byline, in the front matter
    (re.compile(r"作者单位|工作单位|就职于|供职于|\baffiliat|\bemployer\b|\bworks? (?:for|at)\b", re.I), "front"),
    # the DOI line: a front-matter chunk holding "DOI" (not the "doi" of "doing")
    (re.compile(r"(?<![a-z])doi(?![a-z])", re.I), "doi"),
)
BLOCK_KINDS = frozenset(("body", "abstract", "keywords", "front", "references", "caption", "bio"))
FOCUS_SHARE = 0.8     # a title word names its article when this share of the chunks holding it are that article's


def asked_blocks(text: str) -> tuple[str, ...]:
    """The block kinds a question asks for by name: 「北起院这篇文章的关键词有哪些？」 -> ("keywords",)."""
    return tuple(kind for pattern, kind in ASKED_BLOCKS if pattern.search(text))


def focused_articles(index: "LoadedIndex", q: Query) -> tuple[str, ...]:
    """The articles ("file#n") a question names: by an author, by its 《title》, or by a word of its title that
    hardly occurs outside it (「北起院」 in 「……——以北起院为例」). A word every title shares names none."""
    keys = {k for name, ks in index.authors.items() if name in q.match for k in ks}
    if q.latin:
        # an English question names an author in pinyin (「Liu Long」, 「Cheng Zeng」); titles and title words
        # are Chinese, so that is all it can name
        forms = romanized_authors(index)
        for form in latin_name_spans(q.text):
            keys.update(forms.get(form, ()))
        return tuple(sorted(keys))
    for name in q.named:
        # 《条例》 (short for the regulation being discussed) matches every 条例 and so names none
        named = articles_named(index, name)
        if len(named) == 1:
            keys.update(named)
    # A title word alone names its article only when the question speaks of an article (「北起院这篇文章…」):
    # otherwise 「工会」 would send every union question to the one article with 工会 in its title.
    for term in q.terms if _SPEAKS_OF_ARTICLE.search(q.match) else ():
        if len(term) < 2 or not _CJK.search(term):
            continue
        in_titles = [k for k, title in index.titles.items() if term in title]
        if not in_titles or len(in_titles) > 1:
            continue
        rows = np.flatnonzero(bm25_scores(index, [term]) > 0)
        if len(rows) and np.isin(rows, index.by_article[in_titles[0]]).mean() >= FOCUS_SHARE:
            keys.add(in_titles[0])
    return tuple(sorted(keys))


def articles_named(index: "LoadedIndex", name: str) -> list[str]:
    """The articles ("file#n") whose title is the document `name` (as a question writes it in 《》)."""
    return [k for k, title in index.titles.items() if holds_document((_core_name(title),), name)]


# ---------------------------------------------------------------- authors named in English

# Two-character surnames: the rest of the name is the given name (欧阳修 -> Ouyang Xiu).
_COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
                      "夏侯", "令狐", "端木", "西门", "南宫", "独孤", "申屠", "万俟")
_MAX_FORMS = 32   # readings of one name (polyphones multiply them); a longer name is no personal name
_CJK_NAME = re.compile(r"[\u3400-\u9fff]{2,4}")   # a personal name in Chinese characters


def romanized_authors(index: "LoadedIndex") -> dict[str, tuple[str, ...]]:
    """Each author's name as English text writes it -> the article keys of that author: pinyin without tones,
    syllables run together, surname first or last (刘隆 -> "liulong", "longliu"), every reading of a polyphone
    (曾程 -> "zengcheng", "chengzeng", "cengcheng", ...), ü as u, yu or v. Computed at the first English
    question an index is asked (pypinyin is imported only then) and kept with the index."""
    memo = index.romanized_cache.get("forms")
    if memo is not None:
        return memo
    import itertools

    from pypinyin import Style, pinyin

    forms: dict[str, set[str]] = {}
    for name, keys in index.authors.items():
        if not _CJK_NAME.fullmatch(name):
            continue
        readings = [[v for r in options for v in _u_forms(r)]
                    for options in pinyin(name, style=Style.NORMAL, heteronym=True)]
        split = 2 if name[:2] in _COMPOUND_SURNAMES and len(name) > 2 else 1
        for n, syllables in enumerate(itertools.product(*readings)):
            if n >= _MAX_FORMS:
                break
            family, given = "".join(syllables[:split]), "".join(syllables[split:])
            for form in (family + given, given + family):
                forms.setdefault(form, set()).update(keys)
    memo = {k: tuple(sorted(v)) for k, v in forms.items()}
    index.romanized_cache["forms"] = memo
    return memo


def _u_forms(syllable: str) -> tuple[str, ...]:
    """pypinyin writes ü as v (lv); English text writes Lu, Lyu or Lü (folded to lu)."""
    return (syllable, syllable.replace("v", "u"), syllable.replace("v", "yu")) if "v" in syllable else (syllable,)


_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:-[A-Za-z\u00c0-\u024f]+)*")


def latin_name_spans(text: str) -> list[str]:
    """The runs of two or three capitalised words of an English question, folded as romanized_authors keys them:
    「Which company is Liu Long affiliated with?」 -> [..., "liulong", ...]. Capitals only: "how long" is no name."""
    import unicodedata

    text = re.sub(r"['’]s\b", " ", text)
    words = _LATIN_WORD.findall(text)
    out = []
    for i in range(len(words)):
        for n in (2, 3):
            run = words[i:i + n]
            if len(run) < n or not all(w[0].isupper() for w in run):
                continue
            folded = unicodedata.normalize("NFKD", "".join(run).replace("-", "").lower())
            out.append("".join(ch for ch in folded if not unicodedata.combining(ch)))
    return out


_CJK = re.compile(r"[\u3400-\u9fff]")
_SPEAKS_OF_ARTICLE = re.compile(r"文章|这篇|该文|此文|一文|论文|本文")


def pointed(index: "LoadedIndex", q: Query, cfg: AskConfig, scores: np.ndarray, ids: np.ndarray,
            asked: tuple[str, ...], focus: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The fused ranking with one more ranked list per pointer, fused again by RRF (ranks only, as everywhere):
    the chunks of the named articles, and the chunks of the asked block kinds (of the named articles when there
    are any), each list in fused order, then the ones fusion did not reach."""
    chunks = index.stored.chunks
    focus_rows = np.concatenate([index.by_article[k] for k in focus]) if focus else None
    pool = focus_rows if focus_rows is not None else np.arange(len(chunks))
    if q.allowed is not None:
        pool = np.intersect1d(pool, q.allowed)

    lists, weights = [ids], [1.0]
    if focus_rows is not None:
        lists.append(_in_fused_order(ids, pool, cfg.candidates))
        weights.append(cfg.focus_weight)
    if asked:
        # array masks, not a loop over every chunk: without a named article the pool is the whole corpus
        mask = np.isin(index.blocks[pool], asked)
        if "doi" in asked and index.doi is not None:
            mask |= index.doi[pool]
        target = pool[mask].astype(np.int64)
        if len(target):
            lists.append(_in_fused_order(ids, target, cfg.candidates))
            weights.append(cfg.asked_weight)
    return rrf(lists, weights, cfg.rrf_k)


def _in_fused_order(ids: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """`rows` ordered as in the fused `ids`, those fusion did not reach after them (in reading order), at most k."""
    present = ids[np.isin(ids, rows)]
    rest = np.setdiff1d(rows, present)
    return np.concatenate([present, rest])[:k].astype(np.int64)


def dense_step(index: LoadedIndex, q: Query, cfg: AskConfig) -> np.ndarray:
    """Chunks by their passage vector's cosine to the question, with the script penalty for English."""
    dist, ids = dense_ranking(index.stored.dense, q.vector, cfg.candidates, q.allowed)
    if q.latin:
        dist = dist - cfg.latin_penalty * index.latin[ids]
        ids = ids[np.lexsort((ids, -dist))]
    return ids


def sentence_step(index: LoadedIndex, q: Query, cfg: AskConfig) -> np.ndarray:
    """Chunks ranked by their best sentence's cosine to the question (ids, best first).

    A question usually matches one sentence of a passage; the whole passage's vector dilutes that match,
    most of all across languages (eval: MRR@10 of English questions 0.20 by passage vectors, 0.40 by
    best sentence).
    """
    rows = index.stored.sentences[:, 0]
    allowed = q.allowed
    if allowed is not None:
        starts = index.sentence_starts
        allowed = np.concatenate([np.arange(starts[r], starts[r + 1]) for r in allowed] or [np.zeros(0, int)])
    dist, sids = dense_ranking(index.sentence_index, q.vector, cfg.candidates * 4, allowed)
    if q.latin:
        dist = dist - cfg.latin_penalty * index.latin[rows[sids]]
    return group_ranking(dist, rows[sids], cfg.candidates)[1]


def bm25_scores(index: LoadedIndex, terms: list[str]) -> np.ndarray:
    bm25 = index.stored.bm25
    ids = bm25.get_tokens_ids(terms)
    if not ids:
        return np.zeros(len(index.stored.chunks), dtype=np.float32)
    return np.asarray(bm25.get_scores_from_ids(ids), dtype=np.float32)


def demote_blocks(index: LoadedIndex, scores: np.ndarray, ids: np.ndarray,
                  demoted: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Body text first, fused order within each group: references, captions and bios answer little."""
    if not len(ids) or not demoted:
        return scores, ids
    order = np.lexsort((-scores, np.isin(index.blocks[ids], demoted)))
    return scores[order], ids[order]


def one_per_front_block(index: LoadedIndex, ids: np.ndarray) -> np.ndarray:
    """Positions in `ids` to keep: only the best chunk of each article's abstract, keywords, front matter,
    references or bio.

    Those blocks summarise or list; their chunks are near-interchangeable answers, and without this an English
    question fills every slot with pieces of the one English abstract.
    """
    seen, keep = set(), []
    for pos, i in enumerate(ids.tolist()):
        c = index.stored.chunks[i]
        if c.block != "body":
            key = (c.source, c.article, c.block)
            if key in seen:
                continue
            seen.add(key)
        keep.append(pos)
    return np.asarray(keep, dtype=np.int64)


def collapse(index: LoadedIndex, ids: np.ndarray, top_k: int, cfg: AskConfig) -> np.ndarray:
    """The collapse stage: the first `top_k` rows of `ids` that are not near-duplicates of an earlier one."""
    head = ids[: top_k * 3]
    return collapse_duplicates(head, (index.bigrams(i) for i in head.tolist()), cfg.duplicate_jaccard, limit=top_k)


class Clock:
    """Calls `trace(stage, seconds since the last lap)`; does nothing without a trace."""

    def __init__(self, trace: Trace | None):
        self.trace = trace
        self.t = time.perf_counter() if trace else 0.0

    def lap(self, stage: str) -> None:
        if self.trace is not None:
            t = time.perf_counter()
            self.trace(stage, t - self.t)
            self.t = t

    def restart(self) -> None:
        """Start the next lap now (after a nested stage that reported its own laps)."""
        if self.trace is not None:
            self.t = time.perf_counter()


def dense_ranking(index, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the `k` nearest chunks by inner product, best first, restricted to `allowed` ids."""
    import faiss

    if hasattr(index, "ranking"):    # a search engine behind the storage interface (index.milvus_store)
        return index.ranking(query, k, allowed)

    k = min(k, index.ntotal if allowed is None else len(allowed))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    params = None
    if allowed is not None:
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        params = (faiss.SearchParametersIVF(sel=sel, nprobe=filtered_nprobe(index.nprobe, index.nlist, len(allowed),
                                                                            index.ntotal))
                  if isinstance(index, faiss.IndexIVF) else faiss.SearchParameters(sel=sel))
    D, I = index.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), k, params=params)
    keep = I[0] >= 0   # FAISS pads with -1 when fewer than k pass the selector
    return D[0][keep], I[0][keep]


def filtered_nprobe(nprobe: int, nlist: int, allowed: int, total: int) -> int:
    """IVF lists to scan when only `allowed` of `total` vectors may be returned.

    The tuned nprobe finds the top-k among all vectors; a filter leaves each list with fewer candidates, so scan
    as many more lists as the filter removes: about as many allowed vectors are compared as an unfiltered search
    compares. A small filter (a few documents) scans every list, which is exact and still cheap: the selector
    rejects the other ids before any distance is computed. (SearchParametersIVF's own default is nprobe 1.)
    """
    return min(nlist, -(-nprobe * total // max(allowed, 1)))     # ceiling division


def group_ranking(scores: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rank groups (chunks) by their best member (sentence): (best scores, group ids), best first, ties by id."""
    order = np.lexsort((groups, -scores))
    _, first = np.unique(groups[order], return_index=True)
    best = order[np.sort(first)][:k]
    return scores[best], groups[best]


def sparse_ranking(scores: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the best `k` documents with a positive BM25 score, best first, ties by id."""
    if allowed is not None:
        masked = np.zeros_like(scores)
        masked[allowed] = scores[allowed]
        scores = masked
    ids = np.flatnonzero(scores > 0)
    order = np.lexsort((ids, -scores[ids]))[:k]
    return scores[ids[order]], ids[order]


def rrf(rankings: list[np.ndarray], weights: list[float], k: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Weighted reciprocal rank fusion of id lists (each best first): (scores, ids), best first, ties by id."""
    fused: dict[int, float] = {}
    for ids, w in zip(rankings, weights):
        for rank, i in enumerate(ids.tolist(), start=1):
            fused[i] = fused.get(i, 0.0) + w / (k + rank)
    if not fused:
        return np.zeros(0, np.float64), np.zeros(0, np.int64)
    ids = np.fromiter(fused.keys(), dtype=np.int64, count=len(fused))
    scores = np.fromiter(fused.values(), dtype=np.float64, count=len(fused))
    order = np.lexsort((ids, -scores))
    return scores[order], ids[order]


def char_bigrams(text: str) -> frozenset[str]:
    compact = "".join(text.split())
    return frozenset(compact[i:i + 2] for i in range(len(compact) - 1))


def collapse_duplicates(ids: np.ndarray, bigrams: Iterable[frozenset[str]], threshold: float,
                        limit: int | None = None) -> np.ndarray:
    """Keep the first of any group of near-duplicates (Jaccard of character bigrams >= threshold), in order.

    `bigrams` runs parallel to `ids` and is read only as far as needed: with `limit`, the scan stops once
    that many are kept, so a lazy iterable computes the bigrams of a few passages instead of all.
    """
    kept: list[int] = []
    kept_grams: list[frozenset[str]] = []
    if limit is not None and limit < 1:
        return np.zeros(0, dtype=np.int64)
    for i, grams in zip(ids.tolist(), bigrams):
        # |a | b| = |a| + |b| - |a & b|: no union set built for every comparison
        if any((inter := len(grams & g)) / max(1, len(grams) + len(g) - inter) >= threshold for g in kept_grams):
            continue
        kept.append(i)
        kept_grams.append(grams)
        if len(kept) == limit:
            break
    return np.asarray(kept, dtype=np.int64)
