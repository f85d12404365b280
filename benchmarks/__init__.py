"""Benchmarks, the demo, and their helpers (the simulated cloud, ``foggen serve`` in a
subprocess). A benchmark writes a JSON report (machine, model sha256, git commit, settings) and
never asserts a timing. The questions come from the bundled data in ``edge_runtime/data/mcq/``
(``edge_runtime.mcq``; licences in ``edge_runtime/data/mcq/SOURCES.md``); this package holds
none."""
