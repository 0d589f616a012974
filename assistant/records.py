"""The records the assistant returns: frozen, JSON-ready through `to_dict()`."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Citation:
    title: str
    authors: tuple[str, ...]
    affiliation: str
    section: tuple[str, ...]   # heading path, outermost first
    source: str                # file, relative to the corpus root
    line_start: int
    line_end: int
    doi: str = ""
    title_en: str = ""
    title_is_fallback: bool = False
    locator: str = ""          # 条 of a regulation ("第十七条"), shown after the section path
    page_start: int = 0        # pages of a paged format (PDF); 0 when the file has no pages
    page_end: int = 0
    format: str = "txt"
    genre: str = "article"     # the segment kind: article / notice / news / regulation / web / other
    journal: str = ""          # 刊名, 年, 期 where the document states them
    year: str = ""
    issue: str = ""
    date: str = ""
    publisher: str = ""

    def pages(self) -> str:
        """「第3页」, 「第3-4页」, or "" for a file without pages."""
        if not self.page_start:
            return ""
        if self.page_end and self.page_end != self.page_start:
            return f"第{self.page_start}-{self.page_end}页"
        return f"第{self.page_start}页"

    def where(self) -> str:
        """The file and the pages (paged formats) or lines: "a.pdf, 第3-4页", "b.txt:10-12"."""
        if self.page_start:
            return f"{self.source}, {self.pages()}"
        return f"{self.source}:{self.line_start}-{self.line_end}"

    def location(self) -> str:
        where = self.where()
        path = " > ".join([*self.section, self.locator] if self.locator and self.locator not in self.section
                          else self.section)
        return f"{path}，{where}" if path else where

    def reference(self) -> str:
        """GB/T 7714 reference plus where in the file the passage stands.

        `作者. 题名[J]. 刊名, 年(期): 起-止页.` where the document states its journal; a web page is [EB/OL] with
        its site and date; a regulation or notice without a journal is [Z] (GB/T 7714: other documents).
        """
        authors = "，".join(self.authors[:3]) + ("，等" if len(self.authors) > 3 else "")
        title = f"［无题，取自首个标题：{self.title}］" if self.title_is_fallback else self.title
        if self.journal:
            code = "J"
        elif self.format == "html" or self.genre == "web":     # a page, also one saved as text
            code = "EB/OL"
        elif self.genre in ("regulation", "notice"):
            code = "Z"
        else:
            code = "J"
        ref = f"{authors}. {title}[{code}]" if authors else f"{title}[{code}]"
        pages = f"{self.page_start}-{self.page_end}" if self.page_end and self.page_end != self.page_start \
            else str(self.page_start) if self.page_start else ""
        if self.journal:
            ref += f". {self.journal}"
            if self.year:
                ref += f", {self.year}" + (f"({self.issue})" if self.issue else "")
            if pages:
                ref += f": {pages}"
        elif self.publisher or self.date:
            ref += ". " + ", ".join(x for x in (self.publisher, self.date) if x)
        if self.doi:
            ref += f". DOI:{self.doi}"
        return f"{ref}.（{self.location()}）"

    def to_dict(self) -> dict:
        return {
            "title": self.title, "authors": list(self.authors), "affiliation": self.affiliation,
            "section": list(self.section), "locator": self.locator, "source": self.source,
            "line_start": self.line_start, "line_end": self.line_end, "doi": self.doi,
            "title_en": self.title_en, "title_is_fallback": self.title_is_fallback,
            "page_start": self.page_start, "page_end": self.page_end, "pages": self.pages(),
            "format": self.format, "genre": self.genre, "journal": self.journal, "year": self.year,
            "issue": self.issue, "date": self.date, "publisher": self.publisher,
            "location": self.location(), "reference": self.reference(),
        }


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: str
    text: str
    score: float                        # fused relevance, higher is better; comparable within one Answer
    confidence: str                     # "high" / "medium" / "low"
    highlights: tuple[tuple[int, int], ...]   # (start, end) spans of `text`: the answering sentence(s)
    block: str                          # body / abstract / keywords / references / bio / caption / front
    citation: Citation

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk_id, "text": self.text, "score": round(float(self.score), 6),
            "confidence": self.confidence, "highlights": [list(h) for h in self.highlights],
            "highlighted_text": [self.text[s:e] for s, e in self.highlights],
            "block": self.block, "citation": self.citation.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    found: bool                 # False: nothing in the corpus answers well enough; passages are weak
    passages: tuple[Passage, ...]
    message: str                # one line for the user, in Chinese
    elapsed_ms: float
    reason: str = ""            # why not found, in Chinese (「《中央企业合规管理办法》不在语料中」); "" when found

    def to_dict(self) -> dict:
        return {
            "question": self.question, "found": self.found, "message": self.message, "reason": self.reason,
            "elapsed_ms": round(self.elapsed_ms, 2),
            "passages": [p.to_dict() for p in self.passages],
        }
