"""Chunks of seeds/: provenance, no wrap artifacts, sizes, boundaries, heading paths, ids, nothing lost."""
import hashlib
import random
import re
import time
from functools import lru_cache
from pathlib import Path

import pytest

from index.chunk import CHUNKER_VERSION, Chunk, ChunkConfig, chunk_document, chunk_id, pack
from index.normalize import CJK, CJK_PUNCT, LIST_ITEM, clean_line, ends_sentence

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
NAMES = sorted(p.name for p in SEEDS.glob("*.txt"))
CONFIG = ChunkConfig()


@lru_cache(maxsize=None)
def _chunks(name: str) -> tuple[Chunk, ...]:
    return tuple(chunk_document((SEEDS / name).read_text(encoding="utf-8"), name))


@lru_cache(maxsize=None)
def _lines(name: str) -> tuple[str, ...]:
    return tuple((SEEDS / name).read_text(encoding="utf-8").split("\n"))


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _all():
    return [(name, c) for name in NAMES for c in _chunks(name)]


def test_every_seed_file_gives_chunks():
    assert len(NAMES) == 5
    assert all(_chunks(name) for name in NAMES)


def test_provenance_every_chunk_comes_from_its_lines():
    # The original lines line_start..line_end, cleaned the same way, contain the chunk's text.
    for name, c in _all():
        assert 1 <= c.line_start <= c.line_end <= len(_lines(name)), (name, c.line_start, c.line_end)
        source = "".join(clean_line(line) for line in _lines(name)[c.line_start - 1:c.line_end])
        assert _squash(c.text) in _squash(source), (name, c.line_start, c.text[:40])


def test_chunk_lines_are_tight():
    # The first and last cited lines really hold text of the chunk (not a heading or a blank line before it).
    for name, c in _all():
        first = _squash(clean_line(_lines(name)[c.line_start - 1]))
        last = _squash(clean_line(_lines(name)[c.line_end - 1]))
        text = _squash(c.text)
        assert first and last
        assert first[-3:] in text or text[:3] in first, (name, c.line_start, first)
        assert last[:3] in text or text[-3:] in last, (name, c.line_end, last)


_GAP = r"[ \t\u3000]+"     # not \n: that separates the paragraphs merged into one chunk
SPACED_CJK = re.compile(rf"[{CJK}]{_GAP}[{CJK}]|[{CJK}{CJK_PUNCT}]{_GAP}[{CJK_PUNCT}]|[{CJK_PUNCT}]{_GAP}[{CJK}]")


def test_no_spaced_cjk_in_any_chunk():
    bad = [(name, c.line_start, m.group()) for name, c in _all() for m in SPACED_CJK.finditer(c.text)]
    assert bad == []


def test_no_chunk_ends_at_a_hard_wrap():
    # Inside a chunk, a paragraph that does not end a sentence is followed by a numbered item (`1、` `（二）`):
    # lists are printed one item per line. A chunk that ends mid-sentence is the last of its section, or was
    # cut inside one over-long source line.
    for name in NAMES:
        chunks = _chunks(name)
        for c, nxt in zip(chunks, chunks[1:] + (None,)):
            if c.block not in ("body", "abstract", "bio"):
                continue
            paras = c.text.split("\n")
            for para, after in zip(paras, paras[1:]):
                assert ends_sentence(para) or LIST_ITEM.match(after), (name, c.line_start, para[-15:])
            if ends_sentence(c.text) or c.text.endswith(("：", "；")):
                continue
            same_section = nxt is not None and (nxt.article, nxt.headings, nxt.block) == \
                (c.article, c.headings, c.block)
            assert not same_section or nxt.line_start == c.line_end, (name, c.line_start, c.text[-15:])


