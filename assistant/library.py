"""The document library: list what the index holds, add files to the corpus, remove them; with upload safety.

The UI and the CLI are thin layers over these functions (through the `Assistant` methods of the same names).

    documents(a)                            # [DocumentInfo], one per indexed file, in file order
    document(a, "x.pdf")                    # DocumentDetail: the metadata the reader found + chunks in reading order
    add_documents(a, ["new.pdf"])           # checked, copied into the corpus, re-indexed: AddReport
    remove_document(a, "x.pdf")             # moved out of the corpus, re-indexed: RemoveReport

Safety (every check happens before a byte reaches the corpus folder):
- size: per file and per request (`UploadLimits`); a path's size is looked at before it is read;
- type by content, not by name: PDF starts with %PDF, DOCX is a zip holding word/document.xml, HTML/TXT/MD
  decode as text without NUL bytes; an executable (ELF, MZ, Mach-O) is refused whatever it is called;
- names: a bare file name (no folder, no `..`, not hidden, no control characters, a supported ending); the
  target must be a regular file inside the corpus folder, never a symlink or anything outside it;
- the document is read (the same reader as the index, its result cached by sha256) before it is copied, so an
  unreadable file is refused with its reason and never lands in the corpus;
- writes are atomic: a hidden temporary file (the corpus scan ignores names starting with '.') renamed into
  place; a replaced file is kept as a hidden backup until the new index is live. If the re-index fails or is
  interrupted, the corpus is put back as it was, so it matches the index that is still live; after a crash the
  next library operation finishes or undoes what was left (`_recover`).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from index.build import BuildReport
from index.chunk import Chunk
from index.document import DocMeta, Document
from index.errors import AssistantError, CorpusError
from index.readers import SUPPORTED, ReadContext, Unreadable, read_document, reader_name
from index.readers.text import decode

log = logging.getLogger(__name__)

MB = 1024 * 1024
Progress = Callable[[str, int, int], None]

# Hidden names (the corpus scan skips them): an upload being written, a replaced file kept until the new
# index is live, a removed file kept until the index without it is live.
_UPLOAD, _BACKUP, _REMOVED = ".pa-upload-", ".pa-backup-", ".pa-removed-"
_RESERVED = set('<>:"|?*')             # not allowed in Windows names; replaced so a corpus can be copied there
_MAX_NAME_CHARS = 150
_EXECUTABLE = (b"\x7fELF", b"MZ", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
               b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")
_KIND_OF_SUFFIX = {".pdf": "pdf", ".docx": "docx", ".txt": "text", ".md": "text", ".html": "text",
                   ".htm": "text"}
_KIND_LABEL = {"pdf": "a PDF", "docx": "a Word document", "text": "text", "zip": "a zip archive",
               "executable": "an executable program", "binary": "binary data"}


class UploadError(AssistantError):
    """A file cannot be added (its name, size or content); the message says which and why."""


class NameClashError(AssistantError):
    """Files of these names are already in the corpus; add again with replace=True to overwrite them."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)
        super().__init__(f"already in the library: {', '.join(self.names)}; "
                         "pass replace=True (CLI: --replace) to replace them")


