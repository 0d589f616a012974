"""Journal articles (the seeds): a title block with a byline, or untitled text long or structured enough to be
one. Every heading shape counts (see `shapes.heading_of`); this is the default reading the other genres narrow."""
from __future__ import annotations

from index.structure.genre import Genre, SegmentView


class Article(Genre):
    name = "article"

    def detect(self, view: SegmentView) -> bool:
        if view.titled or view.closed:
            return True
        kinds = [ln.kind.value for ln in view.lines]
        return "heading" in kinds or "runin" in kinds or len(view.text()) >= 300


ARTICLE = Article()
