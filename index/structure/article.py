"""Journal articles (the seeds): a title block with a byline, or untitled text long or structured enough to be
one. Every heading shape counts (see `shapes.heading_of`); this is the default reading the other genres narrow."""
from __future__ import annotations

from index.structure.genre import Genre, SegmentView
from index.structure.records import L


class Article(Genre):
    name = "article"
    rereads = False           # every heading shape counts: the lines pass's reading is the article's

    def detect(self, view: SegmentView) -> bool:
        if view.titled or view.closed:
            return True
        if any(ln.kind is L.HEADING or ln.kind is L.RUNIN for ln in view.lines):
            return True
        return len(view.text()) >= 300


ARTICLE = Article()
