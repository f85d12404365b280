"""What a runtime loads beside the weights: the model's calibrator and its guessed bucket."""

from __future__ import annotations

import logging
from pathlib import Path

from edge_runtime.catalog import by_sha256
from edge_runtime.config import (
    GUESS_AUTO,
    NO_CALIBRATOR,
    NO_GUESS,
    RuntimeConfig,
)
from edge_runtime.errors import CalibratorFormatError, CalibratorNotFoundError, ConfigError
from edge_runtime.gguf_check import GGUFInfo
from edge_runtime.models import ModelFile
from edge_runtime.routing.calibrator import Calibrator, calibrator_path, shipped_calibrator
from edge_runtime.routing.profile import Profile, content_sha256, find_profile
from edge_runtime.routing.rule import Signal

DEFAULT_GUESS = "0.75"  # see guess_bucket
log = logging.getLogger(__name__)


def load_calibrator(
    config: RuntimeConfig, file: ModelFile, home: Path, info: GGUFInfo | None = None
) -> Calibrator | None:
    """The model's calibrator: ``config.calibrator`` (a path, or 'none'), else the cache's (the
    user's own fit), else, when the signal is ``calibrated``, the one the package ships for a
    named model (only then: it reads the hidden state, which costs a little on every pass).

    A file fitted for another model, or corrupt, is refused; ``--signal calibrated`` with no
    calibrator is an error here, at load time, never a silent fallback.
    """
    if config.calibrator == NO_CALIBRATOR:
        return None
    reference = file.reference
    calibrator: Calibrator | None
    if config.calibrator:
        try:
            calibrator = Calibrator.load(config.calibrator, model_reference=reference)
        except FileNotFoundError as exc:
            raise ConfigError(
                f"calibrator file not found: {config.calibrator} - check --calibrator / "
                "FOGGEN_CALIBRATOR, or fit one with 'foggen calibrator fit'"
            ) from exc
        calibrator.check_model(file.sha256, model_reference=reference)
    else:
        calibrator = Calibrator.for_model(file.sha256, home, model_reference=reference)
        if calibrator is None and config.signal is Signal.CALIBRATED:
            calibrator = shipped_calibrator(file.sha256, model_reference=reference)
    if calibrator is None and config.signal is Signal.CALIBRATED:
        raise CalibratorNotFoundError(
            file.sha256, str(calibrator_path(home, file.sha256)), reference
        )
    if calibrator is not None and info is not None:
        check_shape(
            calibrator, info, source=config.calibrator or "the calibrator", reference=reference
        )
    return calibrator


def check_shape(calibrator: Calibrator, info: GGUFInfo, *, source: str, reference: str) -> None:
    """Refuse a calibrator that reads states this model does not have (width, layers)."""
    width = info.metadata.get(f"{info.architecture}.embedding_length")
    if isinstance(width, int):
        calibrator.check_hidden_size(width, source=source, model_reference=reference)
    blocks = info.metadata.get(f"{info.architecture}.block_count")
    if isinstance(blocks, int) and calibrator.layers and max(calibrator.layers) >= blocks:
        raise CalibratorFormatError(
            source, f"it reads layer {max(calibrator.layers)}, this model has {blocks}", reference
        )


def routing_profile(config: RuntimeConfig, model_sha256: str) -> tuple[Profile, str | None] | None:
    """The routing profile ``--profile`` names (see ``edge_runtime.routing.profile``), when no
    signal, tau or tau file was chosen and the mode is fast."""
    if not config.leaves_routing_to_profile():
        return None
    found = find_profile(config.profile, model_sha256)
    if found and found[0].signal is Signal.CALIBRATED and config.calibrator == NO_CALIBRATOR:
        log.info("--calibrator none: the routing profile on p_correct steps aside")
        return None
    return found


def profile_fits(profile: tuple[Profile, str | None] | None, calibrator: Calibrator | None) -> bool:
    """Whether a profile's thresholds are on the scale of the loaded calibrator (a profile on
    p_correct pins the calibrator it was made with)."""
    if profile is None:
        return False
    pinned = profile[0].calibrator_sha256
    if profile[0].signal is not Signal.CALIBRATED or pinned is None:
        return True
    if calibrator is not None and content_sha256(calibrator.to_dict()) == pinned:
        return True
    log.warning(
        "the routing profile %s was made with another calibrator than the one loaded: it steps "
        "aside (bucket >= 0.5 routes unless --signal and --tau are chosen)",
        profile[0].name,
    )
    return False


def guess_bucket(setting: str, model_sha256: str) -> str | None:
    """The bucket fast mode guesses (None: no guess). ``auto``: a named model's usual bucket,
    else 0.75 (the most frequent one of the measured models)."""
    if setting == NO_GUESS:
        return None
    if setting != GUESS_AUTO:
        return setting
    named = by_sha256(model_sha256)
    return named.usual_bucket if named is not None else DEFAULT_GUESS
