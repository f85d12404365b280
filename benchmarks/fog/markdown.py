"""``fog.md``: the fog report's tables, from the report dict (``fog.json``)."""

from __future__ import annotations

from typing import Any

from benchmarks.fog.targets import GAIN_RULE, GATEWAY_SIGNALS, MARGIN, TARGETS, TOP_CLOUD_TARGET
from benchmarks.markdown import fmt, markdown_table

MAIN = "gateway calibrated -> cloud"


def is_other_kiosk(name: str) -> bool:
    """A curve with another model's bench outcomes as the kiosk (not measured in this run)."""
    return "(hidden," in name


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def render(report: dict[str, Any]) -> str:
    lines = [
        "# Fog tiers: kiosk 270M -> gateway 1.5B -> cloud †",
        "",
        f"{report['n']} eval questions (the 1.5B's fixed subset: the first 50 of each domain). "
        "The kiosk and the gateway are real (`foggen serve` for the gateway, real HTTP on "
        f"127.0.0.1); † the top cloud is the {report['cloud']['label']} (the card's per-domain "
        "accuracy, a deterministic draw per question). Curves are computed offline from each "
        "tier's per-question outcome, collected once.",
        "",
        *_setup(report),
        "",
        *_live(report),
        "",
        *_target(report),
        "",
        *_matched(report),
        "",
        *_per_tier(report),
        "",
        *_other_kiosks(report),
        "",
        *_latency(report),
    ]
    if report.get("plot"):
        lines += ["", f"![system accuracy against top-cloud fraction]({report['plot']})"]
    return "\n".join(lines) + "\n"


def _setup(report: dict[str, Any]) -> list[str]:
    tiers, run = report["tiers"], report["run"] or {}
    kiosk_client = ", ".join(f"{k} {v:g}" for k, v in tiers["kiosk_client"])
    gateway_client = ", ".join(f"{k} {v:g}" for k, v in tiers["gateway_client"])
    wall = f"{run['wall_seconds']:.0f} s" if run.get("wall_seconds") is not None else "–"
    return [
        "## Setup",
        "",
        *markdown_table(
            ["tier", "runs", "threads", "its upstream's client settings"],
            [
                [
                    "kiosk",
                    f"{tiers['kiosk_model']} (270M), `--force-route cloud` to collect",
                    str(tiers["kiosk_threads"]),
                    f"gateway: {kiosk_client}",
                ],
                [
                    "gateway",
                    f"`foggen serve --model {tiers['gateway_model']} --profile "
                    f"{tiers['gateway_profile']}`",
                    str(tiers["gateway_threads"]),
                    f"cloud: {gateway_client}",
                ],
                ["top cloud †", "simulated cloud, in the bench process", "–", "–"],
            ],
        ),  # fmt: skip
        "",
        f"Collection: {run.get('asked', 0)} questions asked this run, {run.get('failed', 0)} "
        f"failed, wall {wall}. The simulated cloud's HTTP replies disagreed with its answer "
        f"book on {report['http_disagreements']} questions.",
    ]


def _live(report: dict[str, Any]) -> list[str]:
    live, acc = report["live"], report["accuracy"]
    return [
        "## What the tiers did in the run",
        "",
        f"Raw accuracy: kiosk 270M {pct(acc['kiosk'])} %, gateway 1.5B {pct(acc['gateway'])} "
        f"%, cloud-only † {pct(acc['cloud'])} %. The kiosk sent every question up; the gateway "
        f"kept {pct(live['gateway_kept'])} % (accuracy {pct(live['gateway_kept_accuracy'])} %) "
        f"and sent {pct(live['cloud_fraction'])} % to the cloud (accuracy there "
        f"{pct(live['cloud_accuracy_on_sent'])} %): system accuracy "
        f"{pct(live['system_accuracy'])} %. Paths seen in the kiosk's records: "
        + ", ".join(f"`{p}`" for p in live["paths"])
        + ".",
    ]


