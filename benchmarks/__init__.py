"""Benchmarks and the bundled multiple-choice data (see ``data/mcq/SOURCES.md`` for licences)."""
