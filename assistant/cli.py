"""The `assistant` command. Every command's docstring is its --help.

Only this module and ui.py read the environment: ASSISTANT_MODEL (embedding model), ASSISTANT_CACHE (where the
converted model and the indexes live), ASSISTANT_INDEX (index folder), ASSISTANT_AUTH (user:password for serve).
"""
from __future__ import annotations

import json
import logging
import sys
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


def _open(corpus, index_dir, model, cache_dir, rebuild=True):
    from assistant.api import Assistant
    return Assistant.open(corpus, index=index_dir, model=model, rebuild=rebuild, cache_dir=cache_dir)


@main.command()
@_corpus
@_index
@_model
@_cache
@click.option("--force", is_flag=True, help="Rebuild from scratch even if the index is up to date.")
def build(corpus, index_dir, model, cache_dir, force):
    """Build or update the index of a corpus (a no-op when nothing changed).

    \b
    Example:
      assistant build --corpus seeds
    """
    from index import store
    from index.build import ensure_index
    from index.embed import load_embedder, model_name

    corpus = corpus.expanduser().resolve()
    index_dir = index_dir.expanduser().resolve() if index_dir else store.default_index_dir(corpus, cache_dir)
    report = ensure_index(corpus, index_dir, lambda: load_embedder(model, cache_dir=cache_dir),
                          model_name(model), force=force)
    click.echo(report.summary())


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
def ask(question, top_k, sources, articles, include, as_json, corpus, index_dir, model, cache_dir, no_rebuild):
    """Print the passages that answer QUESTION, each with its citation.

    \b
    Example:
      assistant ask "什么是“一岗双责”？" --top-k 3
      assistant ask "How do SOEs avoid the 'two skins' problem?" --json
    """
    a = _open(corpus, index_dir, model, cache_dir, rebuild=not no_rebuild)
    ans = a.ask(question, top_k=top_k, sources=list(sources), articles=list(articles), include=include)
    if as_json:
        click.echo(json.dumps(ans.to_dict(), ensure_ascii=False, indent=1))
        return
    click.echo(ans.message)
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
def serve(corpus, index_dir, model, cache_dir, host, port, auth):
    """Index the corpus if needed and serve the chat UI.

    \b
    Example:
      assistant serve --corpus seeds --port 7860
    """
    credentials = None
    if auth:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            raise click.BadParameter("expected user:password", param_hint="--auth")
        credentials = (user, password)
    logging.getLogger("assistant.startup").setLevel(logging.INFO)
    a = _open(corpus, index_dir, model, cache_dir)
    click.echo("starting the chat interface ...", err=True)
    from assistant.ui import serve as serve_ui
    serve_ui(a, host=host, port=port, auth=credentials)
