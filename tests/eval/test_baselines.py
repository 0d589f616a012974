import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from eval.baselines import (
    BM25Baseline,
    DenseBaseline,
    corpus_windows,
    jieba_tokens,
    raw_text,
    split_text,
)

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora" / "dev"


# Expected outputs were produced by the real thing: langchain-text-splitters 1.1.3,
# RecursiveCharacterTextSplitter(chunk_size, chunk_overlap, separators=["\n\n", "\n", "。", ""]).
@pytest.mark.parametrize("text, size, overlap, want", [
    ("甲乙丙。丁戊己。庚辛壬。癸子丑。", 8, 3, ["甲乙丙。丁戊己", "。庚辛壬。癸子丑", "。"]),
    ("第一段第一行\n第一段第二行\n\n第二段很长很长很长很长很长很长很长很长", 10, 2,
     ["第一段第一行", "第一段第二行", "第二段很长很长很长", "很长很长很长很长很长", "很长很长"]),
    ("  前后空白  \n\n  中间  \n\n", 6, 0, ["前后空白", "中间"]),
    ("abcdefghijklmnopqrstuvwxyz", 10, 4, ["abcdefghij", "ghijklmnop", "mnopqrstuv", "stuvwxyz"]),
    ("短。\n\n" * 5, 7, 3, ["短。\n\n短。", "短。", "短。", "短。"]),
    ("一二三四五六七八九十。一二三四五六七八九十。\n一二三\n\n四五", 12, 5,
     ["一二三四五六七八九十", "。一二三四五六七八九十。", "一二三", "四五"]),
    ("", 10, 2, []),
])
def test_split_text_matches_langchain(text, size, overlap, want):
    assert split_text(text, size, overlap) == want


# Same oracle on the seed files at the baseline's settings (500/50): window count and a hash of the
# JSON list of windows.
@pytest.mark.parametrize("prefix, count, digest", [
    ("000", 16, "7d2fcc82ff0144a6"),
    ("001", 10, "f31bf2a1d422bf3b"),
    ("002", 17, "1aaba94bf692b21a"),
    ("003", 18, "64b1e5b7f617af3d"),
    ("004", 23, "c99ab1e2db0dd2f3"),
])
def test_split_seed_files_matches_langchain(prefix, count, digest):
    (path,) = SEEDS.glob(f"{prefix}_*")
    windows = split_text(path.read_text(encoding="utf-8"))
    assert len(windows) == count
    assert hashlib.sha256(json.dumps(windows, ensure_ascii=False).encode()).hexdigest()[:16] == digest
    assert all(len(w) <= 500 for w in windows)


def test_split_text_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap=10, size=10"):
        split_text("abc", 10, 10)


def test_corpus_windows_reads_sorted_files_and_skips_unreadable_ones(tmp_path):
    (tmp_path / "b.md").write_text("乙" * 30, encoding="utf-8")
    (tmp_path / "a.txt").write_text("甲", encoding="utf-8")
    (tmp_path / "skip.pdf").write_text("丙", encoding="utf-8")      # not a PDF: its loader fails, the file is skipped
    (tmp_path / "notes.csv").write_text("丁", encoding="utf-8")     # not a corpus type
    windows = corpus_windows(tmp_path)
    assert [w.source for w in windows] == ["a.txt", "b.md"]
    assert [w.text for w in windows] == ["甲", "乙" * 30]


def test_corpus_windows_empty_folder_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match="no .txt/.md/.pdf/.docx/.html/.htm files under"):
        corpus_windows(tmp_path)


def test_raw_text_of_html_is_the_visible_text_chrome_included(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>标题</title><style>p{color:red}</style></head><body>"
                    "<div>首页 | 登录</div><p>第一条　正文。</p><script>var a = 1;</script></body></html>",
                    encoding="utf-8")
    text = raw_text(page)
    assert "第一条　正文。" in text and "首页 | 登录" in text and "标题" in text
    assert "color" not in text and "var a" not in text


