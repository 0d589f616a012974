"""The `assistant` command. Every command's docstring is its --help.

Only this module and ui.py read the environment: ASSISTANT_MODEL (embedding model), ASSISTANT_CACHE (where the
converted model and the indexes live), ASSISTANT_INDEX (index folder), ASSISTANT_AUTH (user:password for serve),
ASSISTANT_BACKEND (milvus://HOST:PORT[/db]: the index in a Milvus server).
"""
from __future__ import annotations

import importlib
import json
import logging
import sys
import threading
from pathlib import Path

import click

from index.errors import AssistantError

EXIT_USER_ERROR = 2

_corpus = click.option("--corpus", default="seeds", show_default=True,
                       type=click.Path(file_okay=False, path_type=Path),
                       help="Folder of documents: .pdf .docx .html/.htm .txt .md (subfolders included).")
_index = click.option("--index", "index_dir", envvar="ASSISTANT_INDEX", default=None,
                      type=click.Path(file_okay=False, path_type=Path),
                      help="Index folder [default: one per corpus in the user cache; env ASSISTANT_INDEX].")
_model = click.option("--model", envvar="ASSISTANT_MODEL", default=None,
                      help="sentence-transformers model name or folder [default: bundled multilingual-e5-small; "
                           "env ASSISTANT_MODEL].")
_cache = click.option("--cache-dir", envvar="ASSISTANT_CACHE", default=None,
                      type=click.Path(file_okay=False, path_type=Path),
                      help="Where the converted model and default indexes live [env ASSISTANT_CACHE].")
_no_rebuild = click.option("--no-rebuild", is_flag=True,
                           help="Fail with the differences instead of updating a stale index.")
_backend = click.option("--backend", envvar="ASSISTANT_BACKEND", default=None, metavar="milvus://HOST:PORT[/db]",
                        help="Keep the index in a Milvus server instead of the local folder (which then only "
                             "caches read documents) [env ASSISTANT_BACKEND].")


def _fail(err: Exception) -> None:
    click.echo(f"error: {err}", err=True)
    sys.exit(EXIT_USER_ERROR)


class _Group(click.Group):
    """Turns every AssistantError into one line on stderr and exit code 2: no traceback reaches a user."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AssistantError as e:
            _fail(e)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="More log output.")
def main(verbose: bool) -> None:
    """Offline, cited answers from a folder of Chinese policy texts.

    \b
    Example:
      assistant ask "如何把党组织前置研究程序融入公司治理？"
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3", "faiss", "bm25s", "gradio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:   # `serve` turns the start-up steps back on: a server's start is worth watching
        logging.getLogger("assistant.startup").setLevel(logging.WARNING)


def _open(corpus, index_dir, model, cache_dir, rebuild=True, backend=None):
    from assistant.api import Assistant
    return Assistant.open(corpus, index=index_dir, model=model, rebuild=rebuild, cache_dir=cache_dir,
                          backend=backend)


@main.command()
@_corpus
@_index
@_model
@_cache
@click.option("--force", is_flag=True, help="Rebuild from scratch even if the index is up to date.")
@_backend
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS|auto",
              help="Embed on the Ray cluster at ADDRESS (auto: the one `ray start` runs here).")
@click.option("--ray-workers", default=2, show_default=True, type=click.IntRange(1, 4096),
              help="Embedding workers (model copies) on the Ray cluster.")
@click.option("--dry-run", is_flag=True,
              help="Read and chunk the corpus, time the model on a sample and print the estimated build time; "
                   "build nothing.")
def build(corpus, index_dir, model, cache_dir, force, backend, ray_address, ray_workers, dry_run):
    """Build or update the index of a corpus (a no-op when nothing changed).

    \b
    Example:
      assistant build --corpus seeds
      assistant build --corpus seeds --backend milvus://127.0.0.1:19530 --ray auto
      assistant build --corpus my_docs --dry-run       # how long would it take?
    """
    import functools

    from index import store
    from index.backend import open_backend
    from index.build import ensure_index, estimate_build
    from index.embed import load_embedder, model_name

    corpus = corpus.expanduser().resolve()
    index_dir = index_dir.expanduser().resolve() if index_dir else store.default_index_dir(corpus, cache_dir)
    where = open_backend(backend, index_dir, corpus)

    def embedder():
        local = load_embedder(model, cache_dir=cache_dir)
        if not ray_address:
            return local
        from index.ray_embed import RayEmbedder, connect

        connect(ray_address)
        return RayEmbedder(local, functools.partial(load_embedder, model, cache_dir=cache_dir), ray_address,
                           workers=ray_workers)

    if dry_run:
        click.echo(estimate_build(corpus, index_dir, embedder, model_name(model), force=force,
                                  backend=where).summary())
        return
    report = ensure_index(corpus, index_dir, embedder, model_name(model), force=force, backend=where)
    click.echo(report.summary() + (f" [{where.location}]" if backend else ""))


