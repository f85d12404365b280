"""The bench report as Markdown: the card-style table first, then everything the card lacks."""

from __future__ import annotations

from typing import Any

from benchmarks.bench.signal_tables import probe_lines, routellm_table, signals_side_by_side
from benchmarks.bench.tables import MEAN
from benchmarks.markdown import fmt as _fmt
from benchmarks.markdown import markdown_table
from benchmarks.stats import binomial_se

CARD_COLUMNS = (
    ("cloud_only", "Cloud only"),
    ("edge_raw", "Edge raw"),
    ("random_at_tau", "Random @ tau"),
    ("foggen_at_tau", "FogGen @ tau"),
    ("cloud_acc_on_routed", "Cloud acc. on routed"),
    ("routed_fraction", "Routed"),
    ("lift", "Lift"),
)
SIM_MARK = "†"


def card_table(model: dict[str, Any], *, simulated: bool) -> list[str]:
    mark = SIM_MARK if simulated else ""
    header = ["Domain", "n"] + [
        title + (mark if key in ("cloud_only", "cloud_acc_on_routed") else "")
        for key, title in CARD_COLUMNS
    ]
    rows = []
    for domain, row in model["card"].items():
        name = "**Mean**" if domain == MEAN else domain
        cells = [_fmt(row[k], 3 if k == "routed_fraction" else 1) for k, _ in CARD_COLUMNS]
        rows.append([name, str(row["n"]), *cells])
    return markdown_table(header, rows)


def calibration_table(model: dict[str, Any]) -> list[str]:
    rows = []
    for signal, cal in model["calibration"].items():
        if signal == "bucket_histogram":
            continue
        if cal is None:
            rows.append([signal, "–", "–", "not available (no calibrator for this model)"])
            continue
        rows.append(
            [signal, _fmt(cal["auroc"], 3), _fmt(cal["ece"], 3), str(cal["distinct_values"])]
        )
    return markdown_table(["Signal", "AUROC", "ECE", "distinct values"], rows)


def operating_table(model: dict[str, Any]) -> list[str]:
    rows = []
    for signal, points in model["operating_points"].items():
        for target, p in points.items():
            rows.append(
                [
                    signal,
                    target,
                    _fmt(p["tau"], 4),
                    _fmt(p["cloud_fraction"], 3),
                    _fmt(100 * p["accuracy"]),
                    _fmt(100 * p["random"]),
                    _fmt(100 * p["lift"], 2),
                ]
            )
    header = [
        "Signal",
        "target cloud fraction",
        "tau",
        "cloud fraction",
        "System acc.",
        "Random",
        "Lift",
    ]
    return markdown_table(header, rows)


def speed_lines(model: dict[str, Any]) -> list[str]:
    s = model["speed"]
    fast = s["fast"]
    lines = [
        f"- `fast` over all {fast['n']} questions: median {_fmt(fast['latency_ms']['median'])} ms, "
        f"p95 {_fmt(fast['latency_ms']['p95'])} ms, {_fmt(fast['questions_per_s'], 2)} questions/s",
    ]
    cached = model.get("passes", {}).get("cached")
    if cached:
        lines.append(
            f"  ({cached} of these passes came from the pass cache: their times are those of "
            "the run that measured them, which may have shared the machine; the small-subset "
            "table below is measured in this run)"
        )
    engine, process = s["engine"], s["process"]
    if engine:
        lines.append(
            f"- prompt eval {_fmt(engine['prompt_eval_tokens_per_s'])} tokens/s, decode "
            f"{_fmt(engine['decode_ms_per_token'], 2)} ms/token "
            f"({_fmt(engine['decode_tokens_per_s'])} tokens/s)"
        )
    if "cold_start_ms" in process:
        lines.append(
            f"- cold start (fresh process → first answer) {_fmt(process['cold_start_ms'])} ms; "
            f"peak RSS of a fast-only process {_fmt(process['peak_rss_fast_only_mb'])} MB"
        )
    lines.append(f"- peak RSS of the bench process {_fmt(process['peak_rss_this_process_mb'])} MB")
    table = s["small_subset_latency_ms"]
    if table:
        lines += [
            "",
            *markdown_table(
                ["Mode (small subset)", "median ms", "p95 ms"],
                [[m, _fmt(v["median"]), _fmt(v["p95"])] for m, v in table.items()],
            ),
        ]
        if "fast_hidden" in table:
            lines += [
                "",
                "`question_limit`: the question's own tokens after the cached system prompt, one "
                "row of logits; `schema_limit`: the question and the emitted response up to the "
                "letter in one decode, logits at its choice points; `fast_hidden`: `fast` with the "
                "hidden-state capture (what the version-2 calibrator reads), on a second context "
                "of the same weights. These four run in a rotating order per question.",
            ]
        lines += [
            "",
            "Ratios of medians (same questions): "
            + ", ".join(f"**{k}** {v:.2f}×" for k, v in s["ratios_of_medians"].items()),
        ]
    lines += fast_mode_lines(model)
    if "skipped" in s["transformers"]:
        lines.append(f"- transformers baseline skipped: {s['transformers']['skipped']}")
    return lines


