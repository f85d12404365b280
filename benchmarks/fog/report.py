"""The fog report: ``fog.md`` (tables), ``fog.json`` (every figure) and ``fog.png`` (curves).

Everything here is computed from ``outcomes.jsonl`` (the tiers' measured outcomes) and, for
the "other kiosk" rows, from the committed bench runs of ``reports/hidden`` (the same question
ids, other models' answers and hidden-state scores). The top cloud is SIMULATED (†): its letter
per question is the simulated cloud's deterministic reply, the one it gave over HTTP wherever
the gateway escalated (checked here).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fog.collect import Tiers
from benchmarks.fog.curves import (
    NEVER,
    Point,
    Tier,
    at_fraction,
    gateway_sweep,
    kiosk_sweep,
    least_cloud_within,
    random_accuracy,
    system_correct,
)
from benchmarks.fog.targets import GAIN_RULE, GATEWAY_SIGNALS, MARGIN, TARGETS
from benchmarks.probes.profile import CLOUD_ACCURACY
from benchmarks.simulated_cloud import LABEL, AnswerBook, SimulatedCloudConfig
from benchmarks.stats import paired_se
from edge_runtime.provenance import git_commit
from edge_runtime.question import Question

OTHER_KIOSKS = (  # committed bench runs with the other models' outcomes on the same questions
    ("reports/hidden/full-eval/bench.json", None, "270M (bench run)"),
    ("reports/hidden/full-eval/bench.json", "chain:3", "chain:3"),
    ("reports/hidden/knowledgeable/bench.json", "smollm2-135m", "SmolLM2-135M"),
    ("reports/hidden/knowledgeable/bench.json", "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B"),
)
KIOSK_SEND_UP = "0.70"  # other kiosks route at the tau chosen on calib for 70 % sent up


def load_rows(path: Path, questions: list[Question]) -> tuple[list[dict[str, Any]], list[Question]]:
    by_id = {json.loads(line)["id"]: json.loads(line) for line in path.read_text().splitlines()}
    kept = [q for q in questions if q.id in by_id]
    return [by_id[q.id] for q in kept], kept


def cloud_letters(rows: list[dict[str, Any]], questions: list[Question]) -> tuple[list[str], int]:
    """The simulated cloud's letter per question, and how many HTTP replies disagreed (0)."""
    book = AnswerBook.bundled(SimulatedCloudConfig())
    letters = [book.reply(q.text, q.choices).letter for q in questions]
    disagree = sum(
        r["cloud"]["answer"] is not None and r["cloud"]["answer"] != letter
        for r, letter in zip(rows, letters, strict=True)
    )
    return letters, disagree


def _tier(name: str, rows: list[dict[str, Any]], tier: str, signal: str) -> Tier:
    correct = np.array([r[tier]["answer"] == r["gold"] for r in rows])
    score = np.array([np.nan if r[tier][signal] is None else r[tier][signal] for r in rows])
    return Tier(name, correct, score.astype(float))


def other_kiosk(path: str, spec: str | None, ids: list[str]) -> tuple[Tier, float] | None:
    """Another model as the kiosk (its hidden-state score), and its calib-chosen tau."""
    file = Path(path)
    if not file.exists():
        return None
    models = json.loads(file.read_text())["models"]
    model = next((m for m in models if m["spec"] == spec), None)
    if model is None:
        return None
    by_id = {q["id"]: q for q in model["questions"]}
    if not all(i in by_id for i in ids):
        return None
    rows = [by_id[i] for i in ids]
    tau = model["calib_operating_points"]["hidden"][KIOSK_SEND_UP]["tau"]
    tier = Tier(spec or "embedded", np.array([q["local_correct"] for q in rows]),
                np.array([q["hidden"] for q in rows], dtype=float))  # fmt: skip
    return tier, float(tau)


def gain_rule(tier: Tier, domains: list[str], name: str) -> Tier:
    """The routing profiles' per-domain taus as one swept threshold: a domain's tau is the
    cloud's accuracy there plus one offset, so keeping ``score >= cloud[d] + offset`` is keeping
    ``(score - cloud[d] + 1) / 2 >= (offset + 1) / 2`` (mapped into [0, 1], the rule's range; a
    question of another domain has no score: passed up)."""
    cloud = np.array([CLOUD_ACCURACY.get(d, np.nan) for d in domains])
    return Tier(name, tier.correct, (tier.score - cloud + 1.0) / 2.0)


