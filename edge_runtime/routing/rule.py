"""The routing rule of the FogGen card, as a pure function: score >= tau keeps the local answer."""

from __future__ import annotations

import math
from enum import Enum


class Route(str, Enum):
    LOCAL = "local"
    CLOUD = "cloud"


class Signal(str, Enum):
    """The score compared with tau (tau is on its scale)."""

    BUCKET = "bucket"  # the emitted confidence bucket (the card's routing signal)
    LETTER = "letter"  # the probability of the emitted letter among the offered ones (fast)
    CALIBRATED = "calibrated"  # p_correct from the model's fitted calibrator (fast)


def validate_tau(tau: float) -> float:
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be a number in [0, 1], got {tau!r}")
    return float(tau)


def route(score: float | None, tau: float) -> Route:
    """Keep the local answer when ``score >= tau`` (a tie keeps it, as the card says).

    A missing, NaN or out-of-range score cannot vouch for the local answer: it escalates.
    """
    tau = validate_tau(tau)
    if score is None or isinstance(score, bool) or not isinstance(score, (int, float)):
        return Route.CLOUD
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        return Route.CLOUD
    return Route.LOCAL if score >= tau else Route.CLOUD