class UnknownDocumentError(AssistantError):
    """A name that is not a document of the library."""


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_file_bytes: int = 100 * MB       # one file
    max_request_bytes: int = 500 * MB    # one add_documents call (one upload in the UI)
    max_files: int = 100                 # files in one call

    @classmethod
    def of_mb(cls, per_file_mb: float, per_request_mb: float | None = None) -> "UploadLimits":
        per_request = per_request_mb if per_request_mb is not None else 5 * per_file_mb
        if per_file_mb <= 0 or per_request < per_file_mb:
            raise UploadError(f"upload limits must be positive with the request limit >= the file limit, got "
                              f"{per_file_mb} MB per file and {per_request} MB per request")
        return cls(int(per_file_mb * MB), int(per_request * MB))


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One indexed file, as the library lists it."""
    name: str                   # path relative to the corpus folder: what remove_document takes
    title: str                  # of its first article ("" when the parser found none)
    authors: tuple[str, ...]
    genre: str                  # segment kind of its first article: article / notice / regulation / news / web / …
    format: str                 # txt / md / pdf / docx / html
    date: str
    pages: int                  # pages of a paged format (PDF), else 0
    chunks: int
    articles: int
    title_is_fallback: bool = False
    ocr_pages: int = 0          # pages read by OCR (when the reader's cached document says so)

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "authors": list(self.authors), "genre": self.genre,
                "format": self.format, "date": self.date, "pages": self.pages, "chunks": self.chunks,
                "articles": self.articles, "title_is_fallback": self.title_is_fallback,
                "ocr_pages": self.ocr_pages}

    def matches(self, text: str) -> bool:
        """The filter box: every word of `text` appears in the name, title, authors, genre, format or date."""
        hay = " ".join([self.name, self.title, *self.authors, self.genre, self.format, self.date]).lower()
        return all(w in hay for w in text.lower().split())


@dataclass(frozen=True, slots=True)
class DocumentDetail:
    info: DocumentInfo
    meta: DocMeta               # what the reader found in the file itself (PDF info, DOCX properties, <title>)
    chunks: tuple[Chunk, ...]   # in reading order


@dataclass(frozen=True, slots=True)
class Refused:
    name: str
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class AddReport:
    added: tuple[str, ...]              # names now in the corpus and the index (replaced ones included)
    replaced: tuple[str, ...]
    refused: tuple[Refused, ...]        # with the reason; nothing of them was written
    build: BuildReport | None = None    # None when nothing was added

    def summary(self) -> str:
        parts = []
        if self.added:
            parts.append(f"added {len(self.added)}: {', '.join(self.added)}"
                         + (f" (replaced {', '.join(self.replaced)})" if self.replaced else ""))
        if self.refused:
            parts.append(f"refused {len(self.refused)}: " + "; ".join(f"{r.name}: {r.reason}" for r in self.refused))
        return "; ".join(parts) or "nothing to add"

    def to_dict(self) -> dict:
        return {"added": list(self.added), "replaced": list(self.replaced),
                "refused": [r.to_dict() for r in self.refused],
                "build": self.build.summary() if self.build else None}


@dataclass(frozen=True, slots=True)
class RemoveReport:
    removed: str
    build: BuildReport

    def to_dict(self) -> dict:
        return {"removed": self.removed, "build": self.build.summary()}


# ---------------------------------------------------------------- checks (pure, no corpus access)
def sanitize_name(name: str) -> str:
    """A safe bare file name for `name`, or UploadError saying why it cannot be one."""
    if not isinstance(name, str):
        raise UploadError(f"a file name must be text, got {type(name).__name__}")
    raw = name
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise UploadError("empty file name")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UploadError(f"file name {raw!r} contains a folder; only bare file names can be added")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise UploadError(f"file name {raw!r} contains control or invisible characters")
    if name.startswith("."):
        raise UploadError(f"file name {raw!r} is hidden (starts with '.'); hidden files are not indexed")
    name = "".join("_" if ch in _RESERVED else ch for ch in name)
    suffix = PurePosixPath(name).suffix.lower()
    if reader_name(name) is None:
        raise UploadError(f"{raw!r}: unsupported type ({suffix or 'no extension'}); "
                          f"readable: {', '.join(SUPPORTED)}")
    stem = name[: -len(suffix)]
    if len(stem) > _MAX_NAME_CHARS:
        name = stem[:_MAX_NAME_CHARS] + name[-len(suffix):]
    return name


def content_kind(data: bytes) -> str:
    """What the bytes are, whatever the file is called: pdf / docx / zip / executable / text / binary."""
    if data.startswith(_EXECUTABLE):
        return "executable"
    if data.lstrip(b" \t\r\n\x0c").startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return "docx" if "word/document.xml" in z.namelist() else "zip"
        except (zipfile.BadZipFile, OSError, ValueError):
            return "binary"
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and b"\x00" in data:
        return "binary"
    return "text" if decode(data) is not None else "binary"


def check_content(name: str, data: bytes) -> None:
    """UploadError unless `data` is what the ending of `name` promises (and not empty, not an executable)."""
    if not data:
        raise UploadError(f"{name}: empty file (0 bytes)")
    kind = content_kind(data)
    if kind == "executable":
        raise UploadError(f"{name}: refused, the content is an executable program")
    want = _KIND_OF_SUFFIX[PurePosixPath(name).suffix.lower()]
    if kind != want:
        raise UploadError(f"{name}: the content is {_KIND_LABEL[kind]}, not {_KIND_LABEL[want]} "
                          f"as the name says")
    if kind == "text" and not decode(data).strip():
        raise UploadError(f"{name}: empty file (only white space)")


# ---------------------------------------------------------------- listing
def documents(assistant) -> list[DocumentInfo]:
    """Every indexed file with its title, authors, genre, format, date, pages and chunk count (file order)."""
    snap = assistant._snapshot
    return [_info(assistant, name, [snap.stored.chunks[i] for i in rows.tolist()])
            for name, rows in sorted(snap.by_source.items())]


def skipped(assistant) -> list[Refused]:
    """Files of the corpus the index could not use, with the reason (from the live manifest)."""
    items = assistant.manifest.get("corpus", {}).get("skipped", {})
    return [Refused(k, v) for k, v in sorted(items.items())]


def document(assistant, name: str) -> DocumentDetail:
    """One indexed file: its listing, the metadata its reader found, and its chunks in reading order."""
    snap = assistant._snapshot
    rows = snap.by_source.get(name) if isinstance(name, str) else None
    if rows is None:
        raise UnknownDocumentError(_unknown(name, snap.by_source))
    chunks = sorted((snap.stored.chunks[i] for i in rows.tolist()), key=lambda c: (c.article, c.line_start))
    facts = _facts(assistant, name)
    return DocumentDetail(_info(assistant, name, chunks), facts[2] if facts else _meta_of(chunks[0]),
                          tuple(chunks))


def _info(assistant, name: str, chunks: list[Chunk]) -> DocumentInfo:
    first = min(chunks, key=lambda c: (c.article, c.line_start))
    facts = _facts(assistant, name) if first.format in ("pdf", "docx", "html") else None
    pages = facts[0] if facts and facts[0] else max(c.page_end for c in chunks)
    return DocumentInfo(name, first.title, tuple(first.authors), first.segment_kind, first.format,
                        first.date, pages, len(chunks), len({c.article for c in chunks}),
                        first.title_is_fallback, facts[1] if facts else 0)


def _meta_of(chunk: Chunk) -> DocMeta:
    return DocMeta(title=chunk.title, authors=tuple(chunk.authors), date=chunk.date, source=chunk.publisher,
                   journal=chunk.journal, year=chunk.year, issue=chunk.issue, doi=chunk.doi)


def _facts(assistant, name: str) -> tuple[int, int, DocMeta] | None:
    """(pages, OCR pages, metadata) of `name` from its reader's cached document (PDF/DOCX/HTML)."""
    sha = assistant.manifest.get("corpus", {}).get("files", {}).get(name, "").removeprefix("sha256:")
    return _facts_of(str(assistant.index_dir), sha) if sha else None


