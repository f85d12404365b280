"""Test support for FogGen Edge: fakes and helpers for tests and make targets; importable from a
checkout, never shipped in the wheel."""
