"""Fixtures for the index tests (shared by the reader tests: add fixtures here, don't rewrite the file)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dev_corpus() -> Path:
    """The development corpus (`shared/corpora/dev/` beside the repo); read in place, never copied in."""
    root = REPO / ".." / "shared" / "corpora" / "dev"
    if not root.is_dir():
        pytest.skip(f"the dev corpus is not at {root.resolve()} (it lives beside the repository, not in it)")
    return root


@pytest.fixture(scope="session")
def seed_article() -> tuple[str, list[str]]:
    """A seed article split into its title and its other non-empty lines (for reader round trips)."""
    path = REPO / "seeds" / "000_f25ebb76fa63945c.txt"
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines[0], lines[1:]


# --- PDF fixtures (made at test time by tests/index/pdf_fixtures.py; nothing binary is committed) ---

@pytest.fixture(scope="session")
def pdf_fixtures():
    """The helper module tests/index/pdf_fixtures.py (test modules cannot import each other)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pdf_fixtures", Path(__file__).with_name("pdf_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def article_pdf(pdf_fixtures, seed_article, tmp_path_factory) -> Path:
    """The seed article printed by Chromium: two columns, a journal header and a page-numbered footer."""
    if pdf_fixtures.chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    title, lines = seed_article
    out = tmp_path_factory.mktemp("pdf") / "article.pdf"
    return pdf_fixtures.print_pdf(pdf_fixtures.article_html(title, lines), out)
