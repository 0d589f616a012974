"""Each index calibrates "not found" against itself.

A fixed support threshold does not transfer: a larger or denser corpus holds some passage fairly close to any
question, so the best support of a question it cannot answer rises with it, and a threshold fit on one corpus
answers another's unanswerable questions. Instead each index asks itself a fixed bank of probe questions that
no policy corpus answers (off-topic ones, and near-topic ones: policy questions about other fields) and takes
a high quantile of their best supports, plus a margin, as its threshold: a question must be better supported
than what this very corpus gives a question it cannot answer. The quantile and margin are fit
leave-one-corpus-out (eval/tune.py).

The probe supports are computed once per index (about one second with the real model: one batched encode, a
ranking per probe) and cached as JSON in the index folder (calibration.json), keyed by the manifest, the model, the probes
and the knobs that shape support.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from assistant import dictionary, evidence, query, retrieve

log = logging.getLogger("assistant")

# Written for this purpose, not taken from any question set. Chinese and English apart: English questions have
# their own support scale (no shared terms, lower cross-lingual cosines).
PROBES_ZH = (
    # off-topic
    "红烧肉怎么做才好吃？", "2022年世界杯足球赛的冠军是哪支球队？", "如何给家里的猫修剪指甲？",
    "太阳系中最大的行星是哪一颗？", "Python 中如何读取一个 CSV 文件？", "感冒发烧时应该吃什么药？",
    "去西藏旅游需要注意哪些高原反应？", "钢琴初学者每天应该练习多长时间？", "如何在阳台上种植番茄？",
    "智能手机电池不耐用怎么办？", "唐诗《静夜思》的作者是谁？", "马拉松比赛前一周应该怎样训练？",
    "如何清洗羽绒服而不损坏填充物？", "量子计算机的工作原理是什么？", "婴儿几个月可以开始添加辅食？",
    "冬季如何预防汽车玻璃起雾？", "围棋的基本规则是什么？", "咖啡豆的烘焙程度如何影响口味？",
    # near-topic: public policy, but other fields
    "个人所得税专项附加扣除中子女教育每月可以扣除多少？", "新能源汽车免征车辆购置税的政策延续到哪一年？",
    "城镇职工基本医疗保险住院费用的报销比例是多少？", "住房公积金贷款的最高额度是多少万元？",
    "农村宅基地使用权能否由城镇居民继承？", "外商投资准入负面清单限制哪些行业？",
    "食品生产许可证的申请需要提交哪些材料？", "碳排放权交易市场的配额是如何分配的？",
    "网约车驾驶员需要具备哪些从业条件？", "商品房预售资金监管账户如何使用？",
    "小规模纳税人增值税的起征点是多少？", "医疗器械注册证的有效期是几年？",
    "义务教育阶段学生课后服务的收费标准是多少？", "出口退税的办理流程和时限是怎样的？",
    "高速公路节假日免费通行的车型范围是什么？", "大学生创业可以申请多少额度的担保贷款？",
    "耕地占用税的适用税额是多少？", "跨省异地就医直接结算需要办理哪些备案手续？",
)
PROBES_EN = (
    # off-topic
    "How do I bake sourdough bread at home?", "Who won the 2018 FIFA World Cup?",
    "What is the boiling point of water at high altitude?", "How can I improve my marathon time?",
    "What is the best way to learn to play the guitar?", "How do vaccines train the immune system?",
    "How do I reset a forgotten Wi-Fi router password?", "Which planets in the solar system have rings?",
    "How long should a puppy sleep each day?", "What causes the northern lights?",
    # near-topic: public policy, but other fields
    "What is the annual cap on the individual income tax deduction for children's education?",
    "How is the carbon emission allowance allocated in the national carbon market?",
    "What documents are needed to apply for a food production licence?",
    "How long is a medical device registration certificate valid?",
    "What is the VAT threshold for small-scale taxpayers?",
    "Which industries are restricted by the negative list for foreign investment?",
    "What conditions must a ride-hailing driver meet?",
    "How does cross-province direct settlement of medical bills work?",
    "What subsidies are available for purchasing new energy vehicles?",
    "How are housing provident fund loan limits calculated?",
)
# 2: English support from glossary concepts (assistant/evidence.py); the glossary is in the key.
# 3: English support counts the title's terms as held; CC-CEDICT terms in English BM25 (its file is in the key).
VERSION = 3


def probe_supports(index: retrieve.LoadedIndex, embedder, cfg: query.AskConfig,
                   allowed: np.ndarray | None = None, trace=None) -> dict[str, list[float]]:
    """Best support of each probe over this index (optionally only over the rows `allowed`), per script.

    The probes go through the same stages as a question (encode, rank, collapse, evidence), top_k passages.
    """
    out: dict[str, list[float]] = {}
    for script, probes in (("zh", PROBES_ZH), ("en", PROBES_EN)):
        vectors = np.asarray(embedder.encode_queries([query.model_text(p, cfg) for p in probes]), dtype=np.float32)
        best = []
        for text, vec in zip(probes, vectors):
            q = query.build(text, vec, index.tokenizer, cfg, top_k=cfg.top_k, allowed=allowed)
            _, ids = retrieve.rank(index, q, cfg, trace)
            kept = retrieve.collapse(index, ids, cfg.top_k, cfg)
            best.append(max((evidence.assess(index, int(i), q, cfg).support for i in kept), default=0.0))
        out[script] = best
    return out


def thresholds_from(supports: dict[str, list[float]], cfg: query.AskConfig) -> evidence.Thresholds:
    """The index's own thresholds: a quantile of its probe supports (cfg.probe_quantile, _latin) plus the margin,
    per script."""
    zh = float(np.quantile(supports["zh"], cfg.probe_quantile)) + cfg.probe_margin
    en = float(np.quantile(supports["en"], cfg.probe_quantile_latin)) + cfg.probe_margin_latin
    n = len(supports["zh"]) + len(supports["en"])
    return evidence.Thresholds(zh, en, cfg.high_margin, f"self-calibrated ({n} probes)")


def _support_knobs(cfg: query.AskConfig) -> dict:
    """The knobs that change a probe's support (not the quantile and margin, applied afterwards)."""
    d = asdict(cfg)
    for k in ("probe_quantile", "probe_quantile_latin", "probe_margin", "probe_margin_latin", "found_support",
              "found_support_latin", "high_margin", "self_calibrate", "named_document_check", "structural_found",
              "max_top_k", "max_question_chars"):
        d.pop(k, None)
    return d