@pytest.mark.parametrize("name, needle", [
    ("002_aafc08028407862a.txt", "提升企业竞争力的关键"),      # `提升企` / `业竞争力` wrapped with a blank line
    ("000_f25ebb76fa63945c.txt", "汇聚全员共建共治的强大合力"),
    ("001_96c08fcecc05a0af.txt", "深度融合的机制路径，创新融入方法"),
    ("001_96c08fcecc05a0af.txt", "有效发挥考核“指挥棒”作用"),
    ("003_8a33f948501c2c2d.txt", "实现高质量发展具有重要的理论意义"),
    ("004_4d0d513ed8a23c7b.txt", "具象的发展实践，将宏观政策要求转化为具体的岗位标准"),
    ("004_4d0d513ed8a23c7b.txt", "发挥党组织的战斗堡垒作用和党员的先锋模范作用"),
    ("002_aafc08028407862a.txt", "党建与经营“两张皮”的问题"),
])
def test_wrapped_and_spaced_text_is_joined(name, needle):
    assert any(needle in c.text for c in _chunks(name))


def test_sizes():
    for name, c in _all():
        assert len(c.text) <= round(1.25 * CONFIG.max_chars), (name, c.line_start, len(c.text))
    body = [c for _, c in _all() if c.block == "body"]
    assert sum(len(c.text) <= CONFIG.max_chars for c in body) / len(body) > 0.9
    assert sum(len(c.text) >= CONFIG.min_chars for c in body) / len(body) > 0.9


def test_short_chunks_had_no_neighbour_to_join():
    cap = round(1.25 * CONFIG.max_chars)
    for name in NAMES:
        chunks = _chunks(name)
        for i, c in enumerate(chunks):
            if len(c.text) >= CONFIG.min_chars:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < len(chunks) and c.block != "front":
                    n = chunks[j]
                    if (n.article, n.headings, n.block) == (c.article, c.headings, c.block):
                        assert len(c.text) + len(n.text) + 1 > cap, (name, c.line_start, c.text)


def test_chunks_never_cross_a_heading():
    for name in NAMES:
        chunks = _chunks(name)
        headings = {h for c in chunks for h in c.headings}
        for c in chunks:
            inside = [clean_line(line) for line in _lines(name)[c.line_start:c.line_end]]   # after the first line
            assert not headings.intersection(inside), (name, c.line_start, headings.intersection(inside))


def test_chunks_never_cross_an_article():
    for name in NAMES:
        chunks = _chunks(name)
        by_article: dict[int, list[Chunk]] = {}
        for c in chunks:
            by_article.setdefault(c.article, []).append(c)
        for a, own in by_article.items():
            for b, other in by_article.items():
                if a == b:
                    continue
                for c in own:
                    for o in other:
                        assert c.line_end < o.line_start or o.line_end < c.line_start, (name, a, b, c.line_start)
        assert len({(c.article, c.title, c.authors) for c in chunks}) == len(by_article)


