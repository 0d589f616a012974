# Everything a fresh machine needs, in two commands: `make run` and `make test`.
# The torch pin lives here (not in pyproject.toml) so pip takes the CPU wheel on this disk;
# change it with `make TORCH_SPEC='torch==X' ...`.
PYTHON     ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed
CORPUS     ?= seeds
HOST       ?= 127.0.0.1
PORT       ?= 7860

.PHONY: setup run test eval eval-quick bench bench-milvus bench-startup clean-index

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies (or the torch pin) change: a second run costs seconds.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q "$(TORCH_SPEC)"
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev,scale]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/assistant serve --corpus $(CORPUS) --host $(HOST) --port $(PORT)

test: setup
	$(PY) -m pytest

# Every system on seeds/ and the dev corpus (../shared/corpora/dev, skipped when absent); indexes and the
# baseline's window vectors are reused from the user cache. `make eval EVAL_ARGS='--corpora seeds'` for one.
# Then the leave-one-corpus-out tables (not found, ranking knobs, English, traditional characters) beside the
# baselines: eval/results/tune.md (about 15 min; `make eval-quick` skips them).
eval: setup
	$(PY) -m eval.run $(EVAL_ARGS)
	$(PY) -m eval.tune

eval-quick: setup
	$(PY) -m eval.run $(EVAL_ARGS)

# Speed and memory (eval/results/bench.md), the format readers beside the .txt path (readers.md), Milvus beside
# FAISS (bench_milvus.md).
bench: setup
	$(PY) -m eval.bench
	$(PY) -m eval.bench_readers
	$(PY) -m eval.bench_milvus

# Milvus beside FAISS (10k/100k/1M chunks; 1M ~20 min, ~14 GB), both backends' quality on seeds, Ray vs one process (docs/milvus.md).
bench-milvus: setup
	$(PY) -m eval.bench_milvus

# `make run` to the first answer, over HTTP and in Chromium (about 2 min); part of `make bench` too.
bench-startup: setup
	$(PY) -m eval.startup

clean-index:
	rm -rf .index
