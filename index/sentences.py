"""Sentence spans inside a chunk: the units that evidence highlighting chooses among."""
from __future__ import annotations

import re

# A sentence ends at 。！？；!? (with any closing quotes/brackets after them) or at a line break.
_END = re.compile(r"[。！？；!?;]+[”’」』）)】]*|\n+")
_MIN_CHARS = 6   # shorter pieces (“一是：”) are joined to the following sentence


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans covering the non-blank sentences of `text`, in order, whitespace trimmed."""
    spans, start = [], 0
    for m in _END.finditer(text):
        spans.append((start, m.end()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    pending = None
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s == e:
            continue
        if pending is not None:
            s = pending
            pending = None
        if e - s < _MIN_CHARS:
            pending = s
            continue
        out.append((s, e))
    if pending is not None:
        if out:
            out[-1] = (out[-1][0], len(text.rstrip()))
        else:
            out.append((pending, len(text.rstrip())))
    return out
