"""Which sentence(s) of a passage answer the question, and how sure we are: support, "not found", labels.

The evidence stage of `Assistant.ask`: `assess` gives each kept passage its support and highlight spans,
`judge` decides found / not found and the confidence labels from the thresholds (the index's own calibration
when it has one, else the global ones in `AskConfig`). Nothing else decides "not found".

Sentence vectors were computed at build time, so choosing evidence costs one small matrix product and a few
token-set intersections per passage, never a model call.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# Term overlap breaks ties between sentences the model finds equally close: with e5, cosines of sentences in
# one passage often differ by less than 0.01, and the sentence that uses the question's words is the one a
# reader expects to see marked.
OVERLAP_WEIGHT = 0.08
SECOND_MARGIN = 0.015    # a second sentence is marked when it scores within this of the best one
MAX_MARKED = 2


def sentence_scores(query_vec: np.ndarray, sentence_vecs: np.ndarray, query_terms: set[str],
                    sentence_terms: list[set[str]]) -> np.ndarray:
    """Cosine to the question plus a bonus for the share of the question's terms the sentence contains."""
    cos = sentence_vecs @ query_vec
    if not query_terms:
        return cos
    overlap = np.array([len(query_terms & t) / len(query_terms) for t in sentence_terms], dtype=np.float32)
    return cos + OVERLAP_WEIGHT * overlap


