"""Reader speed and memory: text-layer PDF pages/s, OCR seconds/page, peak RSS, beside the .txt reader.

    python -m eval.bench_readers                 # writes eval/results/readers.md (2-4 min on 2 shared cores)
    python -m eval.bench_readers --ocr-pages 1 --out /tmp/r.md    # a smoke run

Each stage runs in its own process (`--stage NAME`), so the peak RSS it reports (resource.getrusage's
ru_maxrss) is that stage's own, interpreter and imports included:
  - txt:       the .txt/.md reader over seeds/ (and the dev corpus' text files when present), repeated;
  - pdf-text:  the PDF reader (text layer, layout, running lines) over the dev corpus' PDFs, repeated;
  - pdf-ocr:   OCR of image-only copies of dev PDF pages (rendered at the OCR resolution, stored as images),
               the model load timed separately;
  - scan-300:  a 300-page image-only PDF through the OCR path with the recognition stubbed out, so the figure
               is the render/free-one-page-at-a-time memory bound, not OCR time (300 real pages: ~15-40 min).
No cache is used: every figure is a first read. The dev corpus lives beside the repo (shared/corpora/dev); the
PDF stages are skipped with a note when it is absent.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV = REPO / ".." / "shared" / "corpora" / "dev"
OUT = REPO / "eval" / "results" / "readers.md"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def stage_txt(repeat: int) -> dict:
    from index.readers import ReadContext
    from index.readers import text

    files = sorted(REPO.glob("seeds/*.txt"))
    if DEV.is_dir():
        files += sorted(p for p in DEV.rglob("*") if p.suffix in (".txt", ".md"))
    blobs = [(p.suffix, p.read_bytes()) for p in files]
    chars = 0
    t = time.perf_counter()
    for _ in range(repeat):
        for suffix, data in blobs:
            chars += len(text.read(data, ReadContext(suffix=suffix)).text)
    dt = time.perf_counter() - t
    return {"files": len(blobs) * repeat, "chars": chars, "seconds": dt, "chars_per_s": chars / dt,
            "mb_per_s": sum(len(b) for _, b in blobs) * repeat / dt / 2 ** 20}


def stage_pdf_text(repeat: int) -> dict:
    from index.readers import ReadContext
    from index.readers import pdf

    files = sorted((DEV / "pdf").glob("*.pdf"))
    blobs = [p.read_bytes() for p in files]
    pages = lines = 0
    per_file = {}
    t = time.perf_counter()
    for _ in range(repeat):
        for path, data in zip(files, blobs):
            t0 = time.perf_counter()
            doc = pdf.read(data, ReadContext())
            per_file.setdefault(path.name, []).append((doc.n_pages, time.perf_counter() - t0))
            pages += doc.n_pages
            lines += len(doc.lines)
    dt = time.perf_counter() - t
    # The floor: pdfium alone loading each page and its text (get_text_range), none of the reader's work.
    import pypdfium2 as pdfium
    floor_pages = 0
    t = time.perf_counter()
    for _ in range(repeat):
        for data in blobs:
            doc = pdfium.PdfDocument(data)
            for i in range(len(doc)):
                page = doc[i]
                tp = page.get_textpage()
                tp.get_text_range()
                tp.close()
                page.close()
                floor_pages += 1
            doc.close()
    floor = floor_pages / (time.perf_counter() - t)
    return {"files": len(files), "pages": pages, "seconds": dt, "pages_per_s": pages / dt,
            "pdfium_text_range_pages_per_s": floor,
            "per_file": {k: {"pages": v[0][0], "pages_per_s": v[0][0] * len(v) / sum(s for _, s in v)}
                         for k, v in per_file.items()}}


def _image_copy(src: Path, pages: list[int], out: Path, dpi: int) -> Path:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(src))
    images = []
    try:
        for i in pages:
            page = pdf[i]
            images.append(page.render(scale=dpi / 72).to_pil().convert("RGB"))
            page.close()
    finally:
        pdf.close()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out


def stage_pdf_ocr(n_pages: int) -> dict:
    from index.readers import ReadContext
    from index.readers import ocr, pdf

    files = sorted((DEV / "pdf").glob("*.pdf"))
    with tempfile.TemporaryDirectory() as tmp:
        # pages from both files, alternating, so both layouts are in the figure
        picks = [(files[k % len(files)], k // len(files)) for k in range(n_pages)]
        scans = []
        for k, (src, page) in enumerate(picks):
            scans.append(_image_copy(src, [page], Path(tmp) / f"scan{k}.pdf", ocr.DPI))
        t = time.perf_counter()
        ocr.engine()
        load = time.perf_counter() - t
        # The oracle: the same page read through its text layer.
        layer = {src: pdf.read(src.read_bytes(), ReadContext()) for src in files}
        times, chars, agree = [], 0, []
        for scan, (src, page) in zip(scans, picks):
            t0 = time.perf_counter()
            doc = pdf.read(scan.read_bytes(), ReadContext())
            times.append(time.perf_counter() - t0)
            chars += sum(len(line) for line in doc.lines)
            assert doc.ocr_pages == (1,), doc.ocr_pages
            want = _squeeze(ln for ln, p in zip(layer[src].lines, layer[src].pages) if p == page + 1)
            agree.append(_in_order(want, _squeeze(doc.lines)))
    return {"pages": len(times), "model_load_s": load, "seconds_per_page": sum(times) / len(times),
            "min_s": min(times), "max_s": max(times), "chars": chars, "dpi": ocr.DPI, "threads": ocr.THREADS,
            "chars_in_order_vs_text_layer": sum(agree) / len(agree), "per_page_agreement": agree}


def _squeeze(lines) -> str:
    import re

    from index.normalize import clean_line
    return re.sub(r"\s+", "", "".join(clean_line(line) for line in lines))


def _in_order(want: str, got: str) -> float:
    """Share of `want`'s characters that `got` has in the same order (difflib's matching blocks)."""
    import difflib
    sm = difflib.SequenceMatcher(None, want, got, autojunk=False)
    return sum(b.size for b in sm.get_matching_blocks()) / max(1, len(want))


def stage_scan_300(n_pages: int) -> dict:
    from PIL import Image

    from index.readers import ReadContext
    from index.readers import ocr, pdf

    calls = []

    class Empty:
        boxes, txts, scores = None, (), ()

    def stub():
        def run(img):
            calls.append(img.shape)
            return Empty()
        return run

    ocr.engine = stub          # this process only: the bound measured is rendering and freeing, not the model
    dpi = 50
    w, h = round(8.27 * dpi), round(11.69 * dpi)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scan.pdf"
        pages = [Image.new("L", (w, h), 255) for _ in range(n_pages)]
        pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=dpi)
        del pages
        data = path.read_bytes()
    before = _rss_mb()
    t = time.perf_counter()
    doc = pdf.read(data, ReadContext())
    dt = time.perf_counter() - t
    shape = calls[0]
    return {"pages": len(doc.ocr_pages), "seconds": dt, "rss_before_mb": before, "rss_after_mb": _rss_mb(),
            "bitmap_mb": shape[0] * shape[1] * shape[2] / 2 ** 20, "bitmap_px": f"{shape[1]}x{shape[0]}"}


STAGES = {"txt": lambda a: stage_txt(a.repeat * 20), "pdf-text": lambda a: stage_pdf_text(a.repeat),
          "pdf-ocr": lambda a: stage_pdf_ocr(a.ocr_pages), "scan-300": lambda a: stage_scan_300(a.scan_pages)}


def _run_stage(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "eval.bench_readers", "--stage", name, "--repeat", str(args.repeat),
           "--ocr-pages", str(args.ocr_pages), "--scan-pages", str(args.scan_pages)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def render(results: dict, args: argparse.Namespace) -> str:
    txt, ptext, pocr, scan = (results.get(k, {}) for k in ("txt", "pdf-text", "pdf-ocr", "scan-300"))
    load = os.getloadavg()
    lines = [
        "# Reader speed and memory",
        "",
        f"`python -m eval.bench_readers` ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work, load average {results.get('load_average_at_start', 0):.1f} "
        f"at the start and {load[0]:.1f} at the end; Python "
        f"{platform.python_version()}). Each row is its own process; peak RSS includes the interpreter and "
        "imports. First reads, no cache.",
        "",
        "| reader | input | speed | peak RSS |",
        "|---|---|---|---|",
    ]

    def row(label, inp, speed, res):
        if "error" in res:
            lines.append(f"| {label} | {inp} | failed: {res['error']} | |")
        elif res:
            lines.append(f"| {label} | {inp} | {speed(res)} | {res['peak_rss_mb']:.0f} MB |")

    row(".txt/.md (index.readers.text)", f"seeds/ + dev text files, {txt.get('files', 0)} reads",
        lambda r: f"{r['chars_per_s'] / 1e6:.1f} M chars/s ({r['mb_per_s']:.0f} MB/s)", txt)
    row("PDF text layer (index.readers.pdf)", f"dev PDFs ({ptext.get('files', 0)} files), {ptext.get('pages', 0)} pages read",
        lambda r: f"{r['pages_per_s']:.0f} pages/s (" + ", ".join(
            f"{k}: {v['pages_per_s']:.0f}" for k, v in r["per_file"].items()) + "); pdfium's own page load + "
            f"get_text_range alone: {r['pdfium_text_range_pages_per_s']:.0f} pages/s", ptext)
    row("PDF OCR (index.readers.ocr, rapidocr PP-OCRv6 small)",
        f"{pocr.get('pages', 0)} image-only A4 pages at {pocr.get('dpi', '?')} dpi",
        lambda r: f"{r['seconds_per_page']:.1f} s/page (min {r['min_s']:.1f}, max {r['max_s']:.1f}; "
                  f"{r['threads']} threads; model load {r['model_load_s']:.1f} s once); "
                  f"{100 * r['chars_in_order_vs_text_layer']:.1f}% of the text layer's characters, in order", pocr)
    row("PDF OCR path, recognition stubbed", f"{scan.get('pages', 0)}-page scan, {scan.get('bitmap_px', '?')} px a page",
        lambda r: f"{r['pages'] / r['seconds']:.0f} pages/s render+free; RSS {r['rss_before_mb']:.0f} -> "
                  f"{r['rss_after_mb']:.0f} MB (one bitmap: {r['bitmap_mb']:.1f} MB)", scan)
    lines += [
        "",
        "Notes:",
        "- The text-layer figure covers the whole reader: characters and boxes from pdfium, runs, column layout, "
        "running header/footer removal, character folding, metadata.",
        "- OCR time is dominated by rapidocr's detection and recognition on 2 shared cores; it is paid once per "
        "page, since pages are cached by the file's sha256 (`<cache>/ocr/<sha256>/page-NNNN.json`).",
        "- The 300-page row shows the memory bound of the OCR path: RSS after reading all pages stays within a few "
        "bitmaps of the start, because each page is rendered, recognised and freed before the next.",
        "",
        "Raw numbers:",
        "",
        "```json",
        json.dumps(results, indent=1, ensure_ascii=False),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=sorted(STAGES), help="run one stage in this process and print JSON")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the dev PDFs (txt: 20x this)")
    ap.add_argument("--ocr-pages", type=int, default=4, help="image-only pages to OCR")
    ap.add_argument("--scan-pages", type=int, default=300, help="pages of the stubbed-OCR memory run")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.stage:
        res = STAGES[args.stage](args)
        res["peak_rss_mb"] = _peak_mb()
        print(json.dumps(res))
        return 0
    results = {"load_average_at_start": round(os.getloadavg()[0], 1)}
    for name in ("txt", "pdf-text", "pdf-ocr", "scan-300"):
        if name != "txt" and not (DEV / "pdf").is_dir():
            results[name] = {"error": f"no dev corpus at {DEV.resolve()}"}
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = _run_stage(name, args)
        print(f"      {json.dumps(results[name])[:300]}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, args), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
