"""Routing in one place: the card's rule, the signals it reads, tau tables, the calibrator
(its file format and its fit) and the metrics the rule implies.

- ``rule``: ``score >= tau`` keeps the local answer (:func:`route`), :class:`Signal`.
- ``signals``: the score each signal reads from one edge pass.
- ``taus``: per-domain tau files from ``foggen tau recommend``.
- ``calibrator``: the ``p_correct`` calibrator's features and file format, versions 1 and 2
  (numpy only).
- ``fit``: fitting a calibrator on the calib split (never eval).
- ``fit_hidden``: fitting the version-2 calibrator, which also reads the model's hidden state.
- ``passes``: the per-question fast passes, cached on disk per model (fit and report many
  times from one measurement).
- ``metrics``: AUROC, ECE, tau sweep, risk-coverage and the recommender; ``keeps_local`` is
  :func:`route` over arrays.
"""

from __future__ import annotations

from edge_runtime.routing.rule import Route, Signal, route, validate_tau

__all__ = ["Route", "Signal", "route", "validate_tau"]
