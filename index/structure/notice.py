"""Notices, opinions, plans and announcements (`通知` `意见` `方案` `办法` `公告` …, and auction or tender
notices): numbered `一、（一）1.` lines head sections only when they are headings.

Shapes: a title that names a document type (`关于……的意见`, `……实施细则`), or untitled text full of
`拍卖`/`竞买`/`保证金`…. A numbered line is a heading when it is short and states nothing: no sentence end, at
most two clauses (one `，`), no `：` followed by content (`二、展示时间：2025年4月10日` is content). An item that
opens with a short phrase (`1.注重实际效果。安排……`, a run-in heading in an article) is text of its section: the
items of a section stay together, and the section heading names them.
"""
from __future__ import annotations

import re

from index.structure.genre import Genre, SegmentView
from index.structure.records import Heading, L, Line
from index.structure.shapes import MAX_HEADING, NOTICE_WORDS, SENT_PUNCT, numbering

DOCUMENT_TYPE = re.compile(r"(?:通知|意见|方案|办法|细则|准则|决定|规划|纲要|公告|通告|批复|决议|要点|指引|指南|规定|"
                           r"条例|规则|启事|公示)[》」”]?(?:[（(][^）)]{1,12}[）)])?$")


class Notice(Genre):
    name = "notice"
    title_in_path = False

    def detect(self, view: SegmentView) -> bool:
        if view.titled:
            return False
        if view.title and DOCUMENT_TYPE.search(view.title):
            return True
        text = view.text()
        return sum(1 for w in NOTICE_WORDS if w in text) >= 4 and not view.closed

    def heading(self, h: Heading, ln: Line) -> Heading | None:
        if h.family in ("md", "kw", "bold", "bracket", "chapter", "date"):
            return h
        if ln.kind is L.RUNIN:
            return None     # `1.注重实际效果。安排……`: an item of its section, which keeps its items together
        whole = ln.text if ln.kind is L.HEADING else h.text    # a wrapped heading: all of it
        num = numbering(whole)
        rest = num[2] if num else whole
        if len(rest) > MAX_HEADING or SENT_PUNCT.search(rest) or re.search(r"[：:]", rest) \
                or len(re.findall(r"[，,]", rest)) >= 2:      # three clauses make a sentence, not a heading
            return None
        return h


NOTICE = Notice()