@main.command()
@click.argument("question")
@click.option("--top-k", "-k", default=5, show_default=True, type=int, help="Number of passages (1-50).")
@click.option("--source", "sources", multiple=True, help="Search only this file (repeatable).")
@click.option("--article", "articles", multiple=True, help='Search only this article key "file#n" (repeatable).')
@click.option("--include", multiple=True, type=click.Choice(["references", "caption", "bio"]),
              help="Rank this kind of block like body text (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (Answer.to_dict()).")
@_corpus
@_index
@_model
@_cache
@_no_rebuild
@_backend
def ask(question, top_k, sources, articles, include, as_json, corpus, index_dir, model, cache_dir, no_rebuild,
        backend):
    """Print the passages that answer QUESTION, each with its citation.

    \b
    Example:
      assistant ask "什么是“一岗双责”？" --top-k 3
      assistant ask "How do SOEs avoid the 'two skins' problem?" --json
    """
    a = _open(corpus, index_dir, model, cache_dir, rebuild=not no_rebuild, backend=backend)
    ans = a.ask(question, top_k=top_k, sources=list(sources), articles=list(articles), include=include)
    if as_json:
        click.echo(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1))
        return
    click.echo(ans.message)
    if ans.reason:
        click.echo(f"原因：{ans.reason}。")
    for rank, p in enumerate(ans.passages, 1):
        c = p.citation
        click.echo(f"\n[{rank}] {c.title}  {'、'.join(c.authors)}  (confidence: {p.confidence})")
        click.echo(_marked(p.text, p.highlights))
        click.echo(f"    -- {c.reference()}")


def _marked(text: str, spans) -> str:
    """The passage with its evidence sentences in 【】 brackets (a terminal has no <mark>)."""
    out, pos = [], 0
    for s, e in spans:
        out += [text[pos:s], "【", text[s:e], "】"]
        pos = e
    out.append(text[pos:])
    return "".join(out)


@main.command()
@_corpus
@_index
@_cache
@click.option("--json", "as_json", is_flag=True, help="JSON lines with every field of every chunk.")
def chunks(corpus, index_dir, cache_dir, as_json):
    """Print every chunk the index would hold, to inspect the chunker's work.

    PDF, Word and web pages are read through the index's document cache, so OCR is not repeated.

    \b
    Example:
      assistant chunks --corpus seeds --json | head
    """
    from assistant.cite import citation_for
    from index import store
    from index.chunk import chunk_document
    from index.corpus import scan_corpus

    corpus = corpus.expanduser().resolve()
    index_dir = index_dir.expanduser().resolve() if index_dir else store.default_index_dir(corpus, cache_dir)
    files, skipped = scan_corpus(corpus, index_dir, progress=sys.stderr.isatty())
    for s in skipped:
        click.echo(f"skipped {s.rel}: {s.reason}", err=True)
    for f in files:
        for c in chunk_document(f.document, f.rel):
            if as_json:
                click.echo(json.dumps(c.to_dict(), ensure_ascii=False))
            else:
                path = " > ".join([*c.headings, c.locator] if c.locator else c.headings)
                click.echo(f"{citation_for(c).where()} [{c.block}] {c.title} > {path}\n    {c.text}")


@main.command()
@_corpus
@_index
@_model
@_cache
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 127.0.0.1 keeps the UI on this machine.")
@click.option("--port", default=7860, show_default=True, type=int)
@click.option("--auth", envvar="ASSISTANT_AUTH", default=None,
              help="user:password required for the page and the API [env ASSISTANT_AUTH].")
@click.option("--allow-uploads/--no-allow-uploads", default=None,
              help="Let the UI add and remove documents of the corpus [default: on only when serving on "
                   "127.0.0.1 with no --host; beyond loopback it needs --auth].")
@click.option("--max-upload-mb", default=100.0, show_default=True, type=float,
              help="Size limit of one uploaded file (an upload of several may total 5 times this).")
