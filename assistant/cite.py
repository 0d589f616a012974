"""Chunk -> Citation: everything a reader needs to quote the passage in a report."""
from __future__ import annotations

from assistant.records import Citation
from index.chunk import Chunk


def citation_for(chunk: Chunk) -> Citation:
    return Citation(
        title=chunk.title, authors=chunk.authors, affiliation=chunk.affiliation, section=chunk.headings,
        source=chunk.source, line_start=chunk.line_start, line_end=chunk.line_end, doi=chunk.doi,
        title_en=chunk.title_en, title_is_fallback=chunk.title_is_fallback,
        locator=chunk.locator, page_start=chunk.page_start, page_end=chunk.page_end, format=chunk.format, genre=chunk.segment_kind,
        journal=chunk.journal, year=chunk.year, issue=chunk.issue, date=chunk.date, publisher=chunk.publisher,
    )