def pick(scores: np.ndarray, spans: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The best sentence and, when nearly as good, one more; returned in text order."""
    if len(scores) == 0:
        return ()
    order = np.argsort(-scores, kind="stable")
    best = scores[order[0]]
    chosen = [int(i) for i in order[:MAX_MARKED] if scores[i] >= best - SECOND_MARGIN]
    return tuple(sorted((int(spans[i][0]), int(spans[i][1])) for i in chosen))


def confidence(cosine: float, high: float, found: float) -> str:
    """A label a reader understands, from the passage's cosine to the question and the calibrated thresholds."""
    if cosine >= high:
        return "high"
    return "medium" if cosine >= found else "low"


@dataclass(frozen=True, slots=True)
class Evidence:
    row: int                               # chunk row in the index
    support: float                         # best sentence's cosine + coverage bonus
    spans: tuple[tuple[int, int], ...]     # highlight spans in the chunk's text


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Support a question's best passage must reach to be answered, per script, and where the numbers come from."""
    found: float
    found_latin: float
    high_margin: float
    origin: str = "global"                 # "global" (AskConfig) or "self-calibrated (n probes)"

    def found_for(self, latin: bool) -> float:
        return self.found_latin if latin else self.found


@dataclass(frozen=True, slots=True)
class Verdict:
    found: bool
    labels: tuple[str, ...]                # per passage: "high" / "medium" / "low"
    reason: str = ""                       # why not found, in Chinese for the reader: "" when found


def global_thresholds(cfg) -> Thresholds:
    return Thresholds(cfg.found_support, cfg.found_support_latin, cfg.high_margin)


def prefetch(index, rows) -> None:
    """Vectors that live in a server (Milvus) are read for all the passages of an answer in one round trip per
    table instead of two per passage; in-memory arrays have nothing to fetch."""
    starts = index.sentence_starts
    for vectors, ranges in ((index.stored.vectors, [(r, r + 1) for r in rows]),
                            (index.stored.sentence_vectors, [(starts[r], starts[r + 1]) for r in rows])):
        if hasattr(vectors, "prefetch"):
            vectors.prefetch(ranges)


def assess(index, row: int, q, cfg) -> Evidence:
    """Support and highlight spans of chunk `row` for query `q`: how well its best sentence answers, which to mark.

    An English question naming glossary concepts: the best sentence's cosine (minus the script penalty against
    English text) + cfg.coverage_weight_latin x the concepts held (concept_coverage). Otherwise: the mean
    (cfg.passage_weight) of the best sentence's and the whole passage's cosine to the question +
    cfg.coverage_weight x the share of the question's terms the chunk contains.
    """
    a, b = index.sentence_starts[row], index.sentence_starts[row + 1]
    if b == a:
        return Evidence(row, 0.0, ())
    spans = index.stored.sentences[a:b, 1:]
    vecs = index.stored.sentence_vectors[a:b]
    sent_terms = index.sentence_terms(row)
    terms = q.term_set
    scores = sentence_scores(q.vector, vecs, terms, sent_terms)
    cos = vecs @ q.vector
    if q.latin and index.latin[row]:
        cos = cos - cfg.latin_penalty
    held = set().union(*sent_terms)
    close = float(cos.max())
    if q.latin and cfg.concept_support_latin and (q.concepts or q.unmapped):
        coverage = concept_coverage(index, row, q, (held | index.title_terms(row)) if cfg.title_held_latin else held,
                                    cfg)
        return Evidence(row, close + cfg.coverage_weight_latin * coverage, pick(scores, spans))
    coverage = len(terms & held) / len(terms) if terms else 0.0
    if cfg.passage_weight:
        close = _with_passage(index, row, q, close, cfg.passage_weight, cfg)
    return Evidence(row, close + cfg.coverage_weight * coverage, pick(scores, spans))


def _with_passage(index, row: int, q, sentence: float, weight: float, cfg) -> float:
    """The best sentence's cosine mixed with the whole passage's (script penalty alike)."""
    # a slice, not an item: in Milvus the vectors are fetched by row ranges
    passage = float(index.stored.vectors[row:row + 1][0] @ q.vector)
    if q.latin and index.latin[row]:
        passage -= cfg.latin_penalty
    return (1 - weight) * sentence + weight * passage


def concept_coverage(index, row: int, q, held: set[str], cfg) -> float:
    """For an English question: the IDF-weighted share of its glossary concepts that chunk `row` holds.

    An English question shares no words with a Chinese passage, so its term share says nothing; the
    Chinese terms its phrases map to do. Each concept weighs by the IDF of its commonest rendering in this
    corpus (a concept every passage holds says little); a concept whose renderings the corpus never uses,
    and a content word no glossary line covers (weighted cfg.unmapped_weight_latin), can never be held:
    a question about things this corpus does not speak of gets little support wherever it lands.
    """
    from assistant.query import english_words

    n = len(index.stored.chunks)
    # An English passage (an abstract) holds a concept when it uses the English phrase itself.
    english = f" {' '.join(english_words(index.stored.chunks[row].text))} " if index.latin[row] else ""
    total = got = 0.0
    for concept in q.concepts:
        dfs = [index.term_df(z) for z in concept.chinese]
        w = 1.0 if any(d is None for d in dfs) else _idf(max(dfs), n)
        total += w
        if any(tokens <= held for tokens in concept.tokens) or f" {concept.english} " in english:
            got += w
    if q.unmapped and cfg.unmapped_weight_latin > 0:
        w = cfg.unmapped_weight_latin * _idf(0, n)
        for word in q.unmapped:
            total += w
            got += w if f" {word} " in english else 0.0
    return got / total if total > 0 else 0.0


def _idf(df: int, n: int) -> float:
    """BM25's IDF: log(1 + (n - df + 0.5) / (df + 0.5))."""
    return float(np.log1p((n - df + 0.5) / (df + 0.5)))


def missing_document(q, names: tuple[str, ...], titles: tuple[str, ...], passages: list[str]) -> str:
    """Why a document the question names in 《》 cannot answer it here, or "" when each one can.

    `names`: the corpus' titles and the names its text cites (retrieve.document_names); `titles`: its titles
    alone (retrieve.document_titles); `passages`: the texts of the passages found. A name the corpus neither
    holds nor cites is not in it. A name it only cites (「依据《劳动法》……」 in another regulation) is not in
    it either, unless a passage found speaks of it: the dev corpus cites 《劳动法》 without holding it, and a
    question about its working hours was answered from another regulation.
    """
    from assistant.retrieve import holds_document, speaks_of

    for name in q.named:
        if not holds_document(names, name):
            return f"《{name}》不在语料中"
        if not holds_document(titles, name) and not any(speaks_of(text, name) for text in passages):
            return f"《{name}》在语料中只被引用，找到的段落都没有谈到它"
    return ""


# 「2019年修订的《中国共产党问责条例》」「《…条例》（2023年修订）」: the question names an edition by its year.
_YEAR_BEFORE = re.compile(r"((?:19|20)\d\d)\s*年\s*(?:第.次)?(?:版|修订|修正|修改|印发|发布|颁布|通过|制定)?的?\s*《([^《》\n]{2,60})》")
_YEAR_AFTER = re.compile(r"《([^《》\n]{2,60}?)\s*(?:》\s*)?[（(]((?:19|20)\d\d)\s*年[^（）()\n]{0,8}[）)]")
_CN_DIGITS = "〇一二三四五六七八九"


def edition_years(text: str) -> tuple[tuple[str, str], ...]:
    """(year, name) for each document the question names with an edition year."""
    pairs = [(m.group(1), m.group(2)) for m in _YEAR_BEFORE.finditer(text)]
    pairs += [(m.group(2), m.group(1)) for m in _YEAR_AFTER.finditer(text)]
    return tuple(dict.fromkeys((y, "".join(n.split())) for y, n in pairs))


def missing_edition(index, q) -> str:
    """Why the edition a question names is not in the corpus, or "" when it may be.

    A corpus holding the 2016 《问责条例》 must not answer a question about its 2019 revision from the older text.
    An edition's own text gives its year (the header 「2023年12月8日…修订」, the commencement clause, often the file
    name), so a held document of that name whose text and file name never mention the year (or the next one, when
    a revision takes effect) is another edition. Years the text mentions for other reasons only make the rule
    answer more often, never refuse wrongly.
    """
    from assistant.retrieve import articles_named
    from index.normalize import simplified

    for year, name in edition_years(q.match):
        keys = articles_named(index, name)
        if not keys:
            continue                       # not held at all: missing_document's case
        # a revision often takes effect the next year (revised 2023年12月, 「本条例自2024年1月1日起施行」)
        years = (year, str(int(year) + 1))
        marks = [f"{y}年" for y in years] + ["".join(_CN_DIGITS[int(d)] for d in y) + "年" for y in years]
        named_by_file = any(y in k for k in keys for y in years)          # jilv_chufen_tiaoli_2023.md
        texts = [index.titles[k] for k in keys] + [index.stored.chunks[int(r)].text
                                                   for k in keys for r in index.by_article[k]]
        if not named_by_file and not any(m in text for text in map(simplified, texts) for m in marks):
            return f"语料中的《{name}》不是{year}年的版本：它的正文和文件名都没有提到{year}年"
    return ""


# A bare keyword search (「三会一课」, 「厂务公开 职工代表大会 民主管理」): no sentence punctuation, no question word.
_KEYWORDS = re.compile(r"[^？?。，,！!；;：:]{2,40}")
# 几 and 哪 ask only outside the words they start: 几何 (geometric), 几乎 (almost), 茶几, 哪怕 (even if) ask nothing.
_QUESTION_WORD = re.compile(r"什么|怎么|怎样|如何|为何|为什么|哪(?!怕)|吗|呢|多少|(?<!茶)几(?![何乎])|是否|能否|可否|有没有|是不是")
_LITERAL_BLOCKS = ("body", "abstract")    # a keyword in a keyword list or a title says nothing about it


def keyword_parts(q) -> tuple[str, ...]:
    """The parts of a keyword search, or () for a question."""
    text = q.match.strip()
    if q.latin or not _KEYWORDS.fullmatch(text) or _QUESTION_WORD.search(text):
        return ()
    parts = tuple(text.split())
    return parts if len(parts) <= 6 else ()


# 「……自何时起施行？」: asks when a document takes effect. Its answer is the document's commencement clause
# (「本条例自2024年1月1日起施行」「本办法自印发之日起施行」), the closing article of every law, regulation and notice,
# which shares few words with the question and so scores low support.
_WHEN_IN_FORCE = re.compile(r"(何时|什么时候|什么时间|哪一?天|哪一?年|几时|何日|何年)(开始|起)?(施行|生效|实施|执行)"
                            r"|(施行|生效)(的)?(时间|日期)")
_COMMENCEMENT = re.compile(r"自[^。；;，,\n]{2,24}?起(施行|生效|实施|执行)")


def held_by_structure(index, q, found_evidence: list[Evidence]) -> int | None:
    """The row of a passage found that answers by what it is, whatever its support; None when there is none.

    Support measures closeness of meaning; three kinds of question are answered by what a passage *is*: a keyword
    search is answered by a body passage that uses every one of its keywords (seeds/: 「前置研究」, 「指挥棒」 scored
    below the threshold at rank 1); a question asking for a block of a named article (「刘隆的文章列了哪些参考
    文献？」) by that article's block (its DOI line for a DOI); a question asking when a named document takes
    effect by that document's commencement clause.
    """
    from assistant import retrieve
    from index.normalize import simplified

    parts = keyword_parts(q)
    for e in found_evidence if parts else ():
        text = "".join(simplified(index.stored.chunks[e.row].text).split())
        if index.blocks[e.row] in _LITERAL_BLOCKS and all(p in text for p in parts):
            return e.row
    asked = retrieve.asked_blocks(q.match)
    when = not q.latin and bool(q.named) and bool(_WHEN_IN_FORCE.search(q.match))
    focus = retrieve.focused_articles(index, q) if asked or when else ()
    if focus:
        rows = np.concatenate([index.by_article[k] for k in focus])
        for e in found_evidence:
            if e.row not in rows:
                continue
            if asked and (index.blocks[e.row] in asked or
                          ("doi" in asked and index.doi is not None and index.doi[e.row])):
                return e.row
            if when and _COMMENCEMENT.search(simplified(index.stored.chunks[e.row].text)):
                return e.row
    return None


def judge(index, q, found_evidence: list[Evidence], thresholds: Thresholds, cfg) -> Verdict:
    """Found or not, and a label per passage.

    Not found when a document the question names in 《》 is not in the corpus (the answer cannot be there, and a
    passage of another 条例 would be a wrong answer) or holds another edition than the one it names, or when no
    passage's support reaches the threshold and no passage holds the answer by what it is (held_by_structure).
    Every label is "low" when not found.
    """
    n = len(found_evidence)
    if cfg.named_document_check and q.named:
        reason = missing_document(q, index.names, index.title_names,
                                  [index.stored.chunks[e.row].text for e in found_evidence]
                                  ) or missing_edition(index, q)
        if reason:
            return Verdict(False, ("low",) * n, reason)
    t = thresholds.found_for(q.latin)
    labels = tuple(confidence(e.support, t + thresholds.high_margin, t) for e in found_evidence)
    if any(e.support >= t for e in found_evidence):
        return Verdict(True, labels)
    row = held_by_structure(index, q, found_evidence) if cfg.structural_found else None
    if row is None:
        return Verdict(False, ("low",) * n, "没有一段原文与问题足够接近")
    # the passage that answers by what it is reads "medium": found, though not by closeness of meaning
    return Verdict(True, tuple("medium" if e.row == row else lab for e, lab in zip(found_evidence, labels)))
