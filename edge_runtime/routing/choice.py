"""Which signal and tau route one question: a request's own choice, else the runtime's
configuration (flag, environment, tau file), else the model's routing profile, else the card's
rule. See ``edge_runtime.routing.profile`` for when a profile applies.

Thorough mode (several option orders, ``edge_runtime.thorough``) answers the orders' consensus:
no profile or tau file applies (they rank one pass), and it routes on the consensus probability
(the letter signal) unless a signal was chosen."""

from __future__ import annotations

from dataclasses import dataclass

from edge_runtime.config import CARD_SIGNAL, CARD_TAU, Mode, RuntimeConfig
from edge_runtime.routing.profile import Profile
from edge_runtime.routing.rule import Signal
from edge_runtime.routing.taus import TauTable


@dataclass(frozen=True)
class RoutingChoice:
    """The runtime's routing defaults, resolved once at load."""

    signal: Signal  # the configured signal, or the card's
    tau: float  # the configured tau, or the card's
    tau_table: TauTable | None = None  # the tau file's thresholds
    profile: Profile | None = None  # applies when nothing was chosen
    point: str | None = None  # the profile's operating point (None: its default)
    chosen: bool = False  # whether the configuration chose the signal

    @classmethod
    def of(
        cls, config: RuntimeConfig, tau_table: TauTable | None, profile: Profile | None = None,
        point: str | None = None,
    ) -> RoutingChoice:  # fmt: skip
        return cls(
            config.signal or CARD_SIGNAL,
            CARD_TAU if config.tau is None else config.tau,
            tau_table,
            profile if config.leaves_routing_to_profile() else None,
            point,
            config.signal is not None,
        )

    @property
    def profile_label(self) -> str | None:
        if self.profile is None:
            return None
        return f"{self.profile.name}/{self.point or self.profile.default_point}"

    @property
    def default_signal(self) -> Signal:
        """What a question without a request's own choice routes on."""
        return self.profile.signal if self.profile is not None else self.signal

    @property
    def default_tau(self) -> float:
        """The threshold of a question outside every per-domain entry."""
        if self.profile is not None:
            return self.profile.table(self.point).global_tau
        return self.tau

    def decide(
        self,
        domain: str | None,
        *,
        tau: float | None = None,
        signal: Signal | None = None,
        mode: Mode = Mode.FAST,
        orders: int = 1,
    ) -> tuple[Signal, float, str | None]:
        """(signal, tau, the deciding profile's label or None) for one question (a profile
        reads the distributions of fast mode's single pass: another mode routes by the card's
        rule, thorough mode by its consensus)."""
        one_pass = mode is Mode.FAST and orders == 1
        if self.profile is not None and tau is None and signal is None and one_pass:
            table = self.profile.table(self.point)
            return self.profile.signal, table.tau_for(domain), self.profile_label
        if orders > 1:  # RuntimeConfig refuses what thorough mode cannot mean
            signal = signal or (self.signal if self.chosen else Signal.LETTER)
            return signal, self.tau if tau is None else tau, None
        signal = signal or self.signal
        if tau is None and self.tau_table is not None and signal is self.tau_table.signal:
            tau = self.tau_table.tau_for(domain)
        return signal, self.tau if tau is None else tau, None
