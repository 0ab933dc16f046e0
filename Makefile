# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A second environment with every dependency at the lower bound pyproject.toml declares.
MIN_VENV ?= .venv-min
MIN_STAMP := $(MIN_VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-min test-slow bench clean

setup: $(STAMP)

# torch first, pinned to the local CPU wheel's version, so the range in pyproject.toml is already
# satisfied and pip never pulls the CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q "torch>=2.5,<3" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[dev,onnx]"
	touch $(STAMP)

# Same torch as above (see pyproject.toml); every other dependency pinned to its lower bound.
$(MIN_STAMP): pyproject.toml .ci/min_constraints.py
	$(PY) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q "torch==2.13.0" || $(MIN_VENV)/bin/pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
	$(MIN_VENV)/bin/python .ci/min_constraints.py > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/pip install -q --prefer-binary -c $(MIN_VENV)/constraints.txt -e ".[dev,onnx]"
	touch $(MIN_STAMP)

demo: setup
	rm -rf build/demo-index
	$(BIN)/rag index data/sample/corpus.jsonl --out build/demo-index
	$(BIN)/rag search --index build/demo-index --mode bm25 -k 3 "how do vaccines train the immune system"
	$(BIN)/rag search --index build/demo-index --mode dense -k 3 "why is the sky blue"
	$(BIN)/rag search --index build/demo-index --mode hybrid -k 3 "rotating storage for search engines"
	$(BIN)/rag eval retrieval --index build/demo-index --queries data/sample/queries.jsonl --qrels data/sample/qrels.tsv --mode hybrid

test: setup
	$(BIN)/python -m pytest -q

# The suite at the minimum declared versions (CI runs both).
test-min: $(MIN_STAMP)
	$(MIN_VENV)/bin/python -m pytest -q -W ignore::DeprecationWarning -W ignore::FutureWarning

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# Figures in docs/benchmarks.md (needs ../shared/data; minutes to an hour on 2 CPU cores).
bench: setup
	$(BIN)/python -m eval.benchmarks.retrieval --data ../shared/data/scifact --index build/scifact --build
	$(BIN)/python -m eval.benchmarks.tune_hybrid --data ../shared/data/scifact --index build/scifact

clean:
	rm -rf build $(VENV) $(MIN_VENV)
