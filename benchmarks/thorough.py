"""`make thorough`: what asking again with the options re-ordered buys, for k = 1 ... 4.

python -m benchmarks.thorough [--model NAME] [--per-domain 50] [--k 4]

On a fixed eval subset, each question is asked in 4 option orders (``edge_runtime.thorough``);
the first k orders of the same run give k = 1 ... 4. Per question and order the mapped letter
distribution, the answer, the calibrator's p_correct (when the model's profile loads one) and
the milliseconds are kept in ``reports/thorough/<model>-rows.jsonl`` (resumable: a question
already there is not asked again). Then, per k: the accuracy of the first answer and of the
consensus answer, and for each signal (the first pass's letter probability and p_correct,
the agreement of the orders, the consensus probability, the first answer's smallest
probability, the mean p_correct of the orders that agree with the first answer) AUROC +- SE,
APGR +- SE and the lift at 50 % and 70 % routed, with the milliseconds a question costs.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from benchmarks.markdown import markdown_table
from benchmarks.probes.data import report_name
from benchmarks.probes.sweep import FRACTIONS, measured
from benchmarks.report import machine, write_json
from benchmarks.simulated_cloud import AnswerBook, SimulatedCloudConfig
from benchmarks.stats import paired_se
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.config import RuntimeConfig
from edge_runtime.mcq import stratified
from edge_runtime.question import Question
from edge_runtime.routing.passes import question_key
from edge_runtime.runtime import EdgeRuntime
from edge_runtime.thorough import MAX_ORDERS, reordered, thorough_pass

REPORTS = Path("reports/thorough")


def ask_orders(runtime: EdgeRuntime, question: Question) -> dict[str, Any]:
    """One question in every order: mapped distributions, answers, p_correct, ms per order."""
    asked = thorough_pass(runtime, question, MAX_ORDERS)
    orders = [
        {
            "order": list(order),
            "probs": probs,
            "answer": answer,
            "p_correct": runtime.p_correct(reordered(question, order), result),
            "ms": round(ms, 2),
        }  # fmt: skip
        for order, result, probs, answer, ms in zip(
            asked.orders, asked.passes, asked.option_probs, asked.answers, asked.ms, strict=True
        )
    ]
    return {"key": question_key(question), "domain": question.domain, "orders": orders}


def signals_at(row: dict[str, Any], k: int, gold: str) -> dict[str, Any]:
    """The answers and signals of one question from its first k orders."""
    orders = row["orders"][:k]
    first = orders[0]["answer"]
    letters = list(orders[0]["probs"])
    consensus = {x: float(np.mean([o["probs"][x] for o in orders])) for x in letters}
    chosen = max(letters, key=lambda x: (consensus[x], -letters.index(x)))
    agreeing = [
        o["p_correct"] for o in orders if o["answer"] == first and o["p_correct"] is not None
    ]
    p_first = orders[0]["p_correct"]
    return {
        "first_correct": first == gold,
        "consensus_correct": chosen == gold,
        "letter": orders[0]["probs"].get(first or "", 0.0),
        "agreement": sum(o["answer"] == first for o in orders) / len(orders),
        "consensus_p": consensus[chosen],
        "first_min": min(o["probs"].get(first or "", 0.0) for o in orders),
        "p_correct": p_first,
        "p_correct_agreeing": (sum(agreeing) / len(orders)) if agreeing else None,
        "ms": sum(o["ms"] for o in orders),
    }


def consensus_routing(
    per: list[dict[str, Any]], first: np.ndarray, agreed: np.ndarray, clouds: np.ndarray
) -> dict[str, Any]:
    """What a gateway in thorough mode would do: answer the consensus and route on its
    probability; measured against its own answer, and at the same shares sent up against the
    one-pass rule (the first answer, routed on its letter probability): accuracy difference
    +- paired SE."""
    consensus = np.array([p["consensus_p"] for p in per], dtype=np.float64)
    letter = np.array([p["letter"] for p in per], dtype=np.float64)
    out = measured("consensus_p (consensus answer)", consensus, consensus, agreed, clouds)
    for fraction in FRACTIONS:
        mine = np.where(consensus >= np.quantile(consensus, fraction), agreed, clouds)
        one = np.where(letter >= np.quantile(letter, fraction), first, clouds)
        out[f"at_{int(fraction * 100)}"].update(
            one_pass_accuracy=round(float(one.mean()), 4),
            gain_over_one_pass_points=round(100 * float(mine.mean() - one.mean()), 2),
            gain_se_points=round(100 * paired_se(mine, one), 2),
        )
    return out


def summarise(
    rows: list[dict[str, Any]], gold: dict[str, str], cloud: dict[str, bool]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in range(1, MAX_ORDERS + 1):
        per = [signals_at(r, k, gold[r["key"]]) for r in rows]
        clouds = np.array([cloud[r["key"]] for r in rows])
        first = np.array([p["first_correct"] for p in per])
        agreed = np.array([p["consensus_correct"] for p in per])
        entry: dict[str, Any] = {
            "accuracy_first": round(float(first.mean()), 4),
            "accuracy_consensus": round(float(agreed.mean()), 4),
            "accuracy_gain_se": round(paired_se(agreed, first), 4),
            "ms_per_question": round(float(np.median([p["ms"] for p in per])), 1),
            "signals": {},
        }
        for signal in (
            "letter",
            "agreement",
            "consensus_p",
            "first_min",
            "p_correct",
            "p_correct_agreeing",
        ):
            values = [p[signal] for p in per]
            if any(v is None for v in values):
                continue
            scores = np.array(values, dtype=np.float64)
            # the operating points from these very scores: thorough mode has no split of its own
            entry["signals"][signal] = measured(signal, scores, scores, first, clouds)
        entry["consensus_routing"] = consensus_routing(per, first, agreed, clouds)
        out[f"k={k}"] = entry
    return out


def readme(report: dict[str, Any]) -> str:
    """``reports/thorough/README.md``: per k, accuracy, the signals' AUROC and the consensus
    routing against one pass."""
    lines = [
        f"# Thorough mode: {report['model']}, {report['n']} eval questions in 1-4 option orders",
        "",
        "`make thorough` (`benchmarks/thorough.py`): each question asked in 4 fixed rotations "
        "of its options (`edge_runtime/thorough.py`; the first the plain fast pass), the first "
        "k of one run giving k = 1 ... 4. Signals rank the first answer (AUROC ± SE); the "
        "consensus row answers the consensus and routes on its probability, against the "
        "one-pass rule at the same share sent to the simulated cloud (taus from these very "
        "scores: thorough mode has no split of its own). ms: median per question, this "
        "machine.",
        "",
    ]
    lines += markdown_table(
        ["k", "accuracy first", "consensus (gain ± SE)", "letter", "agreement", "first_min",
         "p_correct", "consensus routing AUROC", "@50 vs one pass", "@70 vs one pass", "ms"],
        [
            [
                k, f"{100 * e['accuracy_first']:.1f} %",
                f"{100 * e['accuracy_consensus']:.1f} % "
                f"({100 * (e['accuracy_consensus'] - e['accuracy_first']):+.1f} ± "
                f"{100 * e['accuracy_gain_se']:.1f})",
                *(
                    f"{e['signals'][s]['auroc']:.3f}" if s in e["signals"] else "–"
                    for s in ("letter", "agreement", "first_min", "p_correct")
                ),
                f"{e['consensus_routing']['auroc']:.3f} ± {e['consensus_routing']['auroc_se']:.3f}",
                *(
                    f"{e['consensus_routing'][at]['gain_over_one_pass_points']:+.1f} ± "
                    f"{e['consensus_routing'][at]['gain_se_points']:.1f}"
                    for at in ("at_50", "at_70")
                ),
                f"{e['ms_per_question']:.0f}",
            ]
            for k, e in report["by_k"].items()
        ],
    )  # fmt: skip
    wins = [
        f"{k} {at}" for k, e in report["by_k"].items() for at in ("at_50", "at_70")
        if e["consensus_routing"][at]["gain_over_one_pass_points"]
        > 2 * e["consensus_routing"][at]["gain_se_points"] > 0
    ]  # fmt: skip
    lines += [
        "",
        "The gateway's routing profile would use thorough mode where answering the consensus "
        "beats one pass by more than 2 SE at one of its shares: "
        + (", ".join(wins) if wins else "nowhere here, so its profile stays on one pass")
        + ".",
    ]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--per-domain", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPORTS)
    args = parser.parse_args(argv)
    config = replace(RuntimeConfig.from_env(), model=args.model)
    questions = stratified(args.per_domain, split="eval")
    name = report_name(args.model)
    cache = args.out / f"{name}-rows.jsonl"
    done = {}
    if cache.is_file():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["key"]] = row
    with EdgeRuntime.load(config) as runtime:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("a", encoding="utf-8") as handle:
            for question in tqdm(
                [q for q in questions if question_key(q) not in done], desc="thorough", unit="q"
            ):
                row = ask_orders(runtime, question)
                handle.write(json.dumps(row) + "\n")
                handle.flush()
                done[row["key"]] = row
        profile = runtime.routing.profile_label
    rows = [done[question_key(q)] for q in questions]
    gold = {question_key(q): q.answer or "" for q in questions}
    book = AnswerBook.bundled(SimulatedCloudConfig())
    cloud = {question_key(q): bool(book.reply(q.text, q.choices).correct) for q in questions}
    report = {
        "format": "foggen-thorough", "version": 1, "model": args.model, "profile": profile,
        "n": len(rows), "by_k": summarise(rows, gold, cloud), "machine": machine(),
    }  # fmt: skip
    write_json(args.out / f"{name}.json", report)
    (args.out / "README.md").write_text(readme(report), encoding="utf-8")
    for k, entry in report["by_k"].items():
        signal, best = max(entry["signals"].items(), key=lambda s: s[1]["auroc"])
        first, consensus = entry["accuracy_first"], entry["accuracy_consensus"]
        routed = entry["consensus_routing"]
        print(f"{k}: first {first:.3f} consensus {consensus:.3f} best {signal} "
              f"AUROC {best['auroc']:.3f}; consensus routing AUROC {routed['auroc']:.3f}, "
              f"@70 {routed['at_70']['gain_over_one_pass_points']:+.1f} "
              f"+- {routed['at_70']['gain_se_points']:.1f} over one pass; "
              f"ms {entry['ms_per_question']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
