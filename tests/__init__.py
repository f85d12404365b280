"""FogGen Edge's test suite (run it with `make test`)."""

from tests import threads as _threads  # noqa: F401 - thread settings before numpy or torch load
