"""Routing profiles apply when nothing was chosen, and every explicit choice replaces them: a
flag or environment variable, a tau file, the Python API, a request's own tau or signal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.config import Mode, RuntimeConfig
from edge_runtime.errors import ConfigError
from edge_runtime.mcq import stratified
from edge_runtime.routing.profile import Profile, ProfileError, find_profile, shipped_profile_path
from edge_runtime.routing.rule import Signal
from edge_runtime.runtime import EdgeRuntime

LAW_TAU, OTHER_TAU = 0.97, 0.0  # law escalates on the letter signal, every other domain stays


def table(sha256: str, global_tau: float, law: float) -> dict[str, Any]:
    return {
        "format": "foggen-taus", "version": 1, "model_sha256": sha256, "signal": "letter",
        "target": {"cloud_fraction": 0.5}, "global": {"tau": global_tau},
        "domains": {"law": {"tau": law}},
    }  # fmt: skip


def profile_data(sha256: str) -> dict[str, Any]:
    return {
        "format": "foggen-profile", "version": 1, "name": "test-model", "model_sha256": sha256,
        "signal": "letter", "calibrator_sha256": None, "default_point": "cloud-50",
        "points": {
            "cloud-50": table(sha256, OTHER_TAU, LAW_TAU), "cloud-70": table(sha256, 1.0, 1.0),
        },
        "note": "routes on the letter probability",
    }  # fmt: skip


@pytest.fixture(scope="module")
def profile_file(runtime: EdgeRuntime, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "profile.json"
    path.write_text(json.dumps(profile_data(runtime.model.file.sha256)))
    return path


@pytest.fixture(scope="module")
def profiled(runtime: EdgeRuntime, profile_file: Path, model_home: Path) -> Iterator[EdgeRuntime]:
    config = replace(runtime.config, profile=str(profile_file))
    with EdgeRuntime.load(config, home=model_home) as loaded:
        yield loaded


def test_the_profile_routes_when_nothing_is_chosen(profiled: EdgeRuntime) -> None:
    law = stratified(1, domains=("law",))[0]
    math = stratified(1, domains=("math",))[0]
    for question, tau in ((law, LAW_TAU), (math, OTHER_TAU)):
        record = profiled.answer(question)
        assert record.profile == "test-model/cloud-50"
        assert record.signal == "letter" and record.tau == tau
        assert record.score == max(record.letter_probs.values())  # type: ignore[union-attr]
    assert profiled.routing.default_signal is Signal.LETTER
    without_domain = profiled.answer(law.text, list(law.choices))
    assert without_domain.tau == OTHER_TAU and without_domain.profile == "test-model/cloud-50"


def test_a_requests_own_choice_replaces_the_profile(profiled: EdgeRuntime) -> None:
    question = stratified(1, domains=("law",))[0]
    own_tau = profiled.answer(question, tau=0.25)
    assert own_tau.profile is None and own_tau.signal == "bucket" and own_tau.tau == 0.25
    own_signal = profiled.answer(question, signal=Signal.LETTER)
    assert own_signal.profile is None and own_signal.tau == 0.5
    grammar = profiled.answer(question, mode=Mode.GRAMMAR)
    assert grammar.profile is None and grammar.signal == "bucket"


@pytest.mark.parametrize(
    "change",
    [{"signal": Signal.LETTER}, {"tau": 0.4}, {"profile": "none"}, {"mode": Mode.GRAMMAR}],
)
def test_a_configured_choice_replaces_the_profile(
    runtime: EdgeRuntime, profile_file: Path, model_home: Path, change: dict[str, Any]
) -> None:
    config = replace(runtime.config, **{"profile": str(profile_file), **change})
    with EdgeRuntime.load(config, home=model_home) as loaded:
        assert loaded.routing.profile is None
        record = loaded.answer(stratified(1, domains=("law",))[0])
    assert record.profile is None and record.tau == change.get("tau", 0.5)


def test_the_environment_and_a_tau_file_replace_it(
    runtime: EdgeRuntime, profile_file: Path, tmp_path: Path
) -> None:
    env = {"FOGGEN_PROFILE": str(profile_file)}
    assert find_profile(RuntimeConfig.from_env(env).profile, runtime.model.file.sha256)
    for more in ({"FOGGEN_TAU": "0.3"}, {"FOGGEN_SIGNAL": "letter"}):
        assert RuntimeConfig.from_env({**env, **more}).chose_routing()
    taus = tmp_path / "taus.json"
    taus.write_text(json.dumps(table(runtime.model.file.sha256, 0.2, 0.3)))
    config = RuntimeConfig.from_env(
        {**env, "FOGGEN_TAU_FILE": str(taus), "FOGGEN_SIGNAL": "letter"}
    )
    assert config.chose_routing()


def test_profiles_of_another_model_or_malformed_are_refused(
    profile_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ProfileError, match="not of the loaded"):
        find_profile(str(profile_file), "0" * 64)
    data = json.loads(profile_file.read_text())
    with pytest.raises(ProfileError, match="operating point"):
        Profile.from_dict(dict(data, default_point="cloud-90"), origin="x")
    other = dict(data, points={"cloud-50": table("1" * 64, 0.1, 0.1)})
    with pytest.raises(ProfileError, match="another model or signal"):
        Profile.from_dict(other, origin="x")
    with pytest.raises(ConfigError, match="no operating point 'cloud-90'"):
        find_profile("cloud-90", data["model_sha256"]) if shipped_profile_path(
            data["model_sha256"]
        ).is_file() else Profile.from_dict(data, origin="x").table("cloud-90")


def test_the_embedded_model_ships_a_profile_that_says_what_it_routes_on(
    runtime: EdgeRuntime,
) -> None:
    """The 270M's signals are at chance: its profile routes on the letter probability (nothing
    fitted) and says so; it applies by default."""
    from edge_runtime.catalog import EMBEDDED_NAME, require_named

    sha256 = require_named(EMBEDDED_NAME).sha256
    found = find_profile("auto", sha256)
    assert found is not None
    profile, point = found
    assert point is None and set(profile.points) == {"cloud-50", "cloud-70"}
    assert profile.signal is Signal.LETTER and "at chance" in profile.note
    assert runtime.config.profile == "auto" and runtime.model.file.sha256 == sha256
    question = stratified(1, domains=("law",))[0]
    record = runtime.answer(question)
    assert record.profile == f"{profile.name}/cloud-50" and record.signal == "letter"
    assert record.tau == profile.table().tau_for(question.domain)


def test_smollm2_ships_a_profile_on_the_letter_probability_at_chance(
    smollm2_runtime: EdgeRuntime,
) -> None:
    """SmolLM2-135M's signals are at chance on all 4,766 train + calib questions: it routes on
    the letter probability by default and its profile says so."""
    found = find_profile("auto", smollm2_runtime.model.file.sha256)
    assert found is not None
    profile, _ = found
    assert profile.signal is Signal.LETTER and "at chance" in profile.note
    assert smollm2_runtime.routing.profile == profile  # loaded by default
    record = smollm2_runtime.answer(stratified(1, domains=("math",))[0])
    assert record.profile == f"{profile.name}/cloud-50" and record.signal == "letter"