def fast_mode_lines(model: dict[str, Any]) -> list[str]:
    """Fast mode against its two limits, its guess's hit rate, and the walk without a guess."""
    s = model["speed"]
    lines: list[str] = []
    for label, limits in s.get("limits", {}).items():
        lines.append(
            f"- fast against its limits ({label} questions, n={limits['n']}): "
            + ", ".join(f"**{k}** {v:.2f}×" for k, v in limits["ratios"].items())
        )
    fast = s["fast"]
    if fast.get("guess_hit_rate") is not None:
        lines.append(
            f"- guessed bucket emitted (one decode) in {100 * fast['guess_hit_rate']:.1f} % of "
            f"passes; {fast['decodes_per_question']} llama.cpp decodes per question"
        )
    walks = model.get("walks")
    if walks:
        lines.append(
            f"- against the walk without a guess ({walks['n']} questions): "
            f"{walks['letters_moved']} letters and {walks['buckets_moved']} buckets moved; AUROC "
            + "; ".join(
                f"{name} {a['guess']:.3f} vs {a['no_guess']:.3f} "
                f"(difference {a['difference']:+.3f} ± {a['difference_se']:.3f})"
                for name, a in walks["auroc"].items()
                if a
            )
        )
    return lines


def comparison_table(models: list[dict[str, Any]]) -> list[str]:
    rows = []
    for m in models:
        mean, cal = m["card"][MEAN], m["calibration"]
        speed = m["speed"]
        latency, small = speed["fast"]["latency_ms"], speed["small_subset_latency_ms"]
        process = speed["process"]
        rows.append(
            [
                m["label"],
                m["quantization"],
                _fmt(m["size_mb"]),
                _fmt(mean["edge_raw"]),
                _fmt(mean["foggen_at_tau"]),
                _fmt(mean["lift"]),
                _fmt(mean["routed_fraction"], 3),
                _fmt((cal.get("bucket") or {}).get("ece"), 3),
                _fmt((cal.get("letter") or {}).get("auroc"), 3),
                f"{_fmt(latency['median'])} / {_fmt(latency['p95'])}",
                _fmt(speed["ratios_of_medians"].get("fast / floor"), 2),
                _fmt(speed["fast"]["questions_per_s"], 2),
                _fmt(process.get("cold_start_ms")),
                _fmt(process.get("peak_rss_fast_only_mb")),
            ]
        )
    header = [
        "Model",
        "quant",
        "MB",
        "Edge raw",
        "FogGen @ tau",
        "Lift",
        "Routed",
        "ECE (bucket)",
        "AUROC (letter)",
        "fast median / p95 ms",
        "fast / floor" if not small else "fast / floor (small subset)",
        "q/s",
        "cold start ms",
        "peak RSS MB",
    ]
    return markdown_table(header, rows)


def _se_pct(p: float, n: int) -> float:
    return 100.0 * binomial_se(p, n) if n else 0.0


def accuracy_by_domain(models: list[dict[str, Any]]) -> list[str]:
    """Raw accuracy per domain and model, with the binomial standard error."""
    domains = [d for d in models[0]["card"] if d != MEAN]
    rows = []
    for domain in [*domains, MEAN]:
        cells = []
        for m in models:
            row = m["card"].get(domain)
            if row is None or row["edge_raw"] is None:
                cells.append("–")
                continue
            se = _se_pct(row["edge_raw"] / 100.0, row["n"])
            cells.append(f"{row['edge_raw']:.1f} ± {se:.1f}")
        rows.append(["**Mean**" if domain == MEAN else domain, *cells])
    return markdown_table(["Domain", *(m["label"] for m in models)], rows)


