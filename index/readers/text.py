"""Plain text and markdown: decoded, lines kept exactly as in the file.

Decoding: UTF-8 (with or without BOM), UTF-16 when it has a BOM, then GB18030 (a superset of GBK/GB2312, what
Chinese Windows tools write).
"""
from __future__ import annotations

import codecs

from index.document import Document
from index.readers import ReadContext, Unreadable

_SNIFF = 8192            # bytes looked at for NUL bytes: text files have none, binaries almost always do


def decode(data: bytes) -> str | None:
    """The text of a file's bytes, or None when it is not text in a supported encoding."""
    for bom in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if data.startswith(bom):
            try:
                return data.decode("utf-16")
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:_SNIFF]:
        return None
    for codec in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def read(data: bytes, ctx: ReadContext) -> Document:
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and b"\x00" in data[:_SNIFF]:
        raise Unreadable("binary file")
    text = decode(data)
    if text is None:
        raise Unreadable("cannot decode as UTF-8 or GB18030")
    if not text.strip():
        raise Unreadable("empty file")
    return Document.of_text(text, "md" if ctx.suffix == ".md" else "txt")
