"""The self-evolving chain: rounds of self-sampling, confidence labels, LoRA SFT and merging.

Layout of the work folder (nothing in it is committed; the adapters are published separately)::

    chain.json                 the config and the start checkpoint
    checkpoints/round-NN/      HF checkpoint after NN rounds (round-00: the start)
    models/round-NN.gguf       its Q4_K_M GGUF (the F32 export is hashed, then deleted)
    round-NN/manifest.json     inputs, seeds, hashes, timings and metrics of round NN's steps
    round-NN/buffer.jsonl      the buffer's questions (train split only)
    round-NN/samples.jsonl     N samples per question (appended per group: resumable)
    round-NN/train.jsonl       the labelled SFT examples
    round-NN/adapter/          the round's LoRA adapter (16-bit)
    bench/round-NN/            the ``foggen bench`` report of checkpoint NN

Every step writes its outputs, then records itself as done in the manifest; a re-run skips the
done steps, so a killed chain continues from the last finished step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from converter.chain.context import BenchStep, Context, Step
from converter.chain.steps import STEPS
from converter.train_config import ChainConfig

log = logging.getLogger(__name__)

Hook = Callable[[int, str], None]  # (round, step) before each step runs (tests interrupt here)


class Chain:
    """Runs (or continues) the chain in ``work``; ``publish`` receives each round's adapter;
    ``bench`` benches each checkpoint (e.g. ``benchmarks.chain_bench.bench_gguf``)."""

    def __init__(
        self,
        work: Path,
        config: ChainConfig,
        *,
        publish: Path | None = None,
        bench: BenchStep | None = None,
        hook: Hook | None = None,
        progress: bool = True,
    ) -> None:
        self.work = work
        self.config = self._settle_config(work, config)
        self.ctx = Context(work, self.config, publish, progress, bench)
        self.hook = hook

    @staticmethod
    def _settle_config(work: Path, config: ChainConfig) -> ChainConfig:
        """A new chain records its config; a continued one keeps it (more rounds allowed)."""
        path = work / "chain.json"
        if not path.is_file():
            work.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"config": config.to_dict()}, indent=1))
            return config
        saved = ChainConfig.from_dict(json.loads(path.read_text())["config"])
        if replace(saved, rounds=config.rounds) != replace(config, rounds=config.rounds):
            log.warning("%s exists: continuing with its recorded config", path)
        saved = replace(saved, rounds=config.rounds)
        path.write_text(json.dumps({"config": saved.to_dict()}, indent=1))
        return saved

    def run(self) -> list[dict[str, Any]]:
        """Run every unfinished step of every round; the manifests of all rounds."""
        self._step(0, "start", STEPS["start"])
        for r in range(self.config.rounds):
            for name, step in STEPS.items():
                if name != "start":
                    self._step(r, name, step)
        return [self.ctx.manifest(r) for r in range(self.config.rounds)]

    def _step(self, r: int, name: str, step: Step) -> None:
        manifest = self.ctx.manifest(r)
        if name in manifest["steps"]:
            return
        if self.hook is not None:
            self.hook(r, name)
        log.info("round %d: %s", r, name)
        started = time.perf_counter()
        result = step(self.ctx, r)
        result["seconds"] = round(time.perf_counter() - started, 2)
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = self.ctx.manifest(r)
        manifest["steps"][name] = result
        self.ctx.save_manifest(r, manifest)
