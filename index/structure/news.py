"""News items: a headline over a continuation mark (`（上接1版）`) or a news opening (`本报讯`, `新华社`). Their
numbered lines are content (`一是……`), not sections."""
from __future__ import annotations

from index.structure.genre import Genre, SegmentView


class News(Genre):
    name = "news"
    title_in_path = False
    structural = False

    def detect(self, view: SegmentView) -> bool:
        return view.news and not view.titled


NEWS = News()
