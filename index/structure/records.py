"""The records the passes share: what a source line is (`LineKind`, `Line`), and what they produce (`Heading`,
`Block`, `Segment`). `Block` and `Segment` cross into `index.chunk`; `Line` lives only while a document is parsed."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from enum import Enum

BLOCK_KINDS = ("front", "abstract", "keywords", "body", "caption", "references", "bio")
# A segment's genre (`Segment.kind`, shown as `Chunk.segment_kind`); each is detected from the text's own shape.
GENRES = ("article", "regulation", "notice", "web", "news", "other")


class LineKind(Enum):
    """What one source line is. The lines pass makes a first guess from the line alone; later passes (title
    blocks, pieces, the genre rules) refine it with what surrounds the line."""
    BLANK = "blank"
    TEXT = "text"              # chunk text
    HEADING = "heading"        # a whole-line heading (`Line.heading`)
    CONT = "cont"              # the tail of a heading wrapped over two lines
    RUNIN = "runin"            # `（一）完善组织体系。工会……`: a heading that also stays in its paragraph
    CLAUSE = "clause"          # `第十条　国家……`: starts a 条 of a regulation (`Line.locator`); text too
    LABEL = "label"            # `摘要：` `关键词：` `DOI：` …: switches the block kind (`Line.label`, `Line.rest`)
    CAPTION = "caption"        # `图1 …` `表2 …`
    CLOSING = "closing"        # `（作者单位：……）`: closes a journal article
    NEWS_MARK = "news_mark"    # `（上接1版）`
    HEADLINE = "headline"      # a news item's headline (the line before its news mark)
    BYLINE = "byline"          # `□ 刘 莹`, `作者：张三`, or a plain name line in front matter
    TITLE = "title"            # a line of a title block
    DATE = "date"              # a lone date line: closes a notice
    META = "meta"              # a page's metadata line (`来源：… 作者：… 发布时间：…`): metadata, not text
    JUNK = "junk"              # navigation, print and previous/next links, markup, front matter: dropped



class L:
    """`LineKind`'s members as plain class attributes, for the passes' inner loops: looking a member up on an
    `Enum` class costs ~0.4 µs in Python 3.11 (measured), ten times a plain attribute, and every line is tested
    many times. Compare with `is`."""
    BLANK, TEXT, HEADING, CONT, RUNIN, CLAUSE = (LineKind.BLANK, LineKind.TEXT, LineKind.HEADING, LineKind.CONT,
                                                 LineKind.RUNIN, LineKind.CLAUSE)
    LABEL, CAPTION, CLOSING, NEWS_MARK, HEADLINE = (LineKind.LABEL, LineKind.CAPTION, LineKind.CLOSING,
                                                    LineKind.NEWS_MARK, LineKind.HEADLINE)
    BYLINE, TITLE, DATE, META, JUNK = LineKind.BYLINE, LineKind.TITLE, LineKind.DATE, LineKind.META, LineKind.JUNK
    TEXTUAL = (LineKind.TEXT, LineKind.CLAUSE)      # chunk text


@dataclass(frozen=True, slots=True)
class Heading:
    text: str          # as displayed: "3.2.1 建立协同推进机制"
    family: str        # numbering style: cn 一、 / cn-paren （一） / dec 1.1 / arabic 1、 / ... / md / bold / kw
    depth: int         # components of a decimal number, the level of an unnumbered markdown heading, 编1 章2 节3
    md_level: int = 0  # markdown level when the heading was written with #, else 0
    references: bool = False


@dataclass(slots=True)
class Line:
    """A source line and what it is; mutable while the passes refine the first guess."""
    no: int                        # 1-based
    raw: str
    text: str                      # cleaned (index.normalize.clean_line)
    kind: LineKind = LineKind.TEXT
    heading: Heading | None = None
    label: str = ""                # LABEL: abstract / keywords / bio / meta / doi
    rest: str = ""                 # LABEL: the text after the label
    locator: str = ""              # CLAUSE: "第十条"


@dataclass(frozen=True, slots=True)
class Block:
    """One paragraph (or title, caption, reference item) with its source lines."""
    kind: str                      # one of BLOCK_KINDS
    headings: tuple[str, ...]
    text: str
    line_nos: tuple[int, ...]      # 1-based source line of each joined piece
    starts: tuple[int, ...]        # offset in `text` where each of those pieces starts
    run: int = 0                   # blocks with the same run have only blank lines between them
    locator: str = ""              # the 条 this paragraph belongs to (regulations): "第十七条"; else ""

    @property
    def line_start(self) -> int:
        return self.line_nos[0]

    @property
    def line_end(self) -> int:
        return self.line_nos[-1]

    def lines_of(self, start: int, end: int) -> tuple[int, int]:
        """Source lines spanned by `text[start:end]`."""
        first = self.line_nos[bisect_right(self.starts, start) - 1]
        last = self.line_nos[bisect_right(self.starts, max(start, end - 1)) - 1]
        return first, last


@dataclass(frozen=True, slots=True)
class Segment:
    index: int                     # order in the file (by where its body starts)
    kind: str                      # the genre, one of GENRES
    title: str
    title_is_fallback: bool
    title_en: str
    authors: tuple[str, ...]
    affiliation: str
    doi: str
    blocks: tuple[Block, ...]
    line_start: int
    line_end: int
    date: str = ""                 # as the text (or the document's metadata) states it: "2016年10月27日"
    publisher: str = ""            # 来源 / the issuing body: "中国纪检监察报", "中共中央办公厅 国务院办公厅"
