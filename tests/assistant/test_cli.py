"""The `assistant` command: help for every command, one-line errors, JSON output."""
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import index.embed
from assistant.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path, monkeypatch, fake_embedder):
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    monkeypatch.setattr(index.embed, "load_embedder", lambda model=None, cache_dir=None: fake_embedder)
    monkeypatch.setattr(index.embed, "model_name", lambda model=None: fake_embedder.name)
    return ["--corpus", str(corpus), "--index", str(tmp_path / "idx")]


@pytest.mark.parametrize("command", [[], *([c] for c in main.commands)])
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and len(result.output) > 200


@pytest.mark.parametrize("args, message", [
    (["ask", ""], "empty"),
    (["ask", "党建", "--top-k", "0"], "top_k must be an integer between 1 and 50, got 0"),
    (["ask", "党建", "--source", "../../etc/passwd"], "unknown source"),
    (["ask", "党建\x07"], "control"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_2(env, args, message):
    result = CliRunner().invoke(main, [*args, *env])
    assert result.exit_code == 2, result.output
    err = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and message in err[0]
    assert "Traceback" not in result.output + result.stderr


def test_ask_json_prints_the_answer(env):
    result = CliRunner().invoke(main, ["ask", "一岗双责", "--json", "--top-k", "3", *env])
    assert result.exit_code == 0, result.output
    d = json.loads(result.stdout)
    assert d["question"] == "一岗双责" and 1 <= len(d["passages"]) <= 3
    assert all("reference" in p["citation"] for p in d["passages"])


def test_build_then_noop(env):
    r1 = CliRunner().invoke(main, ["build", *env])
    assert r1.exit_code == 0 and "index built" in r1.stdout
    r2 = CliRunner().invoke(main, ["build", *env])
    assert r2.exit_code == 0 and "up to date" in r2.stdout


def test_chunks_json_lines(env):
    result = CliRunner().invoke(main, ["chunks", "--json", env[0], env[1]])
    assert result.exit_code == 0
    rows = [json.loads(ln) for ln in result.stdout.splitlines()]
    assert len(rows) > 50
    assert set(rows[0]) >= {"id", "source", "article", "title", "authors", "headings", "block", "text",
                            "line_start", "line_end"}


def test_missing_corpus_is_reported_not_raised(tmp_path):
    result = CliRunner().invoke(main, ["build", "--corpus", str(tmp_path / "none"), "--index", str(tmp_path / "i")])
    assert result.exit_code == 2 and "error:" in result.stderr and "Traceback" not in result.stderr
