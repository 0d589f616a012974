"""The one intermediate document every format reader produces; everything after the readers is format-blind.

A `Document` is the file's text as lines in reading order, the page of each line where the format has pages
(PDF), and the metadata the file itself states (HTML `<title>`, DOCX core properties, PDF document info, a
journal header line). Readers write headings as markdown (`# 标题`, `## 一、总则`) when the format marks them
(DOCX heading styles, HTML `<h1>`-`<h6>`), so the structure passes read one convention.

Line numbers downstream (`Chunk.line_start`) are 1-based positions in `lines`: for .txt/.md files they are the
file's own lines; for other formats they are lines of the extracted text, and the citation names pages instead.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

# Bump when any reader's output for the same bytes changes: cached documents of another version are re-read.
READERS_VERSION = 3

FORMATS = ("txt", "md", "pdf", "docx", "html")
PAGED = ("pdf",)


@dataclass(frozen=True, slots=True)
class DocMeta:
    """What the file states about itself; empty strings where it states nothing."""
    title: str = ""                     # HTML <title>/<h1>, DOCX core title, PDF Title (junk titles dropped)
    authors: tuple[str, ...] = ()       # DOCX core author, HTML author meta / 作者： line
    date: str = ""                      # as stated: "2024-03-01", "2016年10月27日"
    source: str = ""                    # publisher or site: "中国纪检监察报", "新华社"
    journal: str = ""                   # 刊名, from a header line 「《中国政策研究》2024年第3期」
    year: str = ""                      # of the journal issue
    issue: str = ""                     # 期
    doi: str = ""
    url: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["authors"] = list(self.authors)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DocMeta":
        kw = {f.name: d.get(f.name, f.default) for f in fields(cls)}
        kw["authors"] = tuple(kw["authors"] or ())
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Document:
    format: str                          # one of FORMATS
    lines: tuple[str, ...]               # text in reading order, one entry per line (no newline characters)
    pages: tuple[int, ...] = ()          # 1-based page of each line, parallel to `lines`; () when not paged
    meta: DocMeta = field(default_factory=DocMeta)
    n_pages: int = 0                     # pages in the file (0 when not paged)
    ocr_pages: tuple[int, ...] = ()      # pages whose text came from OCR

    def __post_init__(self) -> None:
        if self.pages and len(self.pages) != len(self.lines):
            raise ValueError(f"pages has {len(self.pages)} entries for {len(self.lines)} lines")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def paged(self) -> bool:
        return bool(self.pages)

    def pages_of(self, line_start: int, line_end: int) -> tuple[int, int]:
        """First and last page of 1-based lines `line_start..line_end`; (0, 0) for a format without pages."""
        if not self.pages:
            return 0, 0
        n = len(self.pages)
        a = self.pages[min(max(line_start, 1), n) - 1]
        b = self.pages[min(max(line_end, 1), n) - 1]
        return min(a, b), max(a, b)

    def to_dict(self) -> dict:
        return {"format": self.format, "lines": list(self.lines), "pages": list(self.pages),
                "meta": self.meta.to_dict(), "n_pages": self.n_pages, "ocr_pages": list(self.ocr_pages)}

    @classmethod
    def from_dict(cls, d: dict) -> "Document":
        return cls(d["format"], tuple(d["lines"]), tuple(d.get("pages", ())), DocMeta.from_dict(d.get("meta", {})),
                   int(d.get("n_pages", 0)), tuple(d.get("ocr_pages", ())))

    @classmethod
    def of_text(cls, text: str, format: str = "txt", meta: DocMeta | None = None) -> "Document":
        """A document of plain text: its lines exactly as in the file (`text` round-trips)."""
        return cls(format, tuple(text.split("\n")), (), meta or DocMeta())
