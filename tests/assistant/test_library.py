"""The document library: listing, adding and removing documents, with the upload checks (fake embedder)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from assistant import Assistant, library
from assistant.library import (NameClashError, UnknownDocumentError, UploadError, UploadLimits, check_content,
                               content_kind, sanitize_name)
from index.errors import AssistantError

DOC_A = ("# 关于加强基层党组织建设的通知\n\n"
         "各基层单位要把党组织建设放在突出位置，落实“三会一课”制度，定期开展组织生活。\n\n"
         "要加强党员教育管理，发挥党员先锋模范作用，推动生产经营任务完成。\n")
DOC_B = ("# 安全生产责任制实施办法\n\n"
         "企业主要负责人是安全生产第一责任人，对本单位安全生产工作全面负责。\n\n"
         "各部门要落实“一岗双责”，管业务必须管安全，管生产经营必须管安全。\n")
NEW = ("# 数字化转型专项行动方案\n\n"
       "到二〇二七年，建成覆盖全部厂区的工业互联网平台，关键工序数控化率达到百分之八十五。\n\n"
       "设立数字化转型专项资金，每年投入不少于营业收入的百分之二。\n")
NEW_QUESTION = "工业互联网平台关键工序数控化率达到多少？"


@pytest.fixture
def lib(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a_notice.md").write_text(DOC_A, encoding="utf-8")
    (corpus / "b_rules.txt").write_text(DOC_B, encoding="utf-8")
    return Assistant.open(corpus, index=tmp_path / "index", embedder=fake_embedder, progress=False)


def corpus_names(a) -> list[str]:
    return sorted(os.listdir(a.corpus))


def docx_bytes(*paragraphs: str) -> bytes:
    import docx
    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def zip_bytes() -> bytes:
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a word document")
    return buf.getvalue()


# ---------------------------------------------------------------- names and content
@pytest.mark.parametrize("name, want", [
    ("报告.pdf", "报告.pdf"),
    ("  notes.md ", "notes.md"),
    ('a:b?c*.txt', "a_b_c_.txt"),           # Windows-reserved characters replaced, not a refusal
    ("Report.PDF", "Report.PDF"),
])
def test_sanitize_name_keeps_safe_names(name, want):
    assert sanitize_name(name) == want


@pytest.mark.parametrize("name, reason", [
    ("../../x.txt", "contains a folder"),
    ("sub/x.txt", "contains a folder"),
    ("..\\x.txt", "contains a folder"),
    (".bashrc.txt", "hidden"),
    ("..", "contains a folder"),
    ("a\x00b.txt", "control"),
    ("a\u202eb.txt", "control or invisible"),     # right-to-left override: a name that lies about its type
    ("virus.exe", "unsupported type"),
    ("noext", "unsupported type"),
    ("", "empty file name"),
])
def test_sanitize_name_refuses(name, reason):
    with pytest.raises(UploadError, match=reason):
        sanitize_name(name)


def test_long_name_is_cut_keeping_its_ending():
    name = sanitize_name("长" * 300 + ".md")
    assert name.endswith(".md") and len(name) == 150 + 3


@pytest.mark.parametrize("data, kind", [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "executable"),
    (b"MZ\x90\x00" + b"\x00" * 50, "executable"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "pdf"),
    ("正文。".encode("gb18030"), "text"),
    ("<html><body>正文</body></html>".encode(), "text"),
    (b"abc\x00def", "binary"),
])
def test_content_kind(data, kind):
    assert content_kind(data) == kind


def test_content_kind_tells_docx_from_any_zip():
    assert content_kind(docx_bytes("第一段。")) == "docx"
    assert content_kind(zip_bytes()) == "zip"
    assert content_kind(b"PK\x03\x04 truncated") == "binary"


@pytest.mark.parametrize("name, data, reason", [
    ("report.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "executable"),
    ("notes.txt", b"MZ\x90\x00" + b"\x00" * 50, "executable"),
    ("report.pdf", "这是文本，不是PDF。".encode(), "is text, not a PDF"),
    ("notes.txt", b"%PDF-1.4\n1 0 obj\n", "is a PDF, not text"),
    ("paper.docx", b"%PDF-1.4\n", "is a PDF, not a Word document"),
    ("empty.md", b"", "empty file"),
    ("blank.md", b"  \n\n ", "empty file"),
])
def test_check_content_refuses(name, data, reason):
    with pytest.raises(UploadError, match=reason):
        check_content(name, data)


def test_check_content_accepts_by_content():
    check_content("paper.docx", docx_bytes("第一段。"))
    check_content("page.html", "<html><head><title>题</title></head><body>正文</body></html>".encode())
    check_content("gbk.txt", "中文正文。".encode("gb18030"))
    with pytest.raises(UploadError, match="zip archive, not a Word"):
        check_content("paper.docx", zip_bytes())


def test_upload_limits_of_mb():
    lim = UploadLimits.of_mb(2)
    assert lim.max_file_bytes == 2 * library.MB and lim.max_request_bytes == 10 * library.MB
    with pytest.raises(UploadError, match="positive"):
        UploadLimits.of_mb(0)


# ---------------------------------------------------------------- listing
def test_documents_lists_every_indexed_file(lib):
    docs = {d.name: d for d in lib.documents()}
    assert sorted(docs) == ["a_notice.md", "b_rules.txt"]
    a = docs["a_notice.md"]
    assert a.title == "关于加强基层党组织建设的通知" and a.format == "md" and a.chunks >= 1 and a.pages == 0
    assert docs["b_rules.txt"].format == "txt"
    assert a.to_dict()["name"] == "a_notice.md"
    assert a.matches("党组织 通知") and not a.matches("安全生产")


def test_document_detail_has_chunks_in_reading_order(lib):
    d = lib.document("b_rules.txt")
    assert d.info.name == "b_rules.txt"
    starts = [c.line_start for c in d.chunks]
    assert starts == sorted(starts) and "第一责任人" in d.chunks[0].text
    assert d.meta.title == "安全生产责任制实施办法"
    with pytest.raises(UnknownDocumentError, match="no document 'nope.txt'"):
        lib.document("nope.txt")


# ---------------------------------------------------------------- adding
def test_add_then_ask_then_remove(lib):
    stages = []
    report = lib.add_documents([("数字化方案.md", NEW.encode())],
                               on_progress=lambda stage, done, total: stages.append(stage))
    assert report.added == ("数字化方案.md",) and not report.refused and report.build.built
    assert "数字化方案.md" in corpus_names(lib)
    assert "数字化方案.md" in [d.name for d in lib.documents()]
    # told each step: the check of the file, the reading of the corpus, the embedding passes
    assert stages[0] == "checking 数字化方案.md" and "reading" in stages and "embedding chunks" in stages
    ans = lib.ask(NEW_QUESTION, top_k=3)
    assert ans.passages[0].citation.source == "数字化方案.md"

    removed = lib.remove_document("数字化方案.md")
    assert removed.removed == "数字化方案.md" and removed.build.built
    assert "数字化方案.md" not in corpus_names(lib)
    assert "数字化方案.md" not in [d.name for d in lib.documents()]
    assert all(p.citation.source != "数字化方案.md" for p in lib.ask(NEW_QUESTION, top_k=5).passages)
    assert not [n for n in corpus_names(lib) if n.startswith(".")]    # no trash left behind


def test_add_from_paths_reports_refused_files_and_adds_the_rest(lib, tmp_path):
    good = tmp_path / "plan.md"
    good.write_text(NEW, encoding="utf-8")
    exe = tmp_path / "report.pdf"
    exe.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 64)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    report = lib.add_documents([good, exe, empty, tmp_path / "missing.txt"])
    assert report.added == ("plan.md",)
    reasons = {r.name: r.reason for r in report.refused}
    assert "executable" in reasons["report.pdf"] and "empty file" in reasons["empty.txt"]
    assert "cannot read" in reasons["missing.txt"]
    assert corpus_names(lib) == ["a_notice.md", "b_rules.txt", "plan.md"]
    assert "refused 3" in report.summary()


def test_hostile_names_never_reach_outside_the_corpus(lib, tmp_path):
    report = lib.add_documents([("../../x.txt", NEW.encode()), (".hidden.md", NEW.encode())])
    assert not report.added and report.build is None
    assert {r.name for r in report.refused} == {"../../x.txt", ".hidden.md"}
    assert not (tmp_path / "x.txt").exists() and not (tmp_path.parent / "x.txt").exists()
    assert corpus_names(lib) == ["a_notice.md", "b_rules.txt"]


def test_size_limits_per_file_and_per_request(lib):
    limits = UploadLimits(max_file_bytes=200, max_request_bytes=300)
    big = ("正文。" * 100).encode()          # 900 bytes
    r = lib.add_documents([("big.txt", big)], limits=limits)
    assert not r.added and "too large" in r.refused[0].reason and "per file" in r.refused[0].reason
    small = "数字化转型专项资金，每年投入不少于营业收入的百分之二。".encode()   # ~80 bytes
    r = lib.add_documents([(f"s{i}.txt", small + str(i).encode()) for i in range(5)], limits=limits)
    assert len(r.added) == 3 and all("together" in x.reason for x in r.refused)
    with pytest.raises(UploadError, match="too many files"):
        lib.add_documents([("x.txt", b"x")] * 3, limits=UploadLimits(max_files=2))


def test_name_clash_asks_before_replacing(lib):
    before = (Path(lib.corpus) / "b_rules.txt").read_text(encoding="utf-8")
    with pytest.raises(NameClashError, match="already in the library: b_rules.txt") as err:
        lib.add_documents([("b_rules.txt", NEW.encode()), ("other.md", DOC_A.replace("通知", "意见").encode())])
    assert err.value.names == ("b_rules.txt",)
    assert (Path(lib.corpus) / "b_rules.txt").read_text(encoding="utf-8") == before
    assert corpus_names(lib) == ["a_notice.md", "b_rules.txt"]          # nothing written, not even other.md
    assert library.clashes(lib, ["b_rules.txt", "new.md", "../x.md"]) == ["b_rules.txt"]
    r = lib.add_documents([("b_rules.txt", NEW.encode())], replace=True)
    assert r.replaced == ("b_rules.txt",)
    assert (Path(lib.corpus) / "b_rules.txt").read_text(encoding="utf-8") == NEW
    assert lib.ask(NEW_QUESTION, top_k=1).passages[0].citation.source == "b_rules.txt"
    assert not [n for n in corpus_names(lib) if n.startswith(".")]


def test_same_content_under_another_name_is_refused(lib):
    r = lib.add_documents([("copy.txt", DOC_B.encode())])
    assert not r.added and "already in the library as b_rules.txt" in r.refused[0].reason


def test_failed_reindex_leaves_corpus_and_index_as_they_were(lib, monkeypatch):
    before_docs = [d.name for d in lib.documents()]
    before_text = (Path(lib.corpus) / "b_rules.txt").read_bytes()

    def broken(*a, **kw):
        raise KeyboardInterrupt     # the worst case: interrupted mid-build

    monkeypatch.setattr(lib.embedder, "encode_documents", broken)
    with pytest.raises(KeyboardInterrupt):
        lib.add_documents([("plan.md", NEW.encode()), ("b_rules.txt", NEW.replace("二〇二七", "二〇三〇").encode())],
                          replace=True)
    assert corpus_names(lib) == ["a_notice.md", "b_rules.txt"]        # no partial file, no hidden leftovers
    assert (Path(lib.corpus) / "b_rules.txt").read_bytes() == before_text   # the replaced file is back
    assert [d.name for d in lib.documents()] == before_docs
    monkeypatch.undo()
    assert not lib.rebuild().built        # the live index still matches the corpus: nothing to redo
    assert lib.ask("安全生产第一责任人", top_k=1).passages[0].citation.source == "b_rules.txt"


def test_recover_cleans_what_an_interrupted_write_left(lib):
    corpus = Path(lib.corpus)
    (corpus / ".pa-upload-1234abcd-half.pdf").write_bytes(b"%PDF-1.4 partial")
    os.replace(corpus / "a_notice.md", corpus / ".pa-backup-1234abcd-a_notice.md")   # replace cut short
    library._recover(corpus)
    assert corpus_names(lib) == ["a_notice.md", "b_rules.txt"]


# ---------------------------------------------------------------- removing
def test_remove_refuses_unknown_names_and_the_last_document(lib, tmp_path):
    for bad in ("nope.txt", "../b_rules.txt", str(Path(lib.corpus) / "b_rules.txt")):
        with pytest.raises(UnknownDocumentError, match="no document"):
            lib.remove_document(bad)
    lib.remove_document("a_notice.md")
    with pytest.raises(AssistantError, match="cannot remove b_rules.txt"):
        lib.remove_document("b_rules.txt")
    assert corpus_names(lib) == ["b_rules.txt"]              # put back
    assert [d.name for d in lib.documents()] == ["b_rules.txt"]


# ---------------------------------------------------------------- the CLI: add, remove, documents, serve options
@pytest.fixture
def cli_env(tmp_path, monkeypatch, fake_embedder):
    import index.embed
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a_notice.md").write_text(DOC_A, encoding="utf-8")
    (corpus / "b_rules.txt").write_text(DOC_B, encoding="utf-8")
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: fake_embedder)
    monkeypatch.setattr(index.embed, "model_name", lambda model=None: fake_embedder.name)
    return corpus, ["--corpus", str(corpus), "--index", str(tmp_path / "idx")]


def run(*args):
    from click.testing import CliRunner
    from assistant.cli import main
    return CliRunner().invoke(main, list(args))


def test_cli_add_documents_remove(cli_env, tmp_path):
    import json
    corpus, env = cli_env
    plan = tmp_path / "plan.md"
    plan.write_text(NEW, encoding="utf-8")
    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_bytes(b"MZ\x90\x00" + b"\x00" * 64)
    r = run("add", str(plan), str(fake_pdf), *env)
    assert r.exit_code == 2, r.output                     # one file refused: said, and the status says so
    assert "added plan.md" in r.stdout and "index built" in r.stdout
    assert "refused fake.pdf: refused, the content is an executable program" in r.stderr
    assert "Traceback" not in r.output
    r = run("documents", "--json", *env)
    assert r.exit_code == 0
    docs = json.loads(r.stdout)
    assert [d["name"] for d in docs] == ["a_notice.md", "b_rules.txt", "plan.md"]
    assert docs[2]["title"] == "数字化转型专项行动方案" and docs[2]["chunks"] >= 1
    r = run("documents", *env)
    assert r.exit_code == 0 and "plan.md\tmd\t-\t" in r.stdout
    r = run("add", str(plan), *env)                        # a clash, no tty to ask: refused on one line
    assert r.exit_code == 2 and "error: already in the library: plan.md" in r.stderr
    r = run("remove", "plan.md", *env)                     # no tty and no --yes: nothing deleted
    assert r.exit_code == 2 and (corpus / "plan.md").exists()
    r = run("remove", "plan.md", "--yes", *env)
    assert r.exit_code == 0 and "removed plan.md" in r.stdout and not (corpus / "plan.md").exists()
    r = run("remove", "nope.txt", "--yes", *env)
    assert r.exit_code == 2 and "error: no document 'nope.txt'" in r.stderr


@pytest.mark.parametrize("args, allowed", [
    ([], True),                                               # plain local start: on
    (["--host", "127.0.0.1"], False),                         # any --host: off unless asked for
    (["--host", "127.0.0.1", "--allow-uploads"], True),
    (["--no-allow-uploads"], False),
    (["--host", "0.0.0.0", "--allow-uploads", "--auth", "u:p"], True),
])
def test_serve_upload_permission(monkeypatch, args, allowed):
    from assistant import cli
    seen = {}
    monkeypatch.setattr(cli, "_open", lambda *a, **kw: type("A", (), {"corpus": "c"})())
    import assistant.ui
    monkeypatch.setattr(assistant.ui, "serve", lambda a, **kw: seen.update(kw))
    r = run("serve", *args)
    assert r.exit_code == 0, r.output
    assert (seen["uploads"] is not None) is allowed
    if allowed:
        assert seen["uploads"].max_file_bytes == 100 * library.MB


def test_serve_refuses_uploads_beyond_loopback_without_auth(monkeypatch):
    from assistant import cli
    monkeypatch.setattr(cli, "_open", lambda *a, **kw: pytest.fail("must be refused before loading anything"))
    r = run("serve", "--host", "0.0.0.0", "--allow-uploads")
    assert r.exit_code == 2 and "uploads on 0.0.0.0 need --auth" in r.output
    r = run("serve", "--max-upload-mb", "0")
    assert r.exit_code == 2 and "between 0 and 10000" in r.output


def test_name_path_pairs_are_checked_by_the_given_name(lib, tmp_path):
    stored = tmp_path / "x.txt"          # what Gradio keeps of a browser upload named ../../x.txt
    stored.write_text(NEW, encoding="utf-8")
    r = lib.add_documents([("../../x.txt", stored)])
    assert not r.added and "contains a folder" in r.refused[0].reason
    r = lib.add_documents([("方案.md", stored)])
    assert r.added == ("方案.md",) and (Path(lib.corpus) / "方案.md").read_text(encoding="utf-8") == NEW


def test_questions_are_answered_from_the_current_index_while_adding(lib):
    import threading
    seen = {}

    def hook(stage, done, total):
        if stage == "embedding chunks" and "during" not in seen:
            # another user asks while the new document is being embedded: answered at once, from the old index
            t = threading.Thread(target=lambda: seen.setdefault("during", lib.ask(NEW_QUESTION, top_k=5)))
            t.start()
            t.join(30)
            assert not t.is_alive(), "a question waited for the re-index"

    lib.add_documents([("数字化方案.md", NEW.encode())], on_progress=hook)
    assert all(p.citation.source != "数字化方案.md" for p in seen["during"].passages)
    assert lib.ask(NEW_QUESTION, top_k=1).passages[0].citation.source == "数字化方案.md"


def test_the_upload_box_hands_over_the_name_the_browser_sent(tmp_path):
    from gradio.data_classes import FileData, ListFiles
    from assistant import ui
    stored = tmp_path / "x.txt"
    stored.write_text("正文", encoding="utf-8")
    box = ui.named_files(file_count="multiple", type="filepath", render=False)
    got = box.preprocess(ListFiles(root=[FileData(path=str(stored), orig_name="../../x.txt")]))
    assert got == [("../../x.txt", str(stored))]
    assert box.preprocess(None) is None
    assert not list(Path(ui.__file__).parent.glob("*.pyi"))      # no Gradio stub written beside the module