_FACTS: dict[tuple[str, str], tuple[int, int, DocMeta]] = {}


def _facts_of(index_dir: str, sha: str) -> tuple[int, int, DocMeta] | None:
    # Keyed by content hash, so never stale; remembered because the list is redrawn on every filter keystroke
    # and a cached document of a long PDF is megabytes of JSON. A miss is not remembered (it may be cached later).
    got = _FACTS.get((index_dir, sha))
    if got is not None:
        return got
    path = Path(index_dir) / "documents" / f"{sha}.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        if d.get("sha256") != sha:
            return None
        doc = Document.from_dict(d["document"])
    except (OSError, ValueError, KeyError, TypeError):
        return None         # not cached: the listing falls back to what the chunks say
    if len(_FACTS) >= 4096:
        _FACTS.clear()
    got = _FACTS[(index_dir, sha)] = (doc.n_pages, len(doc.ocr_pages), doc.meta)
    return got


def _unknown(name, table) -> str:
    known = ", ".join(sorted(table)[:12])
    return f"no document {name!r} in the library; it has: {known}"


# ---------------------------------------------------------------- adding and removing
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(corpus: Path) -> threading.Lock:
    """One library write at a time per corpus folder (in this process; the index has its own build lock)."""
    with _locks_guard:
        return _locks.setdefault(Path(corpus), threading.Lock())


def clashes(assistant, names: Iterable[str]) -> list[str]:
    """Which of these (sanitized) names already exist in the corpus folder: the UI asks before replacing."""
    out = []
    for n in names:
        try:
            safe = sanitize_name(n)
        except UploadError:
            continue
        if os.path.lexists(Path(assistant.corpus) / safe):
            out.append(safe)
    return out


@dataclass(slots=True)
class _Upload:
    name: str
    data: bytes
    sha256: str = ""
    target: Path = field(default=Path())
    backup: Path | None = None
    placed: bool = False       # the new bytes are at `target`


