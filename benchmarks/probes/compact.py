"""A label run, compact enough to commit: what a fresh machine needs to refit the probes.

The whole run of the 1.5B is ~820 MB (every layer at two positions). The committed form keeps:
per question the key, label, output features, bucket and letter probability; and, for a few
reads (the chosen probe's and the best of each layer band), the states' first 256 principal
components of the standardised states (scores in float16, the basis in float16). Loading
rebuilds each read's states from them (a rank-256 reconstruction: what a probe with k <= 256
components sees of the states is kept; the rest of the variance is the part it drops anyway),
so every fitting tool works on it unchanged, and a probe fitted on it applies to raw states.

    python -m benchmarks.probes.compact --model NAME --reads letter@14,question@20   (write)

``benchmarks.probes`` and ``benchmarks.probes.evaluate`` read it with ``--compact PATH``. A run
labelled in several sessions is committed in chunks (a file is never rewritten: a later chunk,
``benchmarks.labels --start N``, is projected on the first chunk's bases with ``--bases``) and
read as one with ``--compact FIRST.npz,SECOND.npz``. A file projected on another's bases
names that file (same directory) and its sha256 instead of holding a copy of them.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.probes.data import LabelRun, label_runtime, load_label_run, report_name
from edge_runtime.catalog import EMBEDDED_NAME
from edge_runtime.mcq import DOMAINS, SPLITS, load_questions
from edge_runtime.question import Question
from edge_runtime.routing.fit_hidden import principal_projection
from edge_runtime.routing.fit_probe import Labelled
from edge_runtime.routing.passes import question_key
from edge_runtime.routing.probe import Read

COMPONENTS = 256
DATA = Path("reports/probes/data")


def parse_reads(text: str) -> list[Read]:
    return [Read.parse(item) for item in text.split(",")]


def compact_paths(text: str) -> list[Path]:
    """``FIRST.npz,SECOND.npz``: the chunks of one committed run (an argparse type)."""
    paths = [Path(item) for item in text.split(",") if item]
    if not paths:
        raise argparse.ArgumentTypeError("name at least one compact run")
    return paths


def _bases(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each read's (mean, std, basis) of a compact file: its own, or its source file's."""
    with np.load(path) as data:
        source = _source(path, data) if "bases_of" in data else {}
        return {
            str(text): (
                (data[f"mean_{n}"], data[f"std_{n}"], data[f"basis_{n}"].astype(np.float64))
                if f"basis_{n}" in data
                else source[str(text)]
            )
            for n, text in enumerate(data["reads"].tolist())
        }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source(path: Path, data: Any) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The bases a file projected on another's names: that file, unchanged since."""
    source = path.parent / str(data["bases_of"])
    if not source.is_file():
        raise SystemExit(f"compact: {path.name} is projected on {source.name}, not found beside it")
    if _sha256(source) != str(data["bases_sha256"]):
        raise SystemExit(f"compact: {source.name} changed since {path.name} was projected on it")
    return _bases(source)


def save_compact(
    run: LabelRun, reads: Sequence[Read], path: Path, *, bases_from: Path | None = None,
    components: int = COMPONENTS,
) -> Path:  # fmt: skip
    """Write ``run`` with ``reads``; ``bases_from``: project on another compact file's bases
    (eval on train + calib's, so both are the same functions of the raw states), else on the
    first ``components`` principal components of its own."""
    given = _bases(bases_from) if bases_from else {}
    if bases_from and bases_from.resolve().parent != path.resolve().parent:
        raise SystemExit("compact: write a file beside the file whose bases it is projected on")
    arrays: dict[str, Any] = {
        "keys": np.array([question_key(q) for q in run.questions]),
        "x": run.data.x.astype(np.float32),
        "y": run.data.y,
        "letter_max": run.letter_max.astype(np.float32),
        "bucket": run.bucket.astype(np.float32),
        "reads": np.array([str(r) for r in reads]),
    }
    if bases_from:
        arrays["bases_of"], arrays["bases_sha256"] = np.array(bases_from.name), _sha256(bases_from)
    for n, read in enumerate(reads):
        states = np.asarray(run.data.states[read], dtype=np.float64)
        if str(read) in given:
            mean, std, basis = given[str(read)]
        else:
            projection = principal_projection(states, components)
            mean, std, basis = projection.mean, projection.std, projection.components
        z = (states - mean) / std
        arrays[f"scores_{n}"] = (z @ basis.T).astype(np.float16)
        if str(read) not in given:
            arrays[f"basis_{n}"] = basis.astype(np.float16)
            arrays[f"mean_{n}"] = mean.astype(np.float32)
            arrays[f"std_{n}"] = std.astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_compact(paths: Path | Sequence[Path]) -> LabelRun:
    """The committed run (its chunks, in order, as one), states rebuilt from their principal
    components."""
    runs = [_load_chunk(p) for p in ([paths] if isinstance(paths, Path) else paths)]
    if len(runs) == 1:
        return runs[0]
    reads = set(runs[0].data.states)
    if any(set(r.data.states) != reads for r in runs):
        raise SystemExit("compact: the chunks of one run must keep the same reads")
    questions = [q for r in runs for q in r.questions]
    if len({question_key(q) for q in questions}) != len(questions):
        raise SystemExit("compact: a question is in two chunks")
    labelled = Labelled(
        np.vstack([r.data.x for r in runs]), np.concatenate([r.data.y for r in runs]),
        {read: np.vstack([r.data.states[read] for r in runs]) for read in runs[0].data.states},
    )  # fmt: skip
    return LabelRun(
        questions, labelled, runs[0].layers, np.concatenate([r.letter_max for r in runs]),
        np.concatenate([r.bucket for r in runs]),
    )  # fmt: skip


def _load_chunk(path: Path) -> LabelRun:
    by_key: dict[str, Question] = {
        question_key(q): q for split in SPLITS for d in DOMAINS for q in load_questions(d, split)
    }
    bases = _bases(path)
    with np.load(path) as data:
        questions = [by_key[str(k)] for k in data["keys"].tolist()]
        states = {}
        for n, text in enumerate(data["reads"].tolist()):
            (read,) = parse_reads(str(text))
            mean, std, basis = bases[str(text)]
            z = data[f"scores_{n}"].astype(np.float32) @ basis.astype(np.float32)
            states[read] = z * std + mean
        labelled = Labelled(data["x"].astype(np.float64), data["y"].astype(bool), states)
        return LabelRun(
            questions, labelled, tuple(sorted({r.layer for r in states})),
            data["letter_max"].astype(np.float64), data["bucket"].astype(np.float64),
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMBEDDED_NAME)
    parser.add_argument("--reads", required=True, help="e.g. letter@14,question@20")
    parser.add_argument("--splits", default="train,calib")
    parser.add_argument("--bases", type=Path, help="project on this compact file's bases")
    parser.add_argument(
        "--components", type=int, default=COMPONENTS,
        help="principal components kept per read (a probe reads at most k of them)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, help="default: <model>-<splits>-<n>.npz in " + str(DATA)
    )
    args = parser.parse_args(argv)
    splits = args.splits.split(",")
    with label_runtime(args.model) as runtime:
        run = load_label_run(runtime, splits, measure="eval" in splits)
        name = report_name(runtime.model.file.reference)
    out = args.out or DATA / f"{name}-{'+'.join(splits)}-{len(run.questions)}.npz"
    out = save_compact(
        run, parse_reads(args.reads), out, bases_from=args.bases, components=args.components
    )
    print(
        f"compact: {len(run.questions)} questions -> {out} ({out.stat().st_size / 2**20:.1f} MiB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
