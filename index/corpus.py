"""The corpus folder -> decoded `.txt`/`.md` files, and the files that had to be skipped (with the reason).

Walk rules: hidden files and folders (`.name`) and other extensions are ignored; directory symlinks are followed
unless they lead back into a folder already visited (a loop); a file that cannot be used (empty, binary, not
decodable, unreadable) is skipped with a warning naming it, and the scan goes on.
Decoding: UTF-8 (with or without BOM), UTF-16 when it has a BOM, then GB18030 (a superset of GBK/GB2312, what
Chinese Windows tools write).
"""
from __future__ import annotations

import codecs
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from index.errors import CorpusError

log = logging.getLogger(__name__)

EXTENSIONS = (".txt", ".md")
_SNIFF = 8192            # bytes looked at for NUL bytes: text files have none, binaries almost always do


@dataclass(frozen=True, slots=True)
class SourceFile:
    rel: str          # path relative to the corpus root, '/'-separated
    path: Path
    text: str         # decoded; newlines as in the file
    sha256: str       # of the raw bytes


@dataclass(frozen=True, slots=True)
class Skipped:
    rel: str
    reason: str       # "empty file", "binary file", "cannot decode as UTF-8 or GB18030", "permission denied", …


def _read_bytes(path: Path) -> bytes:
    # One seam for tests: running as root, a chmod 000 file is still readable.
    return path.read_bytes()


def decode(data: bytes) -> str | None:
    """The text of a file's bytes, or None when it is not text in a supported encoding."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:_SNIFF]:
        return None
    for codec in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _load(rel: str, path: Path) -> SourceFile | Skipped:
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
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and b"\x00" in data[:_SNIFF]:
        return Skipped(rel, "binary file")
    text = decode(data)
    if text is None:
        return Skipped(rel, "cannot decode as UTF-8 or GB18030")
    if not text.strip():
        return Skipped(rel, "empty file")
    return SourceFile(rel, path, text, hashlib.sha256(data).hexdigest())


def _is_source(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(EXTENSIONS)


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
        raise CorpusError(f"corpus folder {root} does not exist; pass a folder of .txt/.md files (e.g. --corpus seeds)")
    if not root.is_dir():
        raise CorpusError(f"corpus {root} is a file, not a folder; pass the folder that holds the .txt/.md files")
    candidates, looked = _walk(root)
    if not candidates:
        raise CorpusError(f"no .txt/.md files under {root} (looked at {looked} files); "
                          f"add some or pass another folder")
    return candidates


def check_corpus(root: Path) -> None:
    """Raise the CorpusError a scan of `root` would raise for the folder itself: callers check before slow work."""
    _candidates(Path(root))


def scan_corpus(root: Path) -> tuple[list[SourceFile], list[Skipped]]:
    """Every usable `.txt`/`.md` file under `root` (sorted by rel) and the skipped ones (with a warning each)."""
    root = Path(root)
    candidates = _candidates(root)
    files: list[SourceFile] = []
    skipped: list[Skipped] = []
    for rel, path in sorted(candidates):
        got = _load(rel, path)
        if isinstance(got, Skipped):
            log.warning("skipping %s: %s", got.rel, got.reason)
            skipped.append(got)
        else:
            files.append(got)
    return files, skipped


def read_source(root: Path, rel: str) -> SourceFile | Skipped:
    """One file of the corpus by its rel path (for incremental builds)."""
    parts = PurePosixPath(rel).parts
    if not rel or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise CorpusError(f"file path {rel!r} must be relative to the corpus folder and stay inside it")
    if not _is_source(parts[-1]) or any(p.startswith(".") for p in parts):
        return Skipped(rel, "not a .txt/.md file (hidden files and other extensions are ignored)")
    got = _load(rel, Path(root).joinpath(*parts))
    if isinstance(got, Skipped):
        log.warning("skipping %s: %s", got.rel, got.reason)
    return got
