"""What the fog report looks for: the gateway signals it compares, the top-cloud fractions it
reads each curve at, and the accuracy margin of its target (within 2 points of cloud-only).
Read by the report that computes the figures (``report``) and the tables that show them
(``markdown``)."""

from __future__ import annotations

GATEWAY_SIGNALS = ("calibrated", "letter", "bucket")
GAIN_RULE = ("calibrated (gain rule)", "letter (gain rule)")  # the profiles' per-domain taus
TARGETS = (1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.2, 0.0)
MARGIN = 0.02  # the target: a fog within 2 points of cloud-only accuracy
TOP_CLOUD_TARGET = 65  # ... with at most this percent of the questions at the top cloud