CURVE_COLUMNS = ("cloud", "accuracy", "kiosk", "gateway", "tau_kiosk", "tau_gateway")


def _curve(points: list[Point]) -> dict[str, list[Any]]:
    """A curve as columns, in the order of the gateway's tau (compact in ``fog.json``)."""
    rows = [p.as_dict() for p in points]
    return {column: [row[column] for row in rows] for column in CURVE_COLUMNS}


def compute(rows: list[dict[str, Any]], questions: list[Question]) -> dict[str, Any]:
    letters, disagree = cloud_letters(rows, questions)
    cloud = np.array([letter == r["gold"] for letter, r in zip(letters, rows, strict=True)])
    kiosk = _tier("kiosk 270M", rows, "kiosk", "bucket")
    cloud_only = float(cloud.mean())
    floor = cloud_only - MARGIN
    gateways = {s: _tier(f"gateway {s}", rows, "gateway", s) for s in GATEWAY_SIGNALS}
    domains = [r["domain"] for r in rows]
    for name in GAIN_RULE:
        gateways[name] = gain_rule(gateways[name.split()[0]], domains, name)
    curves: dict[str, list[Point]] = {
        f"gateway {s} -> cloud": gateway_sweep(kiosk, g, cloud, NEVER) for s, g in gateways.items()
    }
    curves["kiosk 270M (bucket) -> cloud"] = kiosk_sweep(kiosk, cloud)
    kiosk_letter = _tier("kiosk 270M letter", rows, "kiosk", "letter")
    curves["kiosk 270M (letter) -> cloud"] = kiosk_sweep(kiosk_letter, cloud)
    best = gateways["calibrated"]
    kiosk_tau = 0.75  # the 270M's bucket tau chosen on calib for 70 % sent up (reports/hidden)
    curves["kiosk 270M (bucket, tau 0.75) -> gateway calibrated -> cloud"] = gateway_sweep(
        kiosk, best, cloud, kiosk_tau
    )
    ids = [r["id"] for r in rows]
    others = {}
    for path, spec, label in OTHER_KIOSKS:
        found = other_kiosk(path, spec, ids)
        if found is not None:
            tier, tau = found
            name = f"kiosk {label} (hidden, tau {tau:.3f}) -> gateway calibrated -> cloud"
            curves[name] = gateway_sweep(tier, best, cloud, tau)
            others[name] = {"tier": tier, "tau": tau}
    return {
        "n": len(rows), "cloud_only": cloud_only, "floor": floor, "http_disagreements": disagree,
        "accuracy": {"kiosk": float(kiosk.correct.mean()),
                     "gateway": float(best.correct.mean()), "cloud": cloud_only},
        "curves": curves, "kiosk": kiosk, "gateways": gateways,
        "kiosk_letter": kiosk_letter, "cloud": cloud, "others": others,
        "live": _live(rows, letters),
    }  # fmt: skip


def _live(rows: list[dict[str, Any]], letters: list[str]) -> dict[str, Any]:
    """What the tiers did in the run: the kiosk sent everything, the gateway routed at its tau."""
    kept = [r for r in rows if r["gateway"]["route"] == "local"]
    up = [r for r in rows if r["gateway"]["route"] == "cloud"]
    final = [r["final"] == r["gold"] for r in rows]
    return {
        "gateway_kept": len(kept) / len(rows),
        "gateway_kept_accuracy": _acc([r["gateway"]["answer"] == r["gold"] for r in kept]),
        "cloud_fraction": len(up) / len(rows),
        "cloud_accuracy_on_sent": _acc([r["final"] == r["gold"] for r in up]),
        "system_accuracy": _acc(final),
        "paths": sorted({" -> ".join(r["path"][:2] + (["cloud"] if len(r["path"]) > 2 else []))
                         for r in rows}),
    }  # fmt: skip


