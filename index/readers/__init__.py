"""One reader per file format, each turning a file's bytes into the same `index.document.Document`.

Every reader module has `read(data: bytes, ctx: ReadContext) -> Document` and raises `Unreadable(reason)` for a
file it cannot use (an encrypted PDF, a .docx that is not a zip, …); the corpus scan records the reason and
goes on. Readers are imported on first use, so a corpus of .txt files never imports pypdfium2 or rapidocr.

Expensive reads (PDF, DOCX, HTML; OCR above all) are cached as JSON by the file's sha256, so re-opening an
unchanged corpus does not read them again.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from index.document import READERS_VERSION, Document

log = logging.getLogger(__name__)

# File ending -> reader module under index.readers.
BY_SUFFIX = {".txt": "text", ".md": "text", ".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html"}
SUPPORTED = tuple(BY_SUFFIX)
_CACHED = ("pdf", "docx", "html")      # plain text is cheaper to read again than to load from a cache


class Unreadable(Exception):
    """A file that cannot be used; `str(e)` is the reason the user is shown ("encrypted PDF")."""


@dataclass(frozen=True, slots=True)
class ReadContext:
    sha256: str = ""                   # of the file's bytes: the key of every cache
    cache_dir: Path | None = None      # where documents and OCR pages are cached; None: no cache
    progress: bool = False             # show a progress bar for slow reads (OCR, by page)
    suffix: str = ""                   # the file's ending, lower case (".md" vs ".txt")
    # A UI's progress hook: a slow reader calls on_progress("ocr", pages_done, pages_total) (or None).
    on_progress: Callable[[str, int, int], None] | None = None


def reader_name(filename: str) -> str | None:
    """The reader module for a file name, or None for an unsupported type."""
    return BY_SUFFIX.get(Path(filename).suffix.lower())


def read_document(filename: str, data: bytes, ctx: ReadContext) -> Document:
    """The document in `data` (the bytes of `filename`); raises Unreadable with the reason."""
    name = reader_name(filename)
    if name is None:
        suffix = Path(filename).suffix.lower() or "no extension"
        raise Unreadable(f"unsupported type ({suffix}); readable: {', '.join(SUPPORTED)}")
    cached = _cache_get(ctx) if name in _CACHED else None
    if cached is not None:
        return cached
    module = importlib.import_module(f"index.readers.{name}")
    doc = module.read(data, ctx)
    if not any(line.strip() for line in doc.lines):
        raise Unreadable("no text found" + (" (not even by OCR)" if doc.ocr_pages else ""))
    if name in _CACHED:
        _cache_put(ctx, doc)
    return doc


def _cache_path(ctx: ReadContext) -> Path | None:
    if ctx.cache_dir is None or not ctx.sha256:
        return None
    return ctx.cache_dir / "documents" / f"{ctx.sha256}.json"


def _cache_get(ctx: ReadContext) -> Document | None:
    path = _cache_path(ctx)
    if path is None or not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("readers_version") != READERS_VERSION or d.get("sha256") != ctx.sha256:
            return None
        return Document.from_dict(d["document"])
    except (OSError, ValueError, KeyError, TypeError) as e:     # a damaged cache entry is read again, not fatal
        log.info("ignoring the cached document %s: %s", path, e)
        return None


def _cache_put(ctx: ReadContext, doc: Document) -> None:
    path = _cache_path(ctx)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
        tmp.write_text(json.dumps({"readers_version": READERS_VERSION, "sha256": ctx.sha256,
                                   "document": doc.to_dict()}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:            # a read-only cache only costs a re-read next time
        log.info("cannot cache the document in %s: %s", path, e)