def _target(report: dict[str, Any]) -> list[str]:
    rows = []
    for signal in (*GATEWAY_SIGNALS, *GAIN_RULE):
        least = report["summary"][f"gateway {signal} -> cloud"]["least_cloud_within_margin"]
        rows.append([signal, *_least(least)])
    three = next(n for n in report["summary"] if n.startswith("kiosk 270M (bucket, tau"))
    rows.append(["270M kiosk, then gateway calibrated", *_least(
        report["summary"][three]["least_cloud_within_margin"])])  # fmt: skip
    floor = 100 * (report["cloud_only"] - MARGIN)
    return [
        f"## Target: top cloud <= {TOP_CLOUD_TARGET} % with system accuracy >= cloud-only - 2 "
        f"({floor:.1f} %)",
        "",
        *markdown_table(
            [
                "gateway signal",
                "least top-cloud %",
                "system acc %",
                "random at same %",
                "gateway kept acc %",
                "SE vs cloud-only",
            ],
            rows,
        ),  # fmt: skip
    ]


def _least(least: dict[str, Any] | None) -> list[str]:
    if least is None:
        return ["never within the margin", "–", "–", "–", "–"]
    return [
        pct(least["cloud"]), pct(least["accuracy"]), pct(least["random"]),
        pct(least["gateway_accuracy"]), f"±{100 * least['se_vs_cloud_only']:.1f}",
    ]  # fmt: skip


def _matched(report: dict[str, Any]) -> list[str]:
    names = [n for n in report["summary"] if not is_other_kiosk(n)]
    header = ["top cloud target %"] + [f"{n} (cloud %: acc / random)" for n in names]
    rows = []
    for t in TARGETS:
        cells = [pct(t)]
        for name in names:
            p = report["summary"][name]["at"][f"{t:.2f}"]
            cells.append(f"{pct(p['cloud'])}: {pct(p['accuracy'])} / {pct(p['random'])}")
        rows.append(cells)
    return [
        "## System accuracy at matched top-cloud fractions",
        "",
        "Each cell: the achievable top-cloud share nearest the target, the system accuracy "
        "there, and random routing's expected accuracy with the same tier shares.",
        "",
        *markdown_table(header, rows),
    ]


def _per_tier(report: dict[str, Any]) -> list[str]:
    name = next(n for n in report["summary"] if n.startswith("kiosk 270M (bucket, tau"))
    rows = []
    for t in TARGETS:
        p = report["summary"][name]["at"][f"{t:.2f}"]
        tau = "keeps none" if p["tau_gateway"] is None else fmt(p["tau_gateway"], 3)
        rows.append([pct(t), tau, pct(p["kiosk"]), pct(p["kiosk_accuracy"]),
                     pct(p["gateway"]), pct(p["gateway_accuracy"]), pct(p["cloud"]),
                     pct(p["cloud_accuracy"]), pct(p["accuracy"]), pct(p["random"])])  # fmt: skip
    return [
        f"## Per tier: {name}",
        "",
        "Each tier's share of the questions and its accuracy on what it kept (the kiosk at its "
        "calib-chosen tau; the gateway's tau swept).",
        "",
        *markdown_table(
            [
                "top cloud target %",
                "gateway tau",
                "kiosk %",
                "kiosk acc %",
                "gateway %",
                "gateway acc %",
                "top cloud %",
                "cloud acc % †",
                "system acc %",
                "random %",
            ],
            rows,
        ),  # fmt: skip
    ]


def _other_kiosks(report: dict[str, Any]) -> list[str]:
    rows = []
    for name, entry in report["summary"].items():
        if not is_other_kiosk(name):
            continue
        p = entry["at"]["0.60"]
        rows.append([name, pct(p["kiosk"]), pct(p["kiosk_accuracy"]), pct(p["gateway"]),
                     pct(p["cloud"]), pct(p["accuracy"]), pct(p["random"])])  # fmt: skip
    return [
        "## How the kiosk's signal changes the picture (near 60 % to the top cloud)",
        "",
        "Other models as the kiosk, by their per-question outcomes in the committed bench runs "
        "(`reports/hidden`, same questions, routing on their hidden-state p_correct at the tau "
        "chosen on calib for 70 % sent up); the gateway's columns stay the measured ones.",
        "",
        *markdown_table(
            [
                "three tiers",
                "kiosk kept %",
                "its acc %",
                "gateway kept %",
                "top cloud %",
                "system acc %",
                "random %",
            ],
            rows,
        ),  # fmt: skip
    ]


def _latency(report: dict[str, Any]) -> list[str]:
    rows = [
        [name, str(s["n"]), fmt(s["p50"], 0), fmt(s["p95"], 0)]
        for name, s in report["latency_ms"].items()
    ]
    return ["## Latency per tier (ms)", "", *markdown_table(["", "n", "p50", "p95"], rows)]