# (file, text in the chunk, heading path, article index)
HEADINGS = [
    ("000_f25ebb76fa63945c.txt", "定期召开党建与经营联席会商会议",
     ("3 推动国有企业党建工作与生产经营深度融合的具体路径", "3.2 完善融合机制，夯实融合基础", "3.2.1 建立协同推进机制"), 0),
    ("000_f25ebb76fa63945c.txt", "推进党建与生产经营深度相融", ("引言",), 0),
    ("000_f25ebb76fa63945c.txt", "顾萍.新形势下国有企业党建工作", ("参考文献",), 0),
    ("003_8a33f948501c2c2d.txt", "“三型三化一提升”工作法",
     ("3 国企党建与经营深度融合的实践路径（以北起院为例）", "3.3 构建支部驱动的业务融合模式，打通融合“最后一公里”"), 0),
    ("003_8a33f948501c2c2d.txt", "北起院党委大力推动公司基层党工团一体化建设",
     ("3 国企党建与经营深度融合的实践路径（以北起院为例）", "3.2 构建以党组织为核心、群团组织为脉络的协同治理网络"), 0),
    ("003_8a33f948501c2c2d.txt", "坚持党管干部原则与市场化机制相结合",
     ("2 结合案例分析国企党建与经营融合的理论逻辑", "2.2 人才支撑与活力激发"), 0),
    ("001_96c08fcecc05a0af.txt", "坚定理想信念，夯实思想根基",
     ("二、党建与生产经营工作深度融合的策略", "（一）构建党建工作与生产经营工作融合发展的路径探索",
      "3、坚持理论武装、解放思想，奠定创新融合基础"), 0),
    ("001_96c08fcecc05a0af.txt", "以实施党建“书记项目”为抓手",
     ("二、党建与生产经营工作深度融合的策略", "（二）党建与生产经营工作深度融合，凝聚发展合力",
      "2、发挥党员先锋模范作用，为转型发展凝聚人心"), 0),
    ("001_96c08fcecc05a0af.txt", "发挥思想政治工作优势，密切各级领导干部",
     ("二、党建与生产经营工作深度融合的策略", "（三）持续推进融合力度，提升党建成效", "3、坚持以人为本的工作理念"), 0),
    ("001_96c08fcecc05a0af.txt", "关键在于推进党建与生产经营工作深度融合的制度规范", ("三、结束语",), 0),
    # 002: wrapped headings, titles after bodies, run-in headings, an untitled third article
    ("002_aafc08028407862a.txt", "设立党员先锋岗、组建党员突击队",
     ("一、国有企业基层党建与经营发展融合的重要意义", "（一）有利于增强企业凝聚力和战斗力"), 0),
    ("002_aafc08028407862a.txt", "缺乏有效的沟通协调机制",
     ("二、国有企业基层党建与经营发展融合存在的问题", "（二）融合机制不完善"), 0),
    ("002_aafc08028407862a.txt", "融合发展金点子征集",
     ("三、国有企业基层党建与经营发展融合路径探索", "（一）强化思想引领，树立融合发展理念"), 0),
    ("002_aafc08028407862a.txt", "从地方到产业，哪里有职工",
     ("一、国有企业工会工作优化创新的优势及困境", "（一）优势"), 1),
    ("002_aafc08028407862a.txt", "工会应持续完善“职工之家”建设",
     ("二、国有企业工会工作优化与创新的相关措施", "（三）加强民主管理水平"), 1),
    ("002_aafc08028407862a.txt", "有的老员工甚至认为只要企业的生产效益好",
     ("一、国有企业思政工作现状", "（一）对思政工作缺乏正确的认识"), 2),
    # 004: spaced characters, wrapped headings, a displaced title, three articles
    ("004_4d0d513ed8a23c7b.txt", "党员的先锋模范作用，激发广大员工",
     ("一、新时期国有企业基层党建工作创新的重要性", "（二）提升企业核心竞争力的需要"), 0),
    ("004_4d0d513ed8a23c7b.txt", "搭建线上党建平台",
     ("三、新时期国有企业基层党建工作的创新路径", "（二）党建工作的方法创新", "1.利用现代信息技术"), 0),
    ("004_4d0d513ed8a23c7b.txt", "仍然沿用传统的党建工作理念",
     ("二、当前国有企业基层党建工作存在的问题", "（一）工作理念陈旧"), 0),
    ("004_4d0d513ed8a23c7b.txt", "具象的发展实践",
     ("一、国有企业思想政治工作守正创新的重要意义", "（二）创新，激活思想政治工作的时代活力"), 1),
    ("004_4d0d513ed8a23c7b.txt", "构建“党委顶层设计、支部攻坚落实、党员带头示范”",
     ("三、推动党建与企业中心工作创新融合的路径", "（二）完善制度建设,做好顶层设计"), 2),
    ("004_4d0d513ed8a23c7b.txt", "这一目标的实现，离不开党建与国企中心工作的深度融合", (), 2),
]


@pytest.mark.parametrize("name, needle, path, article", HEADINGS)
def test_heading_attachment(name, needle, path, article):
    hits = [c for c in _chunks(name) if needle in c.text]
    assert len(hits) == 1, [c.text[:30] for c in hits]
    assert (hits[0].headings, hits[0].article) == (path, article)