def test_raw_text_of_docx_has_paragraphs_and_table_cells(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("第一条　为了规范劳动合同，制定本法。")
    d.add_table(rows=1, cols=2).rows[0].cells[0].text = "表格里的字"
    d.save(tmp_path / "law.docx")
    assert raw_text(tmp_path / "law.docx").split("\n")[:2] == ["第一条　为了规范劳动合同，制定本法。", "表格里的字"]


def test_raw_text_of_a_real_pdf_keeps_its_page_furniture():
    pdf = DEV / "pdf" / "guofa_2025_11_rengongzhineng_jia.pdf"
    if not pdf.is_file():
        pytest.skip(f"the dev corpus is not at {DEV} (it lives beside the repository, in shared/corpora)")
    text = raw_text(pdf)
    assert "国务院关于深入实施“人工智能+”行动的意见" in text and "1/3" in text   # the footer stays: a raw baseline


def test_raw_text_names_the_file_it_cannot_read(tmp_path):
    (tmp_path / "broken.docx").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.docx: "):
        raw_text(tmp_path / "broken.docx")


@pytest.mark.parametrize("text, want", [
    ("国有企业党建工作", ["国有企业", "党建", "工作"]),   # default dictionary, no user words
    ("Party BUILDING", ["party", "building"]),           # lower-cased
    ("企\n\n业", ["企", "业"]),                          # raw text is not joined: that is the baseline
])
def test_jieba_tokens(text, want):
    assert jieba_tokens(text) == want


TINY = [
    "国有企业党建工作与生产经营深度融合。",
    "工会组织维护职工合法权益，被称为职工的娘家人。",
    "光伏电站的逆变器需要定期检修。",
    "党建考核与经营业绩考核有机结合，设置科学合理的考核指标。",
]


@pytest.mark.parametrize("question, best", [
    ("娘家人", 1),
    ("党建考核指标", 3),
    ("逆变器检修", 2),
    ("生产经营深度融合", 0),
])
def test_bm25_ranks_the_matching_window_first(question, best):
    got = BM25Baseline(TINY).search(question, 2)
    assert got[0] == TINY[best] and len(got) == 2


def test_bm25_unknown_words_return_k_windows_in_corpus_order():
    assert BM25Baseline(TINY).search("澳大利亚首都", 3) == TINY[:3]


def test_bm25_k_larger_than_corpus_returns_everything():
    assert sorted(BM25Baseline(TINY).search("党建", 10)) == sorted(TINY)


@pytest.mark.parametrize("question, k, message", [
    ("", 3, "question must be a non-empty string"),
    ("党建", 0, "k must be a positive integer, got 0"),
])
def test_search_validates(question, k, message):
    with pytest.raises(ValueError, match=message):
        BM25Baseline(TINY).search(question, k)


# Dense tests use the shared deterministic `fake_embedder` fixture (tests/conftest.py).
@pytest.mark.parametrize("question, best", [
    ("职工的娘家人是谁", 1),
    ("逆变器怎么检修", 2),
    ("党建考核指标如何设置", 3),
])
def test_dense_ranks_by_cosine(question, best, fake_embedder):
    got = DenseBaseline(TINY, fake_embedder).search(question, 4)
    assert got[0] == TINY[best] and sorted(got) == sorted(TINY)


def test_dense_encodes_windows_once_and_raw_question_per_search(fake_embedder):
    base = DenseBaseline(TINY, fake_embedder)
    base.search("娘家人", 1)
    base.search("逆变器", 1)
    # The embedder owns the "query: "/"passage: " prefixes; the baseline passes raw text.
    assert fake_embedder.encoded == TINY and fake_embedder.queries == ["娘家人", "逆变器"]


def test_dense_search_is_deterministic(fake_embedder):
    base = DenseBaseline(TINY, fake_embedder)
    assert base.search("工会组织维护职工合法权益", 3) == base.search("工会组织维护职工合法权益", 3)


@pytest.mark.parametrize("shape_of", [
    lambda n: (n + 1, 64),   # one row too many
    lambda n: (n * 64,),     # flat
])
def test_dense_rejects_documents_of_the_wrong_shape(fake_embedder, shape_of):
    class Broken:
        encode_queries = fake_embedder.encode_queries

        def encode_documents(self, texts):
            return np.zeros(shape_of(len(texts)), dtype=np.float32)

    with pytest.raises(ValueError, match="it must return one row per text"):
        DenseBaseline(TINY, Broken())


def test_dense_rejects_a_query_of_another_dimension(fake_embedder):
    class OtherQueries:
        encode_documents = fake_embedder.encode_documents

        def encode_queries(self, texts):
            return np.ones((len(texts), 8), dtype=np.float32)

    with pytest.raises(ValueError, match="query vector has dimension 8, windows have 64"):
        DenseBaseline(TINY, OtherQueries()).search("党建", 1)


def test_dense_caches_window_vectors_by_fingerprint_and_text(fake_embedder, tmp_path):
    first = DenseBaseline(TINY, fake_embedder, cache_dir=tmp_path)
    assert fake_embedder.encoded == TINY and len(list(tmp_path.glob("windows-*.npy"))) == 1
    again = DenseBaseline(TINY, fake_embedder, cache_dir=tmp_path)          # read back, not re-embedded
    assert fake_embedder.encoded == TINY
    assert again.search("娘家人", 2) == first.search("娘家人", 2)
    DenseBaseline(TINY[:2], fake_embedder, cache_dir=tmp_path)             # other windows: another key
    assert fake_embedder.encoded == TINY + TINY[:2] and len(list(tmp_path.glob("windows-*.npy"))) == 2


def test_dense_cache_ignores_a_damaged_file(fake_embedder, tmp_path):
    DenseBaseline(TINY, fake_embedder, cache_dir=tmp_path)
    (path,) = tmp_path.glob("windows-*.npy")
    path.write_bytes(b"garbage")
    DenseBaseline(TINY, fake_embedder, cache_dir=tmp_path)
    assert fake_embedder.encoded == TINY + TINY                             # embedded again
    assert np.load(path, allow_pickle=False).shape == (len(TINY), fake_embedder.dim)


def test_top_returns_indices_and_scores_best_first(fake_embedder):
    top = BM25Baseline(TINY).top("娘家人", 2)
    assert top[0][0] == 1 and top[0][1] > top[1][1]
    dense = DenseBaseline(TINY, fake_embedder).top("职工的娘家人是谁", 4)
    assert [i for i, _ in dense][0] == 1 and all(a[1] >= b[1] for a, b in zip(dense, dense[1:]))
