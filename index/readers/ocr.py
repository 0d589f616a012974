"""OCR of PDF pages without a usable text layer: rapidocr on onnxruntime, with the models inside rapidocr's wheel.

- Models: the detection, recognition and orientation .onnx files in the installed `rapidocr/models/` folder,
  passed to rapidocr by path, so it never looks for (or downloads) anything else; the recognition model carries
  its own character list. A missing model file makes the page unreadable with the reason, it is not fetched.
- Output: one `index.readers.pdf.Run` per detected text line, in PDF points, so OCR lines go through the same
  column layout as the text layer.
- Cache: per page, `ctx.cache_dir / "ocr" / <sha256> / "page-0001.json"` (JSON: boxes, text, score), written to
  a temporary file and renamed into place; a rebuild reads it back and never repeats OCR of an unchanged file.
- Memory: one page is rendered, recognised and freed (bitmap and page closed) before the next, so a 300-page
  scan needs one page's bitmap at a time.
- Progress: a tqdm bar by page on stderr when `ctx.progress`; `ctx.on_progress("ocr", done, total)` by page.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from index.readers import ReadContext, Unreadable

log = logging.getLogger(__name__)

OCR_VERSION = 2          # bump when the boxes made for the same page change (models, DPI, rules): caches re-OCR
DPI = 150                # rapidocr scales anything over 2000 px down anyway (Global.max_side_len); A4 at 150 dpi fits
MAX_SIDE = 2000          # pixels: a poster-sized page is rendered smaller instead of into a huge bitmap
DET_SIDE = 1280          # pixels of the longer side that text detection works on
MIN_SCORE = 0.5          # recognition confidence below which a line is noise (specks, stamps)
THREADS = max(1, min(2, os.cpu_count() or 1))

MODELS = {"Det.model_path": "PP-OCRv6_det_small.onnx", "Rec.model_path": "PP-OCRv6_rec_small.onnx",
          "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}

_engine = None
_lock = threading.Lock()


def model_dir() -> Path:
    import rapidocr
    return Path(rapidocr.__file__).resolve().parent / "models"


def new_engine():
    """A rapidocr engine on the wheel's own model files; Unreadable when one is missing (never downloaded)."""
    from rapidocr import RapidOCR

    params: dict = {"Global.log_level": "error",
                    # Scans are upright; the orientation classifier would cost a pass over every line.
                    "Global.use_cls": False,
                    # Detection on the page scaled to 1280 px (rapidocr's default scales it up to >= 736 px on the
                    # short side, i.e. runs on all 1240x1754): 3x faster detection, same characters recognised
                    # on a dev page (recognition works on crops of the full-resolution render either way).
                    "Det.limit_type": "max", "Det.limit_side_len": DET_SIDE,
                    "EngineConfig.onnxruntime.intra_op_num_threads": THREADS,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1}
    for key, name in MODELS.items():
        path = model_dir() / name
        if not path.is_file():
            raise Unreadable(f"page needs OCR but the rapidocr model {name} is missing from {path.parent}")
        params[key] = str(path)
    ocr = RapidOCR(params=params)
    # rapidocr 3.10 loads each model on first use; load detection and recognition now, so a broken install
    # fails here, on the first page that needs OCR, rather than half-way through a scan.
    for load in ("_load_det_model", "_load_rec_model"):
        if hasattr(ocr, load):
            getattr(ocr, load)()
    return ocr


def engine():
    """The process' one OCR engine (loaded on the first page that needs it)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = new_engine()
        return _engine


def recognize(page, ocr=None) -> list[dict]:
    """Text lines of one pdfium page as dicts {text, x0, top, x1, bottom, score} in PDF points (top-down)."""
    width, height = page.get_width(), page.get_height()
    scale = DPI / 72
    if max(width, height) * scale > MAX_SIDE:
        scale = MAX_SIDE / max(width, height)
    bitmap = page.render(scale=scale)
    try:
        result = (ocr or engine())(bitmap.to_numpy())
        boxes = [] if result.boxes is None else result.boxes.tolist()
        texts, scores = list(result.txts or ()), list(result.scores or ())
    finally:
        bitmap.close()
    out = []
    for box, text, score in zip(boxes, texts, scores):
        text = " ".join(str(text).split())
        if not text or score < MIN_SCORE:
            continue
        xs, ys = [pt[0] for pt in box], [pt[1] for pt in box]
        out.append({"text": text, "x0": min(xs) / scale, "top": min(ys) / scale, "x1": max(xs) / scale,
                    "bottom": max(ys) / scale, "score": round(float(score), 4)})
    return out


def _cache_file(ctx: ReadContext, page_index: int) -> Path | None:
    if ctx.cache_dir is None or not ctx.sha256:
        return None
    return Path(ctx.cache_dir) / "ocr" / ctx.sha256 / f"page-{page_index + 1:04d}.json"


def cached(ctx: ReadContext, page_index: int) -> list[dict] | None:
    path = _cache_file(ctx, page_index)
    if path is None or not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("ocr_version") != OCR_VERSION:
            return None
        boxes = d["boxes"]
        for b in boxes:
            b["text"], b["x0"], b["top"], b["x1"], b["bottom"] = (str(b["text"]), float(b["x0"]), float(b["top"]),
                                                                  float(b["x1"]), float(b["bottom"]))
        return boxes
    except (OSError, ValueError, KeyError, TypeError) as e:     # a damaged entry is OCRed again, not fatal
        log.info("ignoring the cached OCR page %s: %s", path, e)
        return None


def store(ctx: ReadContext, page_index: int, boxes: Sequence[dict]) -> None:
    path = _cache_file(ctx, page_index)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
        tmp.write_text(json.dumps({"ocr_version": OCR_VERSION, "dpi": DPI, "page": page_index + 1,
                                   "boxes": list(boxes)}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:            # a read-only cache only costs OCR again next time
        log.info("cannot cache the OCR of page %d in %s: %s", page_index + 1, path, e)


def ocr_pages(pdf, wanted: Sequence[int], ctx: ReadContext) -> Iterator[tuple[int, list]]:
    """(page index, runs) for each wanted page of an open pdfium document, from the cache or by OCR."""
    from tqdm import tqdm

    from index.readers.pdf import Run

    bar = tqdm(total=len(wanted), desc="OCR", unit="page", file=sys.stderr, disable=not ctx.progress,
               leave=False)
    tell = getattr(ctx, "on_progress", None)     # a UI's progress bar: pages done of the pages to OCR
    try:
        for n, p in enumerate(wanted):
            if tell:
                tell("ocr", n, len(wanted))
            boxes = cached(ctx, p)
            if boxes is None:
                page = pdf[p]
                try:
                    boxes = recognize(page)
                except Unreadable:
                    raise
                except Exception as e:     # one page the engine chokes on costs that page, not the file
                    log.warning("OCR failed on page %d: %s: %s", p + 1, type(e).__name__, e)
                    boxes = None
                finally:
                    page.close()
                if boxes is None:
                    bar.update(1)
                    if tell:
                        tell("ocr", n + 1, len(wanted))
                    yield p, []
                    continue
                store(ctx, p, boxes)
            bar.update(1)
            if tell:
                tell("ocr", n + 1, len(wanted))
            yield p, [Run(b["text"], b["x0"], b["top"], b["x1"], b["bottom"]) for b in boxes]
    finally:
        bar.close()