@pytest.mark.parametrize("name, needle, block", [
    ("000_f25ebb76fa63945c.txt", "国有企业作为国家经济发展的核心支柱", "abstract"),
    ("000_f25ebb76fa63945c.txt", "国有企业；党建工作；生产经营；深度融合；高质量发展", "keywords"),
    ("000_f25ebb76fa63945c.txt", "图1 党建与生产经营协同推进机制运行流程图", "caption"),
    ("003_8a33f948501c2c2d.txt", "This article focuses on the theme", "abstract"),
    ("003_8a33f948501c2c2d.txt", "state-owned enterprises; Party building integration", "keywords"),
    ("003_8a33f948501c2c2d.txt", "The industrial empowerment path", "front"),
    ("003_8a33f948501c2c2d.txt", "曾程（1987-），女，满族", "bio"),
    ("004_4d0d513ed8a23c7b.txt", "推动国有企业思想政治工作守正创新", "front"),
    ("002_aafc08028407862a.txt", "国有企业工会工作创新与优化思考", "front"),
])
def test_front_matter_chunks_carry_their_block_kind(name, needle, block):
    hits = [c for c in _chunks(name) if needle in c.text]
    assert hits and all(c.block == block for c in hits)
    assert all(c.headings == () for c in hits if block != "caption")


@pytest.mark.parametrize("name, article, text, lines", [
    ("000_f25ebb76fa63945c.txt", 0, "国有企业党建工作与生产经营深度融合路径探析\n杨晓炜\n大唐凉山新能源有限公司四川成都 610074", (3, 7)),
    ("000_f25ebb76fa63945c.txt", 0, "DOI:10.12417/3041-0630.26.08.049", (13, 13)),
    ("001_96c08fcecc05a0af.txt", 0, "国企党建与生产经营工作创新融合的探索实践\n刘隆\n山西西山晋兴能源有限责任公司山西太原 030000", (3, 7)),
    ("002_aafc08028407862a.txt", 0, "国有企业基层党建与经营发展融合路径探索\n平煤神马建工集团建井一处\n李宁坡", (221, 222)),
    ("002_aafc08028407862a.txt", 1, "国有企业工会工作创新与优化思考\n天昊实业公司\n张继绪", (427, 428)),
    ("003_8a33f948501c2c2d.txt", 0, "Cheng Zeng Gengtian Du", (3, 7)),
    ("004_4d0d513ed8a23c7b.txt", 0, "新时期国有企业基层党建工作的创新路径\n王涛", (4, 7)),
    ("004_4d0d513ed8a23c7b.txt", 0, "（作者单位：山西汾河焦煤股份有限公司三交河煤矿）", (433, 434)),
    ("004_4d0d513ed8a23c7b.txt", 1, "推动国有企业思想政治工作守正创新\n刘莹", (1, 2)),
])
def test_front_matter_is_askable(name, article, text, lines):
    # "杨晓炜在哪个单位工作？", "这篇文章的DOI是多少？": title, authors, affiliation and DOI are chunk text too.
    hits = [c for c in _chunks(name) if text in c.text]
    assert [(c.block, c.article, (c.line_start, c.line_end)) for c in hits] == [("front", article, lines)]


@pytest.mark.parametrize("byline, authors, affiliation, shown", [
    ("□ 刘 莹", ("刘莹",), "", "刘莹"),
    ("姻某某实业公司 张三 李四", ("张三", "李四"), "某某实业公司", "某某实业公司\n张三\n李四"),
    ("作者：王五", ("王五",), "", "作者：王五"),
    ("文/赵六", ("赵六",), "", "文/赵六"),
])
def test_byline_shapes(byline, authors, affiliation, shown):
    text = f"前一篇的结尾。\n\n国有企业党建工作的若干思考\n{byline}\n\n一、意义\n党建工作十分重要。\n"
    chunks = chunk_document(text, "x.txt")
    front = [c for c in chunks if c.block == "front"]
    assert [(c.text, c.authors, c.affiliation) for c in front] == [
        (f"国有企业党建工作的若干思考\n{shown}", authors, affiliation)]
    lines = text.split("\n")
    for c in chunks:
        source = "".join(clean_line(line) for line in lines[c.line_start - 1:c.line_end])
        assert _squash(c.text) in _squash(source)


