"""The bundled splits: calib is carved from train by id hash, disjoint from train and eval."""

from __future__ import annotations

import pytest

from edge_runtime.mcq import CALIB_PERCENT, DOMAINS, is_calib, load_questions, stratified


@pytest.mark.parametrize("domain", DOMAINS)
def test_splits_are_disjoint_and_cover_the_train_file(domain: str) -> None:
    train = {q.id for q in load_questions(domain, "train")}
    calib = {q.id for q in load_questions(domain, "calib")}
    evaluation = {q.id for q in load_questions(domain, "eval")}
    assert train and calib and evaluation
    assert not train & calib and not calib & evaluation and not train & evaluation
    assert all(is_calib(i) for i in calib) and not any(is_calib(i) for i in train)


def test_calib_share_is_near_its_target() -> None:
    calib = sum(len(load_questions(d, "calib")) for d in DOMAINS)
    train = sum(len(load_questions(d, "train")) for d in DOMAINS)
    assert abs(100 * calib / (calib + train) - CALIB_PERCENT) < 3


def test_membership_depends_on_the_id_only() -> None:
    assert is_calib("law-x-1") == is_calib("law-x-1")
    assert len({is_calib(f"q{i}") for i in range(50)}) == 2


def test_stratified_takes_the_first_of_each_domain() -> None:
    subset = stratified(2, domains=("math", "law"))
    assert [q.domain for q in subset] == ["math", "math", "law", "law"]
    assert len(stratified(None, domains=("coding",))) == 200
    with pytest.raises(ValueError, match="unknown split"):
        load_questions("math", "test")