@_backend
@click.pass_context
def serve(ctx, corpus, index_dir, model, cache_dir, host, port, auth, allow_uploads, max_upload_mb, backend):
    """Index the corpus if needed and serve the chat UI (and its 文献库, the document library).

    \b
    Example:
      assistant serve --corpus seeds --port 7860
      assistant serve --host 0.0.0.0 --auth reader:secret --allow-uploads
    """
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise click.BadParameter("expected user:password", param_hint="--auth")
        credentials = (user, password)
    uploads = _upload_limits(ctx, host, credentials, allow_uploads, max_upload_mb)
    logging.getLogger("assistant.startup").setLevel(logging.INFO)
    # gradio's import (~3 s) runs while the model and the index load (~2 s, mostly ONNX Runtime and numpy
    # outside the GIL): 4.6-4.8 s for both against 5.0-5.7 s one after the other (fresh processes, seeds/).
    # A failed import is raised again, with its message, by the import below.
    ui_import = threading.Thread(target=_import_quietly, args=("assistant.ui",), name="import-ui", daemon=True)
    ui_import.start()
    try:
        a = _open(corpus, index_dir, model, cache_dir, backend=backend)
    finally:
        # also when opening fails: an interpreter that exits under a thread still importing can abort
        ui_import.join()
    click.echo("starting the chat interface ...", err=True)
    if uploads:
        click.echo(f"      uploads allowed: files up to {max_upload_mb:g} MB are added to {a.corpus}", err=True)
    from assistant.ui import serve as serve_ui
    serve_ui(a, host=host, port=port, auth=credentials, uploads=uploads)


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:      # noqa: BLE001  (the main thread's import reports it)
        pass


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _upload_limits(ctx, host: str, credentials, allow_uploads: bool | None, max_upload_mb: float):
    """The UploadLimits the UI may write with, or None: uploads off (the safe default beyond loopback)."""
    from assistant.library import UploadLimits

    if allow_uploads is None:    # on only for the plain local start: `assistant serve` / `make run`
        allow_uploads = ctx.get_parameter_source("host") == click.core.ParameterSource.DEFAULT
    if not allow_uploads:
        return None
    if host not in LOOPBACK and not credentials:
        raise click.BadParameter(f"uploads on {host} need --auth user:password: anyone who reaches the port "
                                 "could write to the corpus (or pass --no-allow-uploads)",
                                 param_hint="--allow-uploads")
    if not 0 < max_upload_mb <= 10_000:
        raise click.BadParameter(f"expected a size in MB between 0 and 10000, got {max_upload_mb:g}",
                                 param_hint="--max-upload-mb")
    return UploadLimits.of_mb(max_upload_mb)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--replace", is_flag=True, help="Replace documents of the same name without asking.")
@click.option("--max-upload-mb", default=100.0, show_default=True, type=float, help="Size limit of one file.")
@_corpus
@_index
@_model
@_cache
def add(files, replace, max_upload_mb, corpus, index_dir, model, cache_dir):
    """Check FILE... (.pdf .docx .html .txt .md), copy them into the corpus folder and update the index.

    Each file is checked by its content (not its name), size and readability first; refused files are named
    with the reason (exit status 2) and the others are added. A name already in the corpus is replaced only
    with --replace (or after a yes at the prompt).

    \b
    Example:
      assistant add --corpus my_docs 新通知.pdf 调研报告.docx
    """
    from assistant.library import NameClashError, UploadLimits

    limits = UploadLimits.of_mb(max_upload_mb, max_upload_mb * len(files))
    a = _open(corpus, index_dir, model, cache_dir)
    try:
        report = a.add_documents(list(files), replace=replace, limits=limits)
    except NameClashError as e:
        if not (sys.stdin.isatty() and click.confirm(f"replace {', '.join(e.names)} in {a.corpus}?")):
            raise
        report = a.add_documents(list(files), replace=True, limits=limits)
    for name in report.added:
        click.echo(f"added {name}" + (" (replaced)" if name in report.replaced else ""))
    for r in report.refused:
        click.echo(f"refused {r.name}: {r.reason}", err=True)
    if report.build:
        click.echo(report.build.summary())
    if report.refused:
        sys.exit(EXIT_USER_ERROR)


@main.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_corpus
@_index
@_model
@_cache
def remove(name, yes, corpus, index_dir, model, cache_dir):
    """Delete the document NAME (as `assistant documents` lists it) from the corpus folder and the index.

    \b
    Example:
      assistant remove --corpus my_docs 旧通知.pdf --yes
    """
    a = _open(corpus, index_dir, model, cache_dir)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("removing deletes the file from the corpus folder: confirm with --yes")
        click.confirm(f"delete {name} from {a.corpus} and the index?", abort=True)
    report = a.remove_document(name)
    click.echo(f"removed {report.removed}")
    click.echo(report.build.summary())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="A JSON array with every field of every document.")
@_corpus
@_index
@_model
@_cache
@_no_rebuild
def documents(as_json, corpus, index_dir, model, cache_dir, no_rebuild):
    """List the documents of the index: name, format, pages, chunks, genre, date, title, authors.

    \b
    Example:
      assistant documents --corpus seeds
      assistant documents --json | head
    """
    from assistant import library

    a = _open(corpus, index_dir, model, cache_dir, rebuild=not no_rebuild)
    docs = a.documents()
    if as_json:
        click.echo(json.dumps([d.to_dict() for d in docs], ensure_ascii=False, indent=1))
        return
    for d in docs:
        pages = f"{d.pages} p" if d.pages else "-"
        click.echo(f"{d.name}\t{d.format}\t{pages}\t{d.chunks} chunks\t{d.genre}\t{d.date or '-'}\t"
                   f"{d.title or '（无题）'}\t{'、'.join(d.authors) or '-'}")
    for s in library.skipped(a):
        click.echo(f"skipped {s.name}: {s.reason}", err=True)
