from __future__ import annotations

import math

import pytest

from edge_runtime.routing.metrics import keeps_local
from edge_runtime.routing.rule import Route, route

TABLE = [
    (0.5, 0.5, Route.LOCAL),  # the tie keeps the local answer, as the card says
    (0.75, 0.5, Route.LOCAL),
    (1.0, 0.5, Route.LOCAL),
    (0.25, 0.5, Route.CLOUD),
    (0.0, 0.5, Route.CLOUD),
    (0.0, 0.0, Route.LOCAL),  # tau 0: everything stays local
    (1.0, 1.0, Route.LOCAL),
    (0.75, 1.0, Route.CLOUD),
    (None, 0.5, Route.CLOUD),  # missing escalates
    (math.nan, 0.5, Route.CLOUD),  # NaN escalates
    (math.nan, 0.0, Route.CLOUD),
    (-0.1, 0.0, Route.CLOUD),  # out of range escalates
    (1.5, 0.5, Route.CLOUD),
    (math.inf, 0.5, Route.CLOUD),
    (True, 0.5, Route.CLOUD),  # a bool is not a score
    ("0.9", 0.5, Route.CLOUD),
]


@pytest.mark.parametrize("score, tau, expected", TABLE)
def test_route_table(score: object, tau: float, expected: Route) -> None:
    assert route(score, tau) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "score, tau, expected",
    [row for row in TABLE if row[0] is None or type(row[0]) is float],
)
def test_the_metrics_route_as_the_runtime_does(
    score: float | None, tau: float, expected: Route
) -> None:
    """The bench's arrays (numbers or missing scores) follow the very same table."""
    assert keeps_local([score, 0.5], tau).tolist()[0] is (expected is Route.LOCAL)


@pytest.mark.parametrize("tau", [-0.01, 1.01, math.nan, None, "0.5"])
def test_tau_outside_unit_interval_is_refused(tau: object) -> None:
    with pytest.raises(ValueError, match="tau"):
        route(0.5, tau)  # type: ignore[arg-type]