def test_labels_headings_and_bylines_are_not_chunk_text():
    for name, c in _all():
        assert "上接1版" not in c.text and "□" not in c.text and "姻" not in c.text
        if c.block == "front":
            continue
        assert not re.match(r"^(【|\[)?(摘要|关键词|Abstract|Keywords|DOI)", c.text), (name, c.text[:20])
        assert "作者单位" not in c.text
        assert not any(c.text.startswith(h) for h in c.headings if c.block == "body" and len(h) > 12 and
                       not re.match(r"^（[一二三四五六七八九十]+）[^。]+$", h)), (name, c.text[:20])


def test_segment_fields_reach_every_chunk():
    by = {(c.source, c.article): c for _, c in _all()}
    liu = by[("004_4d0d513ed8a23c7b.txt", 1)]
    assert (liu.title, liu.authors, liu.segment_kind) == ("推动国有企业思想政治工作守正创新", ("刘莹",), "article")
    notice = by[("004_4d0d513ed8a23c7b.txt", 3)]
    assert notice.segment_kind == "notice" and notice.title_is_fallback
    third = by[("002_aafc08028407862a.txt", 2)]
    assert (third.title, third.title_is_fallback) == ("一、国有企业思政工作现状", True)
    assert by[("003_8a33f948501c2c2d.txt", 0)].title_en.startswith("The industrial empowerment path")


_MARKERS = re.compile(r"^[□■姻]|[（(]作者单位[：:]|[（(]上接\d+版[）)]|[）)]$|^[【\[]?(DOI|摘要|关键词|参考文献)[】\]]?[：:]?")


def test_nothing_is_lost():
    # Every line is inside some chunk's range, or what it says is stored as metadata (title, heading,
    # authors, affiliation, DOI), or it is a bare label or marker.
    for name in NAMES:
        chunks = _chunks(name)
        covered = {n for c in chunks for n in range(c.line_start, c.line_end + 1)}
        meta = [_squash(s) for c in chunks for s in (c.title, c.title_en, c.affiliation, c.doi, "".join(c.authors),
                                                     c.affiliation + "".join(c.authors), *c.headings) if s]
        for no, raw in enumerate(_lines(name), 1):
            rest = _MARKERS.sub("", _squash(clean_line(raw)))
            if no in covered or not re.search(f"[{CJK}]{{2}}", rest):
                continue
            assert any(rest in m for m in meta), (name, no, raw)


def test_ids_are_content_hashes_stable_and_unique():
    ids = [c.id for _, c in _all()]
    assert len(ids) == len(set(ids))
    name = NAMES[0]
    again = chunk_document((SEEDS / name).read_text(encoding="utf-8"), name)
    assert [c.id for c in again] == [c.id for c in _chunks(name)]
    c = _chunks(name)[3]
    assert c.id == chunk_id(c.source, c.line_start, c.text)
    assert c.id == hashlib.sha256(f"{c.source}\n{c.line_start}\n{c.text}".encode()).hexdigest()[:20]


def test_editing_one_paragraph_changes_only_its_chunk_id():
    name = "000_f25ebb76fa63945c.txt"
    text = (SEEDS / name).read_text(encoding="utf-8")
    edited = chunk_document(text.replace("定期召开党建与经营联席会商会议", "定期召开党建经营联席会议"), name)
    before = [c.id for c in _chunks(name)]
    after = [c.id for c in edited]
    assert len(before) == len(after)
    assert sum(a != b for a, b in zip(before, after)) == 1