def calib_points_table(model: dict[str, Any]) -> list[str]:
    """Taus chosen on calib for each target routed fraction, applied to eval."""
    rows = []
    for signal, points in model.get("calib_operating_points", {}).items():
        for target, p in points.items():
            e = p["eval"]
            rows.append(
                [
                    signal,
                    target,
                    _fmt(p["tau"], 4),
                    _fmt(p["calib_cloud_fraction"], 3),
                    _fmt(e["cloud_fraction"], 3),
                    _fmt(100 * e["accuracy"]),
                    _fmt(100 * e["random"]),
                    f"{100 * e['lift']:+.1f} ± {_fmt(p['eval_lift_se'])}",
                ]
            )
    header = [
        "Signal",
        "target routed",
        "tau (from calib)",
        "routed on calib",
        "routed on eval",
        "System acc.",
        "Random",
        "Lift ± SE (points)",
    ]
    return markdown_table(header, rows)


def best_lift(models: list[dict[str, Any]]) -> list[str]:
    """Per model: the lift at each target routed fraction of the signal that routes best."""
    rows = []
    for m in models:
        points = m.get("calib_operating_points")
        if not points:
            continue
        for target in ("0.70", "0.50"):
            signal, p = max(
                ((s, pts[target]) for s, pts in points.items() if target in pts),
                key=lambda item: item[1]["eval"]["lift"],
            )
            rows.append(
                [
                    m["label"],
                    target,
                    signal,
                    _fmt(p["eval"]["cloud_fraction"], 3),
                    f"{100 * p['eval']['lift']:+.1f} ± {_fmt(p['eval_lift_se'])}",
                ]
            )
    header = ["Model", "target routed", "best signal (on eval)", "routed on eval", "Lift ± SE"]
    return markdown_table(header, rows) if rows else []


def render(report: dict[str, Any]) -> str:
    settings, cloud = report["settings"], report["cloud"]
    simulated = cloud["simulated"]
    out = [
        "# FogGen Edge bench",
        "",
        f"{settings['n_questions']} eval questions ({settings['per_domain']} per domain), "
        f"`{settings['mode']}` mode, card signal `{settings['card_signal']}`, tau = "
        f"{settings['tau']}; cloud: **{cloud['label']}**. Commit `{report['git_commit']}`, "
        f"{report['machine']['platform']}, {report['machine']['threads_used']} threads.",
    ]
    if simulated:
        out += [
            "",
            f"{SIM_MARK} Simulated cloud: its correctness is drawn per question at the "
            "configured per-domain rate (the card's cloud-only figures), independent of "
            "difficulty. These columns echo that input; they are not a measurement of any "
            "real cloud model.",
        ]
    models = report["models"]
    if len(models) > 1:
        out += ["", "## Models side by side", "", *comparison_table(models)]
        out += ["", "### Raw accuracy per domain (%, ± binomial SE)", ""]
        out += accuracy_by_domain(models)
        out += ["", "### AUROC / ECE of every signal", "", *signals_side_by_side(models)]
        best = best_lift(models)
        if best:
            out += ["", "### Lift at the recommender's taus (chosen on calib)", "", *best]
            out += [
                "",
                "The best signal is picked after seeing eval, so this column is optimistic "
                "by the choice among the signals; each signal's own row is in its section.",
            ]
        routellm = routellm_table(models)
        if routellm:
            out += ["", "### RouteLLM's metrics on eval (random: APGR 0.5, CPT 50 % / 80 %)"]
            out += ["", *routellm]
    for m in models:
        out += _model_section(m, simulated=simulated)
    return "\n".join(out) + "\n"


def _model_section(m: dict[str, Any], *, simulated: bool) -> list[str]:
    fc = m["format_compliance"]
    return [
        "",
        f"## {m['label']} — {m['quantization']}, sha256 `{m['sha256'][:16]}…`",
        "",
        *card_table(m, simulated=simulated),
        "",
        "### Calibration: does the score predict a correct local answer?",
        "",
        *calibration_table(m),
        "",
        f"Emitted buckets: {m['calibration']['bucket_histogram']}",
        "",
        "### Operating points (nearest achievable tau; nothing interpolated)",
        "",
        *operating_table(m),
        *(
            [
                "",
                f"### Operating points with taus chosen on calib ({m['calibrator_fit']['n']} "
                "calib questions; the calibrated signal fitted there too)",
                "",
                *calib_points_table(m),
                *probe_lines(m),
            ]
            if m.get("calib_operating_points")
            else []
        ),
        *(
            ["", "### RouteLLM's metrics on eval", "", *routellm_table([m])]
            if len(m.get("routellm") or {})
            else []
        ),
        "",
        f"### Free-format compliance (`free` mode, {fc['n']} questions)",
        "",
        f"strict {_fmt(fc['strict'], 3)}, lenient {_fmt(fc['lenient'], 3)}",
        "",
        "### Speed",
        "",
        *speed_lines(m),
    ]
