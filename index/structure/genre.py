"""What a genre is to the parser: a detector and a way of re-reading lines. Each genre lives in its own small
module (`article`, `regulation`, `notice`, `web`, `news`); `genres.DETECTION_ORDER` asks them in turn.

The lines pass classifies a line by its own shape only (`一、总则` looks like a heading everywhere); a genre decides
what that shape means in its documents: in a regulation `（一）……` is an item of a 条, never a heading; in a
notice `二、展示时间：……` is content. To add a genre: subclass `Genre` in a new module, override `detect` and
`heading` (or `reread`), add it to `genres.DETECTION_ORDER`, and give it a table-driven test file.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from index.structure.records import Heading, L, Line, LineKind

if TYPE_CHECKING:
    from index.structure.web import PageMeta


@dataclass(frozen=True, slots=True)
class SegmentView:
    """What a detector may look at: the segment's body lines, and what is known about it already."""
    lines: tuple[Line, ...]           # the body lines, in order (title block lines excluded)
    titled: bool                      # a journal title block (title + byline) opens it
    news: bool                        # a news mark or a news opening (`本报讯`) was seen
    closed: bool                      # a `（作者单位：……）` closing ends a piece of it
    title: str                        # the printed title found so far (markdown `#`, page title), or ""
    page: PageMeta                    # what the page furniture stated (empty for most files)
    format: str = "txt"               # the reader the document went through (index.document.FORMATS)

    def count(self, kind: LineKind) -> int:
        return sum(1 for ln in self.lines if ln.kind is kind)

    def text(self) -> str:
        return "".join(ln.text for ln in self.lines if ln.kind in L.TEXTUAL)


class Genre:
    name = "other"
    title_in_path = True      # whether a markdown title opening the text also heads the heading path
    structural = True         # whether numbered headings are read at all
    rereads = True            # False: `reread` is the identity, the parser skips it

    def detect(self, view: SegmentView) -> bool:
        return True

    def heading(self, h: Heading, ln: Line) -> Heading | None:
        """The heading a heading-shaped line makes in this genre, or None when it is text here."""
        return h if self.structural else None

    def reread(self, ln: Line) -> Line:
        """The line as this genre reads it (the shared `Line` is never changed: a copy is returned)."""
        kind = ln.kind
        if kind is L.TEXT or kind is L.BLANK:
            return ln
        if (kind is L.HEADING or kind is L.RUNIN or kind is L.CONT) and ln.heading is not None:
            h = self.heading(ln.heading, ln)
            if h is None:
                return replace(ln, kind=L.TEXT, heading=None)
            if h is not ln.heading:
                return replace(ln, heading=h)
        elif ln.kind is L.CAPTION and not self.structural:
            return replace(ln, kind=L.TEXT)
        return ln


OTHER = Genre()
