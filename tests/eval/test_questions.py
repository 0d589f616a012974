"""The question set is data, so it gets the same scrutiny as code: every anchor must be findable
in the whitespace-free corpus, in exactly the file(s) the question names, and must not straddle a
paragraph, a heading or a citation marker (a chunker that respects those could never return it)."""
from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

import pytest

from eval.metrics import KINDS, canonical

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions.jsonl"

RAW = {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*")) if p.is_file()}
CANON = {name: canonical(text) for name, text in RAW.items()}
ROWS = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
ANSWERABLE = [r for r in ROWS if r["kind"] != "unanswerable"]

# 002 and 004 are hard-wrapped: a blank line every ten-odd characters, mid-sentence. In the others a
# line is a paragraph, so any line break inside an anchor would cross one.
HARD_WRAPPED = {name for name in RAW if name[:3] in {"002", "004"}}
HEADING = re.compile(r"^\s*(#|[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\d+(\.\d+)*\s|\d+[、.]|【|\*\*|- \[)")
CITATION = re.compile(r"\^\[|\[\d+\]")

# Where each segment (article, notice, news item) starts, as canonical text: (file, marker, name).
SEGMENTS = [
    ("000", "国有企业党建工作与生产经营深度融合路径探析", "000 杨晓炜"),
    ("001", "国企党建与生产经营工作创新融合的探索实践", "001 刘隆"),
    ("002", "国有企业基层党建与经营发展融合是提升企", "002a 基层党建与经营发展融合"),
    ("002", "一、国有企业工会工作优化创新的优势及困境", "002b 工会工作"),
    ("002", "一、国有企业思政工作现状", "002c 思政工作（无题）"),
    ("003", "The industrial empowerment path", "003 北起院"),
    ("004", "推动国有企业思想政治工作守正创新", "004a 基层党建创新路径"),
    ("004", "国有企业是中国特色社会主义的重要物质基础和政治基", "004b 思政工作守正创新"),
    ("004", "党建与国企中心工作创新融合的理论探索", "004c 理论探索"),
    ("004", "受委托,我公司定于", "004 auction notice"),
    ("004", "中办、国办印发", "004 news item"),
]


def segment_of(source: str, anchor: str) -> str:
    """Name of the segment of `source` in which `anchor` first occurs."""
    pos = CANON[source].find(canonical(anchor))
    starts = [(CANON[source].find(canonical(m)), name) for f, m, name in SEGMENTS if source.startswith(f)]
    assert all(s >= 0 for s, _ in starts), f"a segment marker is missing from {source}: {starts}"
    return max((s, name) for s, name in starts if s <= pos)[1]


@functools.lru_cache(maxsize=None)
def _canonical_with_offsets(raw: str) -> tuple[str, tuple[int, ...]]:
    """Canonical text plus, for each of its characters, the offset in `raw` it came from."""
    chars, where = [], []
    for i, ch in enumerate(raw):
        for c in unicodedata.normalize("NFKC", ch):
            if not c.isspace():
                chars.append(c)
                where.append(i)
    return "".join(chars), tuple(where)


def raw_spans(raw: str, anchor: str) -> list[tuple[int, int]]:
    """(start, end) offsets in `raw` of every occurrence of `anchor`, matched canonically."""
    text, where = _canonical_with_offsets(raw)
    needle = canonical(anchor)
    spans, at = [], text.find(needle)
    while at != -1:
        spans.append((where[at], where[at + len(needle) - 1] + 1))
        at = text.find(needle, at + 1)
    return spans


def crosses_boundary(raw: str, start: int, end: int, hard_wrapped: bool) -> str | None:
    """Why the raw span [start, end) crosses a paragraph/section boundary, or None."""
    span = raw[start:end]
    if CITATION.search(span):
        return f"contains a citation marker: {span!r}"
    if "\n" not in span:
        return None
    if not hard_wrapped:
        return f"crosses a paragraph break: {span!r}"
    line_start = raw.rfind("\n", 0, start) + 1
    first_line = raw[line_start : raw.find("\n", start)]
    parts = [p.strip() for p in span.split("\n") if p.strip()]
    # 002 runs some headings into their paragraph (`（三）加强民主管理水平。首先，…`): only the text
    # before the heading's full stop is heading.
    if HEADING.match(first_line) and "。" not in raw[line_start:start]:
        return f"starts in a heading line {first_line!r}"
    for before, after in zip(parts, parts[1:]):
        if before.endswith(("。", "！", "？")):
            return f"crosses a sentence-final line break after {before!r}"
        if HEADING.match(after):
            return f"runs into a heading {after!r}"
    return None


def test_corpus_is_the_five_seed_files():
    assert sorted(n[:3] for n in RAW) == ["000", "001", "002", "003", "004"]


def test_ids_are_unique_and_in_order():
    ids = [r["id"] for r in ROWS]
    assert ids == [f"q{i:03d}" for i in range(1, len(ROWS) + 1)]


def test_fields_and_kinds():
    allowed = {"id", "question", "kind", "anchors", "source", "also", "note"}
    for r in ROWS:
        assert set(r) <= allowed and {"id", "question", "kind", "anchors", "source"} <= set(r), r["id"]
        assert r["kind"] in KINDS, (r["id"], r["kind"])
        assert r["question"].strip() == r["question"] and r["question"], r["id"]
        assert isinstance(r["anchors"], list), r["id"]


def test_counts_per_kind_meet_the_minimums():
    counts = Counter(r["kind"] for r in ROWS)
    assert len(ROWS) >= 130, counts
    assert counts["paraphrased"] >= 25, counts
    assert counts["english"] >= 20, counts
    assert counts["unanswerable"] >= 20, counts
    assert counts["keyword"] >= 8, counts
    assert counts["direct"] >= 30, counts


def test_questions_are_unique():
    dupes = [q for q, n in Counter(canonical(r["question"]) for r in ROWS).items() if n > 1]
    assert not dupes


def test_unanswerable_have_no_anchors_and_no_source():
    for r in ROWS:
        if r["kind"] == "unanswerable":
            assert r["anchors"] == [] and r["source"] == "" and "also" not in r, r["id"]
        else:
            assert r["anchors"] and r["source"] in RAW, r["id"]


def test_kind_shapes():
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for r in ROWS:
        q = r["question"]
        if r["kind"] == "keyword":
            assert 2 <= len(q) <= 4 and cjk.search(q), (r["id"], q)
        elif r["kind"] == "english":
            assert not cjk.search(q) and len(q.split()) >= 5, (r["id"], q)


def test_questions_are_not_copied_sentences():
    # A question that is itself a corpus substring is a lookup, not a researcher's question.
    corpus = "".join(CANON.values())
    for r in ROWS:
        q = canonical(r["question"]).rstrip("?？")
        if r["kind"] != "keyword":
            assert q not in corpus, (r["id"], r["question"])


def test_paraphrased_share_little_wording_with_their_anchors():
    for r in ROWS:
        if r["kind"] != "paraphrased":
            continue
        q = canonical(r["question"])
        for a in map(canonical, r["anchors"]):
            common = SequenceMatcher(None, q, a).find_longest_match(0, len(q), 0, len(a)).size
            assert common <= 4, (r["id"], r["question"], a)


@pytest.mark.parametrize("row", ANSWERABLE, ids=[r["id"] for r in ANSWERABLE])
def test_anchors_exist_in_exactly_the_named_files(row):
    named = {row["source"], *row.get("also", [])}
    holders: set[str] = set()
    for anchor in row["anchors"]:
        a = canonical(anchor)
        assert 6 <= len(a) <= 25, f"{row['id']}: anchor {anchor!r} has {len(a)} characters, want 6-25"
        files = [name for name, text in CANON.items() if a in text]
        assert len(files) == 1, f"{row['id']}: anchor {anchor!r} is in {files or 'no file'}, want exactly one"
        assert files[0] in named, f"{row['id']}: anchor {anchor!r} is in {files[0]}, not in {sorted(named)}"
        holders.add(files[0])
    assert row["source"] in holders, f"{row['id']}: no anchor lies in the named source {row['source']}"
    assert holders == named, f"{row['id']}: 'also' names {sorted(named - holders)} but no anchor is there"
    assert len(set(map(canonical, row["anchors"]))) == len(row["anchors"]), f"{row['id']}: repeated anchor"


@pytest.mark.parametrize("row", ANSWERABLE, ids=[r["id"] for r in ANSWERABLE])
def test_anchors_do_not_cross_boundaries(row):
    for anchor in row["anchors"]:
        for name, raw in RAW.items():
            for start, end in raw_spans(raw, anchor):
                why = crosses_boundary(raw, start, end, name in HARD_WRAPPED)
                assert why is None, f"{row['id']}: anchor {anchor!r} in {name} {why}"


def test_every_segment_is_covered():
    covered = Counter()
    for r in ANSWERABLE:
        for seg in {segment_of(src, a) for a in r["anchors"] for src in [r["source"], *r.get("also", [])]
                    if canonical(a) in CANON[src]}:
            covered[seg] += 1
    names = [name for _, _, name in SEGMENTS]
    for name in names:
        want = 1 if name.endswith(("notice", "item")) else 5
        assert covered[name] >= want, (name, covered)


def test_every_section_kind_is_asked_about():
    notes = " ".join(r.get("note", "") for r in ROWS)
    for kind in ("abstract", "keywords", "references", "bio", "front matter", "auction notice", "news item"):
        assert kind in notes, kind


def test_unanswerable_include_near_domain_traps_and_english():
    un = [r for r in ROWS if r["kind"] == "unanswerable"]
    assert sum("trap" in r.get("note", "") for r in un) >= 8
    assert sum(not re.search(r"[\u4e00-\u9fff]", r["question"]) for r in un) >= 3


# The helpers above decide what "crossing a boundary" means; pin them down so they can fail.
@pytest.mark.parametrize("raw, anchor, hard, crosses", [
    ("甲乙丙丁戊己庚。\n\n辛壬癸子丑寅", "庚。辛壬", True, True),          # sentence end, then new paragraph
    ("甲乙丙丁戊己\n\n庚辛壬癸子丑寅", "己庚辛壬", True, False),          # hard wrap inside a sentence
    ("甲乙丙丁戊己\n\n庚辛壬癸子丑寅", "己庚辛壬", False, True),          # same break in a one-line-per-paragraph file
    ("甲乙丙丁\n\n（二）庚辛壬癸", "丁（二）庚", True, True),              # runs into a heading
    ("甲乙丙格局^[1]。丁戊", "格局^[1]", False, True),                    # citation marker
    ("具 象 的 发 展 实 践", "具象的发展", False, False),                  # spaced CJK, one line
    ("（三）加强民主管理。首先，定期召\n开职工代表大会", "定期召开职工", True, False),  # inline heading
    ("（三）加强民主管理水平\n\n首先召开职工大会", "管理水平首先召开", True, True),  # heading wrapped into body
])
def test_crosses_boundary_table(raw, anchor, hard, crosses):
    (start, end), = raw_spans(raw, anchor)
    assert (crosses_boundary(raw, start, end, hard) is not None) is crosses


# ---------------------------------------------------------------------------------------------- the dev set
# eval/dev_questions.jsonl is about ../shared/corpora/dev/ (beside the repository, never copied into it):
# the 60 starter questions (d-01..d-60, merged with their ids) and ours (d-61 on).
DEV = ROOT / ".." / "shared" / "corpora" / "dev"
DEV_QUESTIONS = ROOT / "eval" / "dev_questions.jsonl"
DEV_META = ROOT / "eval" / "dev_meta.json"
DEV_ROWS = [json.loads(line) for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
DEV_ANSWERABLE = [r for r in DEV_ROWS if r["kind"] != "unanswerable"]
OURS = [r for r in DEV_ROWS if int(r["id"][2:]) > 60]
META_DOCS = json.loads(DEV_META.read_text(encoding="utf-8"))["documents"]
GENRE_OF = {d["path"]: d["genre"] for d in META_DOCS}
CJK = re.compile(r"[\u4e00-\u9fff]")


def _need_dev():
    if not DEV.is_dir():
        pytest.skip(f"the dev corpus is not at {DEV.resolve()} (shared/corpora/dev beside the repository)")


@functools.lru_cache(maxsize=None)
def dev_text(rel: str) -> str:
    """Canonical visible text of a dev file: .md as is, others through the libraries a loader uses."""
    from eval.baselines import raw_text

    return canonical(raw_text(DEV / rel))


def dev_files() -> list[str]:
    return sorted(p.relative_to(DEV).as_posix() for p in DEV.rglob("*") if p.is_file())


def test_dev_ids_fields_and_kinds():
    ids = [r["id"] for r in DEV_ROWS]
    assert ids == [f"d-{i:02d}" for i in range(1, len(DEV_ROWS) + 1)]
    allowed = {"id", "question", "kind", "anchors", "source", "also", "note"}
    for r in DEV_ROWS:
        assert set(r) <= allowed and {"id", "question", "kind", "anchors", "source"} <= set(r), r["id"]
        assert r["kind"] in KINDS and r["question"].strip() == r["question"] and r["question"], r["id"]


def test_dev_counts_per_kind_meet_the_minimums():
    ours = Counter(r["kind"] for r in OURS)
    assert len(OURS) >= 120, ours
    assert sum(r["kind"] == "unanswerable" for r in DEV_ROWS) >= 25
    for kind, n in (("direct", 30), ("paraphrased", 30), ("english", 25), ("keyword", 20), ("traditional", 10),
                    ("unanswerable", 15)):
        assert ours[kind] >= n, (kind, ours)


def test_dev_unanswerable_are_near_domain_traps_with_no_anchor():
    un = [r for r in DEV_ROWS if r["kind"] == "unanswerable"]
    assert all(r["anchors"] == [] and r["source"] == "" and "also" not in r for r in un)
    assert sum("near-domain" in r.get("note", "") for r in un) >= 12
    assert sum(not CJK.search(r["question"]) for r in un) >= 3


def test_dev_unanswerable_name_regulations_the_corpus_does_not_hold():
    """No dev document is the regulation a trap asks about (unless the trap asks about another version of one,
    and says so); where the corpus mentions it at all (a citation by name), the question's note says so."""
    import opencc

    _need_dev()
    to_simplified = opencc.OpenCC("t2s")
    corpus = "".join(dev_text(f) for f in dev_files())
    held = {canonical(d["title"]) for d in META_DOCS} | {canonical(a) for d in META_DOCS for a in d["title_alternates"]}
    for r in DEV_ROWS:
        if r["kind"] == "unanswerable":
            for title in re.findall(r"《([^》]+)》", to_simplified.convert(r["question"])):
                assert canonical(title) not in held or "superseded" in r.get("note", ""), (r["id"], title)
                if canonical(title) in corpus and canonical(title) not in held:
                    assert "cite" in r.get("note", ""), (r["id"], title, "mentioned in the corpus: say so")


def test_dev_every_genre_and_format_is_asked_about():
    genres = Counter(GENRE_OF[r["source"]] for r in DEV_ANSWERABLE)
    formats = Counter(r["source"].rsplit(".", 1)[1] for r in DEV_ANSWERABLE)
    assert all(genres[g] >= 10 for g in ("regulation", "notice", "article", "web")), genres
    assert all(formats[f] >= 5 for f in ("md", "html", "pdf", "docx")), formats
    asked = {r["source"] for r in DEV_ANSWERABLE}
    assert asked == set(GENRE_OF), sorted(set(GENRE_OF) - asked)    # every document has a question


def test_dev_kind_shapes():
    for r in DEV_ROWS:
        q = r["question"]
        if r["kind"] == "english":
            assert not CJK.search(q) and len(q.split()) >= 5, (r["id"], q)
        elif r["kind"] == "keyword":
            terms = q.split()
            assert 2 <= len(terms) <= 6 and all(len(t) <= 14 for t in terms), (r["id"], q)


def test_dev_traditional_questions_are_versions_of_answerable_ones():
    import opencc

    to_simplified = opencc.OpenCC("t2s")
    by_id = {r["id"]: r for r in DEV_ROWS}
    trad = [r for r in DEV_ROWS if r["kind"] == "traditional"]
    for r in trad:
        base = by_id[re.search(r"version of (d-\d+)", r["note"]).group(1)]
        assert r["question"] != base["question"], r["id"]                       # it is written differently
        assert to_simplified.convert(r["question"]) == base["question"], r["id"]
        assert (r["anchors"], r["source"]) == (base["anchors"], base["source"]), r["id"]


def test_dev_questions_are_unique_and_not_copied_sentences():
    assert not [q for q, n in Counter(canonical(r["question"]) for r in DEV_ROWS).items() if n > 1]
    _need_dev()
    corpus = "".join(dev_text(f) for f in dev_files())
    for r in DEV_ROWS:
        if r["kind"] != "keyword":
            assert canonical(r["question"]).rstrip("?？") not in corpus, (r["id"], r["question"])


def test_dev_paraphrased_share_little_wording_with_their_anchors():
    # Ours only: two starter questions (d-22, d-25) were written closer to their gold strings.
    for r in OURS:
        if r["kind"] != "paraphrased":
            continue
        q = canonical(r["question"])
        for a in map(canonical, r["anchors"]):
            common = SequenceMatcher(None, q, a).find_longest_match(0, len(q), 0, len(a)).size
            assert common <= 4, (r["id"], r["question"], a)


@pytest.mark.parametrize("row", DEV_ANSWERABLE, ids=[r["id"] for r in DEV_ANSWERABLE])
def test_dev_anchors_occur_in_the_named_files(row):
    _need_dev()
    named = [row["source"], *row.get("also", [])]
    assert all((DEV / n).is_file() for n in named), named
    holders = set()
    for anchor in row["anchors"]:
        a = canonical(anchor)
        limit = 60 if not CJK.search(a) else 30
        assert 6 <= len(a) <= limit and "\n" not in anchor, f"{row['id']}: anchor {anchor!r} ({len(a)} chars)"
        files = {f for f in dev_files() if a in dev_text(f)}
        assert files, f"{row['id']}: anchor {anchor!r} is in no dev file"
        assert files <= set(named), f"{row['id']}: anchor {anchor!r} is also in {sorted(files - set(named))}"
        holders |= files
    assert row["source"] in holders, f"{row['id']}: no anchor lies in the named source {row['source']}"
    assert holders == set(named), f"{row['id']}: 'also' names {sorted(set(named) - holders)} but no anchor is there"


READERS = {"pdf": "pdf", "docx": "docx", "html": "html"}
BY_FORMAT = [(fmt, r) for r in DEV_ANSWERABLE for fmt in [r["source"].rsplit(".", 1)[1]] if fmt in READERS]


@functools.lru_cache(maxsize=None)
def reader_text(rel: str) -> str:
    from index.readers import ReadContext, read_document

    path = DEV / rel
    return canonical(read_document(path.name, path.read_bytes(), ReadContext(suffix=path.suffix.lower())).text)


@pytest.mark.parametrize("fmt, row", BY_FORMAT, ids=[r["id"] for _, r in BY_FORMAT])
def test_dev_anchors_survive_the_project_reader(fmt, row):
    """What the index will hold: the anchors of .pdf/.docx/.html sources in the reader's Document text."""
    import importlib.util

    _need_dev()
    if importlib.util.find_spec(f"index.readers.{READERS[fmt]}") is None:
        pytest.skip(f"index/readers/{READERS[fmt]}.py has not landed yet; anchors are checked against the "
                    f"libraries' text by test_dev_anchors_occur_in_the_named_files")
    text = reader_text(row["source"])
    missing = [a for a in row["anchors"] if canonical(a) not in text]
    # A question is answerable from a document when at least one anchor is there; all should be.
    assert not missing, f"{row['id']}: {missing} not in the {fmt} reader's text of {row['source']}"


def test_dev_meta_lists_every_file_once_with_checked_fields():
    _need_dev()
    paths = [d["path"] for d in META_DOCS]
    assert sorted(paths) == dev_files() and len(set(paths)) == len(paths)
    for d in META_DOCS:
        text = dev_text(d["path"])
        assert d["genre"] in {"regulation", "notice", "article", "web"}, d["path"]
        assert d["format"] == d["path"].rsplit(".", 1)[1]
        # A stated title is printed in the file; an unstated one is not (it lives in the source's file name).
        assert (canonical(d["title"]) in text) is d["title_stated"], d["path"]
        for alt in d["title_alternates"]:
            assert canonical(alt) in text, (d["path"], alt)
        for author in d["authors"]:
            assert canonical(author) in text, (d["path"], author)
        if d["date"]:
            assert canonical(d["date"]) in text, (d["path"], d["date"])


def test_seeds_meta_matches_the_seed_files():
    docs = json.loads((ROOT / "eval" / "seeds_meta.json").read_text(encoding="utf-8"))["documents"]
    assert sorted({d["path"] for d in docs}) == sorted(RAW)
    for d in docs:
        if d["title_stated"]:
            assert canonical(d["title"]) in CANON[d["path"]], d
        for author in d["authors"]:
            assert canonical(author) in CANON[d["path"]], (d["path"], author)
    assert [d["segment"] for d in docs if d["path"].startswith("004")] == [0, 1, 2, 3, 4]


def test_dev_trap_terms_said_to_be_absent_are_absent():
    _need_dev()
    corpus = "".join(dev_text(f) for f in dev_files())
    claims = [(r["id"], m.group(1)) for r in DEV_ROWS
              for m in [re.search(r"trap: (\S+) does not occur in the corpus", r.get("note", ""))] if m]
    assert len(claims) >= 8
    for qid, term in claims:
        assert canonical(term) not in corpus, (qid, term)
