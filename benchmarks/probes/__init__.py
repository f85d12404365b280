"""`make probes`: which layers, positions and probes rank a model's answers best (by
cross-validation on the labelled passes of ``make labels``), and the version-3 calibrator."""