def cache_key(index: retrieve.LoadedIndex, embedder, cfg: query.AskConfig) -> str:
    blob = json.dumps({"version": VERSION, "manifest": index.stored.manifest, "model": getattr(embedder, "fingerprint", ""),
                       "probes": [PROBES_ZH, PROBES_EN], "knobs": _support_knobs(cfg),
                       # English probes are read through the glossary: a new line changes their support
                       "glossary": hashlib.sha256(Path(query.GLOSSARY).read_bytes()).hexdigest(),
                       "dictionary": dictionary.fingerprint()},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def cache_path(index_dir: Path) -> Path:
    """In the index folder beside CURRENT: the store's prune only removes `gen-*` and `.tmp-*` entries, and a
    reader is never sent outside the index folder and the corpus."""
    return Path(index_dir) / "calibration.json"


def thresholds_for(index: retrieve.LoadedIndex, embedder, cfg: query.AskConfig,
                   index_dir: Path | None) -> evidence.Thresholds:
    """This index's thresholds, from the cached probe supports when the cache matches, else computed (and cached
    where the folder is writable; a read-only place only costs the computation at every open)."""
    key = cache_key(index, embedder, cfg)
    path = cache_path(index_dir) if index_dir is not None else None
    supports = None
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("key") == key:
                supports = {"zh": [float(x) for x in data["zh"]], "en": [float(x) for x in data["en"]]}
        except (OSError, ValueError, KeyError, TypeError):
            supports = None          # a damaged cache is recomputed, never trusted
    if supports is None:
        supports = probe_supports(index, embedder, cfg)
        if path is not None:
            try:
                tmp = path.with_name(f".tmp-calibration-{os.getpid()}")     # a dead one is pruned by the store
                tmp.write_text(json.dumps({"key": key, **supports}, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, path)
            except OSError as e:
                log.info("calibration not cached (%s); it is recomputed at the next open", e)
    return thresholds_from(supports, cfg)