def test_round_trip_through_dict():
    for _, c in _all()[:20]:
        assert Chunk.from_dict(c.to_dict()) == c


def test_chunking_the_seeds_is_fast():
    texts = [((SEEDS / n).read_text(encoding="utf-8"), n) for n in NAMES]
    start = time.process_time()          # CPU time: the test machine is shared
    for text, name in texts:
        chunk_document(text, name)
    assert time.process_time() - start < 1.0


@pytest.mark.parametrize("seed", range(8))
def test_provenance_holds_on_scrambled_seed_lines(seed):
    # Whatever the layout, a chunk cites exactly the lines its text comes from and stays within the size cap.
    rng = random.Random(seed)
    every = [line for name in NAMES for line in _lines(name)]
    n = rng.randint(50, 400)
    start = rng.randint(0, len(every) - n)
    lines = every[start:start + n]
    if seed % 2:
        rng.shuffle(lines)
    chunks = chunk_document("\n".join(lines), "scrambled.txt")
    for c in chunks:
        source = "".join(clean_line(line) for line in lines[c.line_start - 1:c.line_end])
        assert _squash(c.text) in _squash(source), (seed, c.line_start, c.text[:40])
        assert len(c.text) <= round(1.25 * CONFIG.max_chars)


def test_markdown_headings_become_the_heading_path():
    md = ("# 党建工作手册\n\n本手册说明党建工作的基本做法，供基层党支部参考使用。\n\n## 组织建设\n\n"
          "支部要按期换届，配齐支部委员。\n\n### 三会一课\n\n支部要按时召开支部党员大会、支部委员会和党小组会。\n\n"
          "## 作风建设\n\n党员干部要密切联系群众。\n")
    chunks = chunk_document(md, "handbook/manual.md")
    assert {c.text: c.headings for c in chunks if c.block == "body"} == {
        "本手册说明党建工作的基本做法，供基层党支部参考使用。": ("党建工作手册",),
        "支部要按期换届，配齐支部委员。": ("党建工作手册", "组织建设"),
        "支部要按时召开支部党员大会、支部委员会和党小组会。": ("党建工作手册", "组织建设", "三会一课"),
        "党员干部要密切联系群众。": ("党建工作手册", "作风建设"),
    }
    assert all(c.source == "handbook/manual.md" for c in chunks)


def test_long_paragraph_is_split_at_sentence_ends_with_exact_lines():
    sentence = "党建工作与生产经营深度融合是国有企业高质量发展的必然要求和重要路径。"   # 34 characters
    text = "1 正文\n\n" + "\n\n".join(sentence for _ in range(30)) + "\n"
    chunks = chunk_document(text, "x.txt")
    assert len(chunks) >= 3
    assert all(c.text.endswith("。") and len(c.text) <= CONFIG.max_chars for c in chunks)
    assert "".join(c.text.replace("\n", "") for c in chunks) == sentence * 30
    for c in chunks:   # each sentence sits on its own odd line (3, 5, 7, …)
        assert c.line_end - c.line_start == 2 * (c.text.replace("\n", "").count("。") - 1)


def test_short_paragraphs_merge_within_a_section_only():
    text = "一、甲\n\n短句一。\n\n短句二。\n\n二、乙\n\n短句三。\n"
    chunks = chunk_document(text, "x.txt")
    assert [(c.headings, c.text) for c in chunks] == [(("一、甲",), "短句一。\n短句二。"), (("二、乙",), "短句三。")]


@pytest.mark.parametrize("sizes, want", [
    ([250, 250], [[0], [1]]),                 # two comfortable chunks rather than one of 500
    ([350, 60, 350], [[0, 1], [2]]),          # a short paragraph joins a neighbour, slightly over max
    ([100, 100, 100, 100, 100], [[0, 1, 2], [3, 4]]),
    ([30, 380], [[0, 1]]),
    ([60, 60], [[0, 1]]),
])
def test_pack_keeps_sizes_even(sizes, want):
    got = pack([[(0, n)] for n in sizes], CONFIG)
    assert [[b for b, _ in chunk] for chunk in got] == want


