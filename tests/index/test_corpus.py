"""Scanning a corpus folder: encodings, bad files, hidden files, symlink loops, errors that name the folder."""
import hashlib
import logging
import os
from pathlib import Path

import pytest

from index import corpus
from index.corpus import SourceFile, Skipped, decode, read_source, scan_corpus
from index.errors import CorpusError

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
TEXT = "国有企业党建工作与生产经营深度融合。\n"


def test_seeds_are_read_sorted_with_hashes_of_the_raw_bytes():
    files, skipped = scan_corpus(SEEDS)
    assert skipped == []
    assert [f.rel for f in files] == sorted(p.name for p in SEEDS.glob("*.txt"))
    for f in files:
        assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest()
        assert f.text == f.path.read_text(encoding="utf-8")


@pytest.mark.parametrize("data, want", [
    (TEXT.encode("utf-8"), TEXT),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), TEXT),                 # UTF-8 with BOM: BOM dropped
    (TEXT.encode("gb18030"), TEXT),                                # GBK-family file from Windows tools
    (TEXT.encode("utf-16"), TEXT),                                 # UTF-16 with its BOM
    (b"\x00\x01\x02binary\x00", None),
    (b"\x81\x20\xff\xfe\x80", None),                               # neither UTF-8 nor GB18030
])
def test_decode(data, want):
    assert decode(data) == want


def _write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def messy(tmp_path):
    _write(tmp_path, "a.txt", TEXT.encode("utf-8"))
    _write(tmp_path, "sub/deeper/b.md", ("# 标题\n\n" + TEXT).encode("utf-8"))
    _write(tmp_path, "gbk.txt", TEXT.encode("gb18030"))
    _write(tmp_path, "bom.TXT", b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    _write(tmp_path, "empty.txt", b"")
    _write(tmp_path, "blank.md", b"  \n\n \t\n")
    _write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _write(tmp_path, "latin.txt", b"\x81\x20\xff\xfe\x80")
    _write(tmp_path, ".hidden.txt", TEXT.encode("utf-8"))
    _write(tmp_path, ".git/config.txt", TEXT.encode("utf-8"))
    _write(tmp_path, "notes.docx", b"PK\x03\x04")
    _write(tmp_path, "data.csv", b"a,b\n")
    return tmp_path


def test_messy_folder(messy, caplog):
    with caplog.at_level(logging.WARNING, logger="index.corpus"):
        files, skipped = scan_corpus(messy)
    assert [f.rel for f in files] == ["a.txt", "bom.TXT", "gbk.txt", "sub/deeper/b.md"]
    assert all(f.text.endswith(TEXT) and not f.text.startswith("\ufeff") for f in files)
    reasons = {s.rel: s.reason for s in skipped}
    assert reasons.pop("data.csv").startswith("unsupported type (.csv)")   # listed, never silently ignored
    assert "notes.docx" in reasons and "zip" in reasons.pop("notes.docx")  # 4 bytes of a zip header: corrupt
    assert reasons == {
        "blank.md": "empty file",
        "empty.txt": "empty file",
        "image.txt": "binary file",
        "latin.txt": "cannot decode as UTF-8 or GB18030",
    }
    for s in skipped:                      # the warning names the file
        assert any(s.rel in r.getMessage() and s.reason in r.getMessage() for r in caplog.records)


def test_permission_denied_is_skipped_and_the_scan_goes_on(messy, monkeypatch):
    real = corpus._read_bytes

    def deny(path: Path) -> bytes:
        if path.name == "a.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(corpus, "_read_bytes", deny)
    files, skipped = scan_corpus(messy)
    assert Skipped("a.txt", "permission denied") in skipped
    assert "gbk.txt" in [f.rel for f in files]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_unreadable_file_on_disk(tmp_path):
    path = _write(tmp_path, "locked.txt", TEXT.encode("utf-8"))
    _write(tmp_path, "open.txt", TEXT.encode("utf-8"))
    path.chmod(0)
    try:
        files, skipped = scan_corpus(tmp_path)
    finally:
        path.chmod(0o644)
    assert [f.rel for f in files] == ["open.txt"]
    assert skipped == [Skipped("locked.txt", "permission denied")]


def test_symlink_loops_are_not_followed(tmp_path):
    _write(tmp_path, "docs/a.txt", TEXT.encode("utf-8"))
    (tmp_path / "docs" / "loop").symlink_to(tmp_path / "docs", target_is_directory=True)
    (tmp_path / "docs" / "up").symlink_to(tmp_path, target_is_directory=True)
    files, skipped = scan_corpus(tmp_path)
    assert [f.rel for f in files] == ["docs/a.txt"] and skipped == []


def test_directory_symlink_outside_the_root_is_followed_and_broken_links_are_skipped(tmp_path):
    root, elsewhere = tmp_path / "corpus", tmp_path / "shared"
    _write(elsewhere, "c.txt", TEXT.encode("utf-8"))
    _write(root, "a.txt", TEXT.encode("utf-8"))
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "gone.txt").symlink_to(tmp_path / "missing.txt")
    files, skipped = scan_corpus(root)
    assert [f.rel for f in files] == ["a.txt", "linked/c.txt"]
    assert skipped == [Skipped("gone.txt", "broken symlink")]


def test_missing_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(CorpusError, match=r"corpus folder .*nope does not exist"):
        scan_corpus(tmp_path / "nope")


def test_folder_without_sources_is_an_error_counting_what_it_saw(tmp_path):
    _write(tmp_path, "data.csv", b"a,b\n")
    _write(tmp_path, "x/readme.rst", b"text")
    _write(tmp_path, ".hidden.txt", TEXT.encode("utf-8"))
    with pytest.raises(CorpusError, match=rf"no txt/md/pdf/docx/html/htm files under {tmp_path} \(looked at 2 files\)"):
        scan_corpus(tmp_path)


def test_a_file_instead_of_a_folder_is_an_error(tmp_path):
    path = _write(tmp_path, "a.txt", TEXT.encode("utf-8"))
    with pytest.raises(CorpusError, match="is a file, not a folder"):
        scan_corpus(path)


def test_read_source_one_file(messy):
    got = read_source(messy, "sub/deeper/b.md")
    assert isinstance(got, SourceFile) and got.rel == "sub/deeper/b.md" and got.text.startswith("# 标题")
    assert read_source(messy, "empty.txt") == Skipped("empty.txt", "empty file")
    assert read_source(messy, "gone.txt") == Skipped("gone.txt", "file not found (a broken symlink?)")
    assert isinstance(read_source(messy, ".hidden.txt"), Skipped)
    with pytest.raises(CorpusError, match=r"'\.\./a\.txt' must be relative to the corpus folder"):
        read_source(messy, "../a.txt")
