"""Document structure: which lines form which segment (article, regulation, notice, page, news item), its genre,
title, authors, date and publisher, and the heading path (and 条) of every paragraph.

`parse_document(text, meta, format)` is the one entry point (`meta`: the document's `DocMeta`; `format`: its
reader); `index.chunk` cuts its blocks into chunks. It runs these passes, each a module (the rules describe line
*shapes*, never files; each has table-driven tests in tests/index/test_structure.py and test_genres_*.py):

1. `web`      page furniture first: navigation, print and previous/next lines, HTML comments and YAML front matter
              are dropped; `来源/作者/发布时间` lines (also glued to a title line) become page metadata.
2. `lines`    one `Line` per source line with a `LineKind` guessed from its own shape (`shapes` holds the shapes:
              numbering styles, labels, bylines, names); then the guesses that need a neighbour (wrapped headings,
              closings wrapped over two lines, a page of dated entries).
3. `titles`   journal title blocks: 1-3 title-like lines and a byline (`□ 刘 莹`, `作者：张三`, a name line in front
              matter); an English title block joins its Chinese one.
4. `segments` the file cut into pieces at title blocks, closings (`（作者单位：……）`), news marks and lone date
              lines; each body gets its title block where the layout allows (vocabulary decides ties).
5. genres     each segment's genre is detected from its text (`genres.DETECTION_ORDER`): `news`, `regulation`
              (第X条 lines), `notice` (a document-type title, or notice vocabulary), `web` (read from HTML, or
              page metadata in the text), `article` (a title block, headings, or enough text), else `other`.
              The genre re-reads the lines: in a regulation only 编/章/节 are headings and each 条 is a locator;
              in a notice a numbered line is a heading only when it is one. A new genre is a new module with a
              `Genre` subclass (see `genre`).
6. `blocks`   paragraphs with their heading path (levels follow the numbering style, not the markdown level),
              front matter (title block with affiliations, DOI, closing), abstracts, keywords, captions,
              references, each with the source lines it came from.
7. `parse`    sequences the passes and fills each segment's metadata: title from a markdown title, the
              document's `DocMeta.title`, the page title, a title block, a news headline or a title line (in that
              order; else a fallback, `title_is_fallback`, never a 章); authors (a byline, the page's 作者, a
              closing `（束龙）`), date (an adoption line, a signature date, the page's 发布时间) and publisher (the
              issuing body, the page's 来源) from the text first, `DocMeta` after.
"""
from index.structure.parse import parse_document
from index.structure.records import BLOCK_KINDS, GENRES, Block, Heading, LineKind, Segment

__all__ = ["BLOCK_KINDS", "GENRES", "Block", "Heading", "LineKind", "Segment", "parse_document"]