def add_documents(assistant, files: Sequence, *, replace: bool = False, limits: UploadLimits = UploadLimits(),
                  on_progress: Progress | None = None) -> AddReport:
    """Check `files` (paths, (name, bytes) or (name, path) pairs), copy the good ones into the corpus, re-index.

    A pair's name is the one checked and used (a browser upload: the name the user's file had; Gradio stores
    its copy under another).

    Files that fail a check are refused with the reason and the others still added. A name that already
    exists raises NameClashError before anything is written, unless `replace`. Questions keep being answered
    from the current index until the new one is live.
    """
    corpus = Path(assistant.corpus)
    items = list(files)
    if not items:
        raise UploadError("no files given")
    if len(items) > limits.max_files:
        raise UploadError(f"too many files in one request: {len(items)}, limit {limits.max_files}")
    with _lock(corpus):
        _recover(corpus)
        uploads, refused = _gather(items, limits)
        existing = {v.removeprefix("sha256:"): k
                    for k, v in assistant.manifest.get("corpus", {}).get("files", {}).items()}
        taken = [u.name for u in uploads if os.path.lexists(corpus / u.name)]
        if taken and not replace:
            raise NameClashError(taken)
        ready: list[_Upload] = []
        for n, u in enumerate(uploads):
            if on_progress:
                on_progress(f"checking {u.name}", n, len(uploads))
            reason = _check_target(corpus, u) or _check_readable(assistant, u, existing, on_progress)
            if reason:
                refused.append(Refused(u.name, reason))
            else:
                ready.append(u)
        if not ready:
            return AddReport((), (), tuple(refused), None)
        try:
            for u in ready:
                _place(corpus, u)
            build = assistant.rebuild(on_progress=on_progress)
        except BaseException:
            _undo_add(ready)
            raise
        for u in ready:
            if u.backup:
                _unlink(u.backup)
        return AddReport(tuple(u.name for u in ready), tuple(u.name for u in ready if u.backup),
                         tuple(refused), build)


def remove_document(assistant, name: str, *, on_progress: Progress | None = None) -> RemoveReport:
    """Take `name` (as `documents()` lists it, or an unreadable file the index skipped) out of the corpus and
    re-index; if the re-index fails the file is put back."""
    corpus = Path(assistant.corpus)
    manifest_corpus = assistant.manifest.get("corpus", {})
    known = {**manifest_corpus.get("files", {}), **manifest_corpus.get("skipped", {})}
    if not isinstance(name, str) or name not in known:
        raise UnknownDocumentError(_unknown(name, known))
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts:    # a manifest written by someone else
        raise UnknownDocumentError(f"{name!r} is not a path inside the corpus folder")
    path = corpus.joinpath(*parts)
    with _lock(corpus):
        _recover(corpus)
        if not os.path.lexists(path):
            raise UnknownDocumentError(f"{name} is no longer in the corpus folder {corpus}; rebuild the index")
        trash = path.with_name(f"{_REMOVED}{uuid.uuid4().hex[:8]}-{path.name}")
        os.replace(path, trash)                 # moves a symlink itself, never what it points to
        try:
            build = assistant.rebuild(on_progress=on_progress)
        except CorpusError as e:
            os.replace(trash, path)
            raise CorpusError(f"cannot remove {name}: {e}") from None
        except BaseException:
            os.replace(trash, path)
            raise
        _unlink(trash)
    return RemoveReport(name, build)


def _gather(items: list, limits: UploadLimits) -> tuple[list[_Upload], list[Refused]]:
    """Names and bytes of the request, each checked by name, size and content; refused ones with the reason."""
    uploads: list[_Upload] = []
    refused: list[Refused] = []
    total = 0
    seen: set[str] = set()
    for item in items:
        label, data, size, path = _label_and_size(item)
        try:
            if size is None:
                raise UploadError(f"{label}: cannot read the file")
            if size > limits.max_file_bytes:
                raise UploadError(f"{label}: too large ({size / MB:.1f} MB, limit "
                                  f"{limits.max_file_bytes / MB:.0f} MB per file)")
            total += size
            if total > limits.max_request_bytes:
                raise UploadError(f"{label}: the files of this request exceed "
                                  f"{limits.max_request_bytes / MB:.0f} MB together; add them in parts")
            name = sanitize_name(label)
            if name.lower() in seen:
                raise UploadError(f"{label}: given twice in one request")
            if data is None:
                data = _read_path(path, label)
            check_content(name, data)
        except UploadError as e:
            refused.append(Refused(label if isinstance(label, str) else repr(label), _reason(e, label)))
            continue
        seen.add(name.lower())
        uploads.append(_Upload(name, data, hashlib.sha256(data).hexdigest()))
    return uploads, refused


