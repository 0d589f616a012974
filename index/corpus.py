"""The corpus folder -> one `Document` per readable file, and the files that had to be skipped (with the reason).

Walk rules: hidden files and folders (`.name`) are ignored; directory symlinks are followed unless they lead back
into a folder already visited (a loop); every other file is read by the reader for its type (`index.readers`:
.txt/.md, .pdf, .docx, .html/.htm). A file that cannot be used (unsupported type, empty, binary, not decodable,
encrypted or corrupt, unreadable) is skipped with a warning naming it and the reason, and the scan goes on.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from index.document import Document
from index.errors import CorpusError
from index.readers import SUPPORTED, ReadContext, Unreadable, read_document, reader_name
from index.readers.text import decode  # noqa: F401  (re-exported: the corpus' decoding rules)

log = logging.getLogger(__name__)

EXTENSIONS = SUPPORTED


@dataclass(frozen=True, slots=True)
class SourceFile:
    rel: str          # path relative to the corpus root, '/'-separated
    path: Path
    document: Document
    sha256: str       # of the raw bytes

    @property
    def text(self) -> str:
        """The document's text, lines joined by newlines (for .txt/.md: the decoded file as it is)."""
        return self.document.text


@dataclass(frozen=True, slots=True)
class Skipped:
    rel: str
    reason: str       # "empty file", "binary file", "cannot decode as UTF-8 or GB18030", "permission denied", …


def _read_bytes(path: Path) -> bytes:
    # One seam for tests: running as root, a chmod 000 file is still readable.
    return path.read_bytes()


def _load(rel: str, path: Path, cache_dir: Path | None = None, progress: bool = False,
          on_progress=None) -> SourceFile | Skipped:
    if path.is_symlink() and not path.exists():
        return Skipped(rel, "broken symlink")
    if path.exists() and not path.is_file():
        return Skipped(rel, "not a regular file")     # a FIFO or device would block or never end
    try:
        data = _read_bytes(path)
    except PermissionError:
        return Skipped(rel, "permission denied")
    except FileNotFoundError:
        return Skipped(rel, "file not found (a broken symlink?)")
    except IsADirectoryError:
        return Skipped(rel, "is a directory")
    except OSError as err:
        return Skipped(rel, f"cannot read: {err.strerror or err}")
    if not data.strip():
        return Skipped(rel, "empty file")
    sha = hashlib.sha256(data).hexdigest()
    ctx = ReadContext(sha, cache_dir, progress, path.suffix.lower(), on_progress)
    try:
        doc = read_document(rel, data, ctx)
    except Unreadable as e:
        return Skipped(rel, str(e))
    except MemoryError:
        return Skipped(rel, "too large to read in memory")
    except Exception as e:     # a reader library's own bug must not stop the build: name the file, go on
        log.debug("reader failed on %s", rel, exc_info=True)
        return Skipped(rel, f"cannot read: {type(e).__name__}: {e}"[:200])
    return SourceFile(rel, path, doc, sha)


def _is_source(name: str) -> bool:
    # Every visible file is a candidate: one of an unsupported type is listed as skipped, not silently ignored.
    return not name.startswith(".")


def _walk(root: Path) -> tuple[list[tuple[str, Path]], int]:
    """(rel, path) of every candidate file under `root`, and how many files were looked at in all."""
    found: list[tuple[str, Path]] = []
    looked = 0
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, rel: PurePosixPath) -> None:
        nonlocal looked
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:         # a symlink back into a folder on the current path or already walked
            log.warning("not following %s: it leads to a folder already scanned (symlink loop or duplicate)", rel or ".")
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError:
            log.warning("skipping folder %s: permission denied", rel or ".")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = rel / entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                visit(Path(entry.path), child)
                continue
            looked += 1
            if _is_source(entry.name):
                found.append((child.as_posix(), Path(entry.path)))

    visit(root, PurePosixPath())
    return found, looked


def _candidates(root: Path) -> list[tuple[str, Path]]:
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist; pass a folder of documents (e.g. --corpus seeds)")
    if not root.is_dir():
        raise CorpusError(f"corpus {root} is a file, not a folder; pass the folder that holds the documents")
    candidates, looked = _walk(root)
    if not any(reader_name(rel) for rel, _ in candidates):
        raise CorpusError(f"no {'/'.join(s.lstrip('.') for s in SUPPORTED)} files under {root} "
                          f"(looked at {looked} files); add some or pass another folder")
    return candidates


def check_corpus(root: Path) -> None:
    """Raise the CorpusError a scan of `root` would raise for the folder itself: callers check before slow work."""
    _candidates(Path(root))


def scan_corpus(root: Path, cache_dir: Path | None = None, progress: bool = False, on_progress=None,
                ) -> tuple[list[SourceFile], list[Skipped]]:
    """Every readable file under `root` (sorted by rel) and the skipped ones (with a warning each).

    `cache_dir` keeps what the slow readers made (PDF text, OCR pages) by the file's sha256; `progress` shows
    their progress bars; `on_progress(stage, done, total)`, when given, is told "reading" per file (and
    whatever the readers report, e.g. OCR pages).
    """
    root = Path(root)
    candidates = _candidates(root)
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    candidates = sorted(candidates)
    for n, (rel, path) in enumerate(candidates):
        if on_progress:
            on_progress("reading", n, len(candidates))
        got = _load(rel, path, cache_dir, progress, on_progress)
        if isinstance(got, Skipped):
            log.warning("skipping %s: %s", got.rel, got.reason)
            skipped.append(got)
        else:
            files.append(got)
    if on_progress:
        on_progress("reading", len(candidates), len(candidates))
    return files, skipped


def read_source(root: Path, rel: str, cache_dir: Path | None = None) -> SourceFile | Skipped:
    """One file of the corpus by its rel path (for incremental builds)."""
    parts = PurePosixPath(rel).parts
    if not rel or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise CorpusError(f"file path {rel!r} must be relative to the corpus folder and stay inside it")
    if not _is_source(parts[-1]) or any(p.startswith(".") for p in parts):
        return Skipped(rel, "hidden file (names starting with '.' are ignored)")
    got = _load(rel, Path(root).joinpath(*parts), cache_dir)
    if isinstance(got, Skipped):
        log.warning("skipping %s: %s", got.rel, got.reason)
    return got