def test_config_is_validated_and_serialized():
    assert ChunkConfig().to_dict() == {"min_chars": 80, "max_chars": 400}
    with pytest.raises(ValueError, match="min_chars=300, max_chars=400"):
        ChunkConfig(min_chars=300, max_chars=400)
    assert isinstance(CHUNKER_VERSION, int)


# ------------------------------------------------------------------------------- the dev corpus (.md files)

DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "dev"
DEV_MD = sorted(p.relative_to(DEV).as_posix() for p in DEV.rglob("*.md")) if DEV.is_dir() else []
needs_dev = pytest.mark.skipif(not DEV_MD, reason=f"dev corpus not found at {DEV} (shared/ beside the repo)")
# Navigation, page metadata and markup that must never be chunk text.
DEV_JUNK = re.compile(r"&nbsp;|&amp;|<!--|-->|<br|#|\*\*|\\\[|上一篇|下一篇|文章来源[：:]|发布时间[：:]|点击数|"
                      r"打印正文|layout:|\[back\]")
# The gap the document prints after a leading article or chapter number (第十条　国家……) is kept, as printed.
NUMBER_GAP = re.compile(r"(?m)^(第[一二三四五六七八九十百千零〇两\d]{1,8}[条章节编])[\u3000 ]")


@lru_cache(maxsize=None)
def _dev(rel: str) -> tuple[tuple[str, ...], tuple[Chunk, ...]]:
    text = (DEV / rel).read_text(encoding="utf-8")
    from index.document import Document
    return tuple(text.split("\n")), tuple(chunk_document(Document.of_text(text, "md"), rel))


@needs_dev
@pytest.mark.parametrize("rel", DEV_MD)
def test_dev_provenance_and_no_junk(rel):
    lines, chunks = _dev(rel)
    assert chunks
    for c in chunks:
        assert 1 <= c.line_start <= c.line_end <= len(lines), (rel, c.line_start, c.line_end)
        source = "".join(clean_line(line) for line in lines[c.line_start - 1:c.line_end])
        assert _squash(c.text) in _squash(source), (rel, c.line_start, c.text[:40])
        first, last = _squash(clean_line(lines[c.line_start - 1])), _squash(clean_line(lines[c.line_end - 1]))
        assert first and last, (rel, c.line_start, c.line_end)            # tight: no blank or junk line cited
        assert not DEV_JUNK.search(c.text), (rel, c.line_start, c.text[:60])
        unspaced = NUMBER_GAP.sub(r"\1", c.text)
        assert not SPACED_CJK.search(unspaced), (rel, c.line_start, SPACED_CJK.search(unspaced).group())
        assert len(c.text) <= round(1.25 * CONFIG.max_chars) or "\n" not in c.text, (rel, c.line_start)


@needs_dev
@pytest.mark.parametrize("rel", DEV_MD)
def test_dev_nothing_is_lost(rel):
    # Every line with Chinese text is inside a chunk, or is the title, a heading, or a dropped shape
    # (a contents list, a link line, a metadata line: none of them in this corpus carries content).
    lines, chunks = _dev(rel)
    covered = {n for c in chunks for n in range(c.line_start, c.line_end + 1)}
    meta = {_squash(s) for c in chunks for s in (c.title, c.publisher, *c.headings) if s}
    for no, raw in enumerate(lines, 1):
        rest = _squash(clean_line(raw))
        if no in covered or not re.search(f"[{CJK}]{{2}}", rest) or rest in ("目录", "中国共产党章程") \
                or re.fullmatch(r"\s*(?:\\?\[){2}https?://.*(?:\\?\]){2}\s*", raw):      # a download link line
            continue
        assert any(rest in m or m in rest for m in meta), (rel, no, raw[:40])

