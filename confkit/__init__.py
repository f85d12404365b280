"""Settings as data: frozen config dataclasses whose fields carry their help, parser and
(optionally) environment variable and flag.

Every config of FogGen Edge (runtime, cloud, service, training, chain, bench) declares its
fields with :func:`setting`; :func:`build_config` builds one from flags > environment >
defaults, and the ``foggen`` CLI generates its flags from the same metadata, so defaults and
help never drift. The lowest layer: it imports nothing of the project.
"""

from __future__ import annotations

from confkit.settings import (
    SettingError,
    build_config,
    field_default,
    parse_bool,
    positive_int,
    setting,
)

__all__ = [
    "SettingError",
    "build_config",
    "field_default",
    "parse_bool",
    "positive_int",
    "setting",
]