def _acc(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def latency(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int]]:
    """p50/p95 per tier, and what the kiosk -> gateway hop adds over the gateway's own time."""

    def stats(values: list[float]) -> dict[str, float | int]:
        arr = np.array(values, dtype=float)
        return {"n": len(arr), "p50": float(np.percentile(arr, 50)),
                "p95": float(np.percentile(arr, 95))}  # fmt: skip

    up = [r for r in rows if r["gateway"]["cloud_ms"] is not None]
    return {
        "kiosk edge (270M)": stats([r["kiosk"]["edge_ms"] for r in rows]),
        "gateway edge (1.5B)": stats([r["gateway"]["edge_ms"] for r in rows]),
        "top cloud call from the gateway †": stats([r["gateway"]["cloud_ms"] for r in up]),
        "kiosk -> gateway round trip": stats([r["kiosk"]["hop_ms"] for r in rows]),
        "hop overhead (round trip - gateway total)": stats(
            [r["kiosk"]["hop_ms"] - r["gateway"]["total_ms"] for r in rows]
        ),
        "end to end at the kiosk": stats(
            [r["kiosk"]["edge_ms"] + r["kiosk"]["hop_ms"] for r in rows]
        ),
    }


def write_report(
    out: Path, questions: list[Question], tiers: Tiers, run: dict[str, Any] | None
) -> None:
    from benchmarks.fog.markdown import render
    from benchmarks.fog.plot import write_plot

    rows, questions = load_rows(out / "outcomes.jsonl", questions)
    result = compute(rows, questions)
    summary = summarise(result)
    report = {
        "format": "foggen-fog", "version": 1, "git_commit": git_commit(),
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "cloud": {"label": LABEL, "simulated": True}, "tiers": asdict(tiers), "run": run,
        "n": result["n"], "accuracy": result["accuracy"], "cloud_only": result["cloud_only"],
        "http_disagreements": result["http_disagreements"], "live": result["live"],
        "latency_ms": latency(rows), "summary": summary,
        "curves": {name: _curve(points) for name, points in result["curves"].items()},
    }  # fmt: skip
    (out / "fog.json").write_text(json.dumps(_rounded(report), separators=(",", ":")) + "\n")
    report["plot"] = write_plot(report, out)
    (out / "fog.md").write_text(render(report))


def _rounded(value: Any) -> Any:
    """Floats to 4 decimals (fractions and accuracies over 350 questions need no more)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Per curve: the point at each target top-cloud fraction and the least cloud within the
    margin, each with random routing's expected accuracy at the same tier shares (each tier's
    accuracy over all questions), and the latter's paired SE against cloud-only."""
    cloud = result["cloud"]
    out: dict[str, Any] = {}
    for name, points in result["curves"].items():
        kiosk, gateway = _tiers_of(name, result)
        accuracies = (float(kiosk.correct.mean()), float(gateway.correct.mean()))

        def with_random(p: Point, accuracies: tuple[float, float] = accuracies) -> dict[str, Any]:
            kept = [(p.kiosk, accuracies[0]), (p.gateway, accuracies[1])]
            return {**p.as_dict(), "random": random_accuracy(kept, result["cloud_only"])}

        least = least_cloud_within(points, result["floor"])
        entry: dict[str, Any] = {
            "at": {f"{t:.2f}": with_random(at_fraction(points, t)) for t in TARGETS},
            "least_cloud_within_margin": None if least is None else with_random(least),
        }
        if least is not None:
            correct = system_correct(kiosk, gateway, cloud, least.tau_kiosk, least.tau_gateway)
            entry["least_cloud_within_margin"]["se_vs_cloud_only"] = paired_se(correct, cloud)
        out[name] = entry
    return out


def _tiers_of(name: str, result: dict[str, Any]) -> tuple[Tier, Tier]:
    if name in result["others"]:
        return result["others"][name]["tier"], result["gateways"]["calibrated"]
    if name.startswith("gateway "):
        return result["kiosk"], result["gateways"][name.removeprefix("gateway ").split(" -> ")[0]]
    if "-> gateway" in name:
        return result["kiosk"], result["gateways"]["calibrated"]
    if "(letter)" in name:
        return result["kiosk_letter"], Tier(
            "none", np.zeros(result["n"], bool), np.full(result["n"], np.nan)
        )
    nobody = Tier("none", np.zeros(result["n"], bool), np.full(result["n"], np.nan))
    return result["kiosk"], nobody
