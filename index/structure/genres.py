"""The genres in the order they are asked: the first whose `detect` says yes reads the segment."""
from __future__ import annotations

from index.structure.article import ARTICLE
from index.structure.genre import OTHER, Genre, SegmentView
from index.structure.news import NEWS
from index.structure.notice import NOTICE
from index.structure.regulation import REGULATION
from index.structure.web import WEB

# News first (its marks are unambiguous), then the genres whose shapes are specific (条, document types,
# page metadata), then articles, the catch-all that reads every heading.
DETECTION_ORDER: tuple[Genre, ...] = (NEWS, REGULATION, NOTICE, WEB, ARTICLE, OTHER)
BY_NAME = {g.name: g for g in DETECTION_ORDER}


def detect(view: SegmentView) -> Genre:
    return next(g for g in DETECTION_ORDER if g.detect(view))
