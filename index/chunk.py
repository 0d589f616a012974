"""Document -> `Chunk` records (paragraph-level, never crossing an article or section boundary).

`index.structure` finds the segments, headings, 条 and paragraphs (`Block`s); this module only cuts blocks into
chunks: consecutive blocks of one kind under one heading path form a group, a block longer than `max_chars` is
cut at sentence ends, and the pieces of a group are packed into chunks of even size (a short paragraph joins
its neighbours, never a neighbour from another section or article). In a regulation the short 条 of one 章/节
merge, a chunk prefers to start where a 条 starts, and its `locator` names the 条 it holds ("第十七条",
"第十七条至第十九条"), so even the second chunk of a long 条 cites its number.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from itertools import groupby

from index.document import Document
from index.normalize import sentence_spans
from index.structure import Block, Segment, parse_document
from index.structure.regulation import locator_range

# Bump whenever the chunks made from the same text change (rules in normalize/structure/chunk): the index
# manifest records it, so a stale index is rebuilt instead of serving old line ranges.
CHUNKER_VERSION = 4


@dataclass(frozen=True, slots=True)
class ChunkConfig:
    min_chars: int = 80     # a chunk shorter than this merges with a neighbour of the same section when it can
    max_chars: int = 400    # a chunk longer than this is cut at sentence ends (a single longer sentence at clauses)

    def __post_init__(self) -> None:
        if self.min_chars < 1 or self.max_chars < 2 * self.min_chars:
            raise ValueError(f"chunk sizes must satisfy 1 <= min_chars and 2 * min_chars <= max_chars, got "
                             f"min_chars={self.min_chars}, max_chars={self.max_chars}; try the defaults 80 and 400")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str                    # content hash of (source, line_start, text): stable across rebuilds
    source: str                # path relative to the corpus root, '/'-separated
    article: int               # index of the segment inside its file (0-based)
    segment_kind: str          # the genre: article / regulation / notice / web / news / other
    title: str                 # article title (a fallback from the first heading when untitled)
    title_is_fallback: bool    # True when `title` was not printed as the article's title
    title_en: str              # English title when the article has one, else ""
    authors: tuple[str, ...]   # ("曾程", "杜淏天")
    affiliation: str           # "大唐凉山新能源有限公司 四川 成都 610074", or ""
    doi: str                   # "10.12417/3041-0630.26.08.049", or ""
    headings: tuple[str, ...]  # ("3 推动……的具体路径", "3.2 完善融合机制") for the breadcrumb
    block: str                 # body / abstract / keywords / references / bio / caption / front
    text: str                  # cleaned text, as shown to the user
    line_start: int            # 1-based lines of the document (for .txt/.md: of the file), for the citation
    line_end: int
    locator: str = ""          # the 条 (or 条 range) of a regulation chunk: "第十七条", "第十七条至第十九条"; else ""
    page_start: int = 0        # 1-based pages of a paged format (PDF); 0 when the format has no pages
    page_end: int = 0
    format: str = "txt"        # txt / md / pdf / docx / html: the reader the file went through
    journal: str = ""          # 刊名, year and issue of the journal the document states it is from
    year: str = ""
    issue: str = ""
    date: str = ""             # publication date as the document states it
    publisher: str = ""        # 来源: the site or paper that published it

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Chunk":
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        kw["authors"] = tuple(kw["authors"])
        kw["headings"] = tuple(kw["headings"])
        return cls(**kw)


def chunk_id(source: str, line_start: int, text: str) -> str:
    """Content hash of where a chunk comes from and what it says: stable across rebuilds of the same text."""
    return hashlib.sha256(f"{source}\n{line_start}\n{text}".encode("utf-8")).hexdigest()[:20]


def chunk_document(doc: Document | str, source: str, config: ChunkConfig = ChunkConfig()) -> list[Chunk]:
    """Chunks of one document (or of a plain text); `source` is its path relative to the corpus root."""
    if isinstance(doc, str):
        doc = Document.of_text(doc)
    out: list[Chunk] = []
    for seg in parse_document(doc.text, doc.meta, doc.format):
        out.extend(_segment_chunks(seg, source, config, doc))
    return out


def _segment_chunks(seg: Segment, source: str, config: ChunkConfig, doc: Document) -> list[Chunk]:
    meta = doc.meta
    chunks: list[Chunk] = []
    # Consecutive blocks of one kind under one heading path, with no skipped line (label, byline) between them,
    # form a group. A title is its own chunk even next to another title (the English and the Chinese one).
    key = (lambda ib: (ib[1].kind, ib[1].headings, ib[1].run, ib[0] if ib[1].kind == "front" else -1))
    for (kind, headings, _, _), group in groupby(enumerate(seg.blocks), key=key):
        blocks = [b for _, b in group]
        # Inside a 条 (the same locator as the block before, or a sentence cut of one block) a cut costs more.
        units = [b.locator for b in blocks]
        for pieces in pack([_pieces(b, config.max_chars) for b in blocks], config,
                           units if any(units) else None):
            # Pieces of one block are contiguous: take the block's text from the first to the last so inner
            # spaces (between English sentences) survive; different blocks are different paragraphs.
            parts: list[str] = []
            for block_idx, run in groupby(pieces, key=lambda p: p[0]):
                spans = [span for _, span in run]
                parts.append(blocks[block_idx].text[spans[0][0]:spans[-1][1]])
            first_block, (s0, e0) = pieces[0]
            last_block, (s1, e1) = pieces[-1]
            line_start = blocks[first_block].lines_of(s0, e0)[0]
            line_end = blocks[last_block].lines_of(s1, e1)[1]
            body = "\n".join(parts)
            page_start, page_end = doc.pages_of(line_start, line_end)
            locator = locator_range(blocks[first_block].locator, blocks[last_block].locator)
            chunks.append(Chunk(
                id=chunk_id(source, line_start, body), source=source, article=seg.index,
                segment_kind=seg.kind, title=seg.title, title_is_fallback=seg.title_is_fallback,
                title_en=seg.title_en, authors=seg.authors, affiliation=seg.affiliation, doi=seg.doi,
                headings=headings, block=kind, text=body, line_start=line_start, line_end=line_end,
                locator=locator, page_start=page_start, page_end=page_end, format=doc.format,
                journal=meta.journal, year=meta.year, issue=meta.issue, date=meta.date or seg.date,
                publisher=meta.source or seg.publisher))
    return chunks


def _pieces(block: Block, max_chars: int) -> list[tuple[int, int]]:
    """Spans of a block that a chunk may hold whole: the block itself, or its sentences when it is too long."""
    if len(block.text) <= max_chars:
        return [(0, len(block.text))]
    spans = []
    for s, e in sentence_spans(block.text, max_chars):
        while s < e and block.text[s].isspace():   # an English sentence cut leaves the space in front
            s += 1
        if s < e:
            spans.append((s, e))
    return spans


_INSIDE_UNIT = 0.5   # about the cost of a chunk at half or 1.7 times the comfortable size


def pack(blocks: list[list[tuple[int, int]]], config: ChunkConfig,
         units: list[str] | None = None) -> list[list[tuple[int, tuple[int, int]]]]:
    """Group the pieces of consecutive blocks into chunks of even size; returns (block index, span) lists.

    Dynamic programming over the pieces in order: each chunk costs its squared distance from a comfortable size,
    plus steep costs for being shorter than `min_chars` or longer than `max_chars`. That keeps a short paragraph
    with its neighbour rather than alone, and avoids a tiny last chunk after a greedy fill. With `units` (the 条
    of each block), a chunk that starts inside a unit costs `_INSIDE_UNIT` more: chunks start at a 条 where sizes
    allow.
    """
    items = [(b, span) for b, spans in enumerate(blocks) for span in spans]
    n = len(items)
    if n == 0:
        return []
    inside = [False] * n
    if units is not None:
        for k in range(1, n):
            b, prev = items[k][0], items[k - 1][0]
            inside[k] = bool(units[b]) and (b == prev or units[b] == units[prev])
    prefix = [0]
    for _, (s, e) in items:
        prefix.append(prefix[-1] + e - s)
    ideal = max(config.min_chars, round(0.7 * config.max_chars))
    hard_cap = round(1.25 * config.max_chars)

    def cost(i: int, j: int) -> float:          # a chunk of items[i:j]
        length = prefix[j] - prefix[i] + (j - i - 1)
        if j - i > 1 and length > hard_cap:
            return float("inf")
        c = ((length - ideal) / ideal) ** 2 + (_INSIDE_UNIT if inside[i] else 0.0)
        if length < config.min_chars:
            c += 10 * ((config.min_chars - length) / config.min_chars) ** 2
        if length > config.max_chars and j - i > 1:
            c += 20 * ((length - config.max_chars) / config.max_chars) ** 2
        return c

    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            if j - i > 1 and prefix[j] - prefix[i] > hard_cap:
                break
            c = best[i] + cost(i, j)
            if c < best[j]:
                best[j], back[j] = c, i
    cuts, j = [], n
    while j > 0:
        cuts.append((back[j], j))
        j = back[j]
    return [items[i:j] for i, j in reversed(cuts)]