def _reason(err: UploadError, label) -> str:
    msg = str(err)
    prefix = f"{label}: "
    return msg[len(prefix):] if isinstance(label, str) and msg.startswith(prefix) else msg


def _label_and_size(item) -> tuple[str, bytes | None, int | None, Path | None]:
    """(name, bytes if given, size, path to read): the size is known before anything is read."""
    if isinstance(item, tuple) and len(item) == 2:
        label, what = item
        if isinstance(what, (bytes, bytearray)):
            return label, bytes(what), len(what), None
        path = Path(what)
    else:
        path = Path(item)
        label = path.name or str(item)
    try:
        st = path.stat()
    except OSError:
        return label, None, None, None
    if not path.is_file():
        return label, None, None, None
    return label, None, st.st_size, path


def _read_path(path: Path, label: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise UploadError(f"{label}: cannot read ({e.strerror or e})") from None


def _check_target(corpus: Path, u: _Upload) -> str | None:
    target = corpus / u.name
    if target.parent.resolve() != corpus.resolve():      # cannot happen for a sanitized name; kept as a guard
        return "the name leads outside the corpus folder"
    if os.path.lexists(target) and (target.is_symlink() or not target.is_file()):
        return "a link or folder of that name is in the corpus; it is not replaced"
    u.target = target
    return None


def _check_readable(assistant, u: _Upload, existing: dict[str, str], on_progress: Progress | None) -> str | None:
    """Read it as the index will (cached by sha256, so the re-index does not read it again)."""
    same = existing.get(u.sha256)
    if same and same != u.name:
        return f"the same content is already in the library as {same}"

    def ocr(stage: str, done: int, total: int) -> None:
        if on_progress:
            on_progress(f"{stage} {u.name}", done, total)

    ctx = ReadContext(u.sha256, Path(assistant.index_dir), False, PurePosixPath(u.name).suffix.lower(), ocr)
    try:
        read_document(u.name, u.data, ctx)
    except Unreadable as e:
        return str(e)
    except MemoryError:
        return "too large to read in memory"
    except Exception as e:      # a reader library's own failure: refuse this file, keep the rest
        log.debug("reader failed on upload %s", u.name, exc_info=True)
        return f"cannot read: {type(e).__name__}: {e}"[:200]
    return None


def _place(corpus: Path, u: _Upload) -> None:
    tmp = corpus / f"{_UPLOAD}{uuid.uuid4().hex[:8]}-{u.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(u.data)
            fh.flush()
            os.fsync(fh.fileno())
        if os.path.lexists(u.target):
            u.backup = corpus / f"{_BACKUP}{uuid.uuid4().hex[:8]}-{u.name}"
            os.replace(u.target, u.backup)
        os.replace(tmp, u.target)
        u.placed = True
    except BaseException:
        _unlink(tmp)
        raise


def _undo_add(placed: list[_Upload]) -> None:
    """Put the corpus back as it was before this add (the live index still describes that corpus)."""
    for u in placed:
        try:
            if u.backup and os.path.lexists(u.backup):
                os.replace(u.backup, u.target)      # over the new file, or where it never landed
            elif u.placed:
                _unlink(u.target)
        except OSError:
            log.exception("cannot undo the upload of %s", u.name)
        for stale in u.target.parent.glob(f"{_UPLOAD}*-{u.name}"):
            _unlink(stale)


def _recover(corpus: Path) -> None:
    """What an interrupted add or remove left: partial uploads go, a backup whose new file never landed returns,
    a removal goes through (the next build drops the file from the index)."""
    try:
        entries = list(os.scandir(corpus))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(_UPLOAD) or e.name.startswith(_REMOVED):
            _unlink(Path(e.path))
        elif e.name.startswith(_BACKUP):
            original = corpus / e.name[len(_BACKUP) + 9:]
            if os.path.lexists(original):
                _unlink(Path(e.path))
            else:
                os.replace(e.path, original)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        log.warning("cannot remove %s", path)
