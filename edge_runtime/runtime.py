"""EdgeRuntime: load a GGUF once, answer questions, route, and return decision records."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from edge_runtime.config import MAX_NEW_TOKENS, Mode, RuntimeConfig, foggen_home
from edge_runtime.decoding import EdgeResult, Pick, ResponseTrie, decode_fast, decode_generate
from edge_runtime.engine import EngineSettings, LlamaEngine
from edge_runtime.errors import ConfigError, PromptTooLongError
from edge_runtime.escalation import Escalator, kept_local, no_cloud
from edge_runtime.fog import Node, Trail
from edge_runtime.gguf_check import GGUFInfo, inspect_gguf
from edge_runtime.model_setup import guess_bucket, load_calibrator, profile_fits, routing_profile
from edge_runtime.models import ModelFile, resolve_model
from edge_runtime.prompt import ChatFormat, PromptTokens
from edge_runtime.question import Question, make_question
from edge_runtime.record import DecisionRecord, Hop, Latency
from edge_runtime.routing.calibrator import Calibrator, version_of
from edge_runtime.routing.choice import RoutingChoice
from edge_runtime.routing.profile import Profile
from edge_runtime.routing.rule import Route, Signal, route
from edge_runtime.routing.signals import routing_score
from edge_runtime.routing.taus import TauTable
from edge_runtime.sampling import SAMPLED, Sampling
from edge_runtime.schema import AnswerSchema
from edge_runtime.thorough import thorough_pass
from edge_runtime.threads import ThreadPolicy

log = logging.getLogger(__name__)

FAST_RESPONSE_TOKENS = 16  # the longest schema response is 12 tokens


@dataclass(frozen=True)
class LoadedModel:
    file: ModelFile
    info: GGUFInfo


class EdgeRuntime:
    """One model, one context, serialised: safe to call from several threads.

    With an ``escalator``, ``route: cloud`` asks the cloud (outside the model lock); without
    one, the local answer stands with ``escalation: unavailable``. With a ``calibrator``,
    every fast-mode record carries ``p_correct``. The caller closes it.
    """

    def __init__(
        self,
        engine: LlamaEngine,
        model: LoadedModel,
        config: RuntimeConfig,
        escalator: Escalator | None = None,
        calibrator: Calibrator | None = None,
        profile: tuple[Profile, str | None] | None = None,
    ) -> None:
        self.engine = engine
        self.model = model
        self.config = config
        self.escalator = escalator
        self.calibrator = calibrator
        self.node = Node.new(config.node_name)
        self._lock = threading.RLock()
        self._prompt = PromptTokens(engine)
        self._prefix = self._prompt.prefix
        self._tries: dict[int, ResponseTrie] = {}
        self.guess = guess_bucket(config.guess, model.file.sha256)
        self._threads = ThreadPolicy(config.n_threads) if config.adaptive_threads else None
        self.threads_in_use = engine.n_threads  # what the last answer ran on
        taus = TauTable.load(config.tau_file) if config.tau_file else None
        self.routing = RoutingChoice.of(config, taus, *(profile or (None, None)))
        if taus is not None and config.tau_file:
            taus.check(
                model_sha256=model.file.sha256,
                signal=self.routing.signal,
                origin=config.tau_file,
                p_correct_version=version_of(calibrator),
            )

    @classmethod
    def load(
        cls,
        config: RuntimeConfig | None = None,
        *,
        home: Path | None = None,
        escalator: Escalator | None = None,
        capture_hidden: bool | None = None,
    ) -> EdgeRuntime:
        """Resolve, check and load the model and its calibrator, then evaluate the shared
        system prompt once. ``capture_hidden`` (default: when the calibrator reads the hidden
        state) installs the hidden-state capture, which fast passes with ``hidden`` need; the
        layers a version-3 calibrator reads are captured too."""
        config = config or RuntimeConfig.from_env()
        home = home or foggen_home()
        file = resolve_model(config.model, home=home)
        info = inspect_gguf(file.path)
        profile = routing_profile(config, file.sha256)
        needs = config if profile is None else replace(config, signal=profile[0].signal)
        calibrator = load_calibrator(needs, file, home, info)
        profile = profile if profile_fits(profile, calibrator) else None
        engine = LlamaEngine(
            file.path,
            EngineSettings(
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_batch=config.n_batch,
                mmap=config.mmap,
                capture_hidden=(
                    calibrator is not None and calibrator.needs_hidden
                    if capture_hidden is None
                    else capture_hidden
                ),
                capture_layers=() if calibrator is None else calibrator.layers,
            ),
        )
        try:
            runtime = cls(engine, LoadedModel(file, info), config, escalator, calibrator, profile)
        except BaseException:
            engine.close()
            raise
        runtime.warm()
        return runtime

    def sibling(self, *, config: RuntimeConfig | None = None, **engine: object) -> EdgeRuntime:
        """This model on another llama.cpp context (the weights are shared), with ``engine``
        settings changed (e.g. ``capture_hidden``, ``n_threads``) and, if given, another
        ``config``: for comparisons in one process. Warm; the caller closes it."""
        runtime = EdgeRuntime(
            self.engine.sibling(**engine),
            self.model,
            config or self.config,
            self.escalator,
            self.calibrator,
            None if self.routing.profile is None else (self.routing.profile, self.routing.point),
        )
        runtime.warm()
        return runtime

    def warm(self) -> None:
        """Evaluate the system prompt so the first question only pays for its own tokens."""
        with self._lock:
            self.engine.logits_after(self._prefix)

    def close(self) -> None:
        with self._lock:
            self.engine.close()

    def __enter__(self) -> EdgeRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- answering ----------------------------------------------------------------------------
    def answer(
        self,
        question: str | Question,
        choices: list[str] | tuple[str, ...] | None = None,
        *,
        id: str | None = None,
        domain: str | None = None,
        tau: float | None = None,
        mode: Mode | None = None,
        signal: Signal | None = None,
        force_route: Route | None = None,
        trail: Trail | None = None,
        sampling: Sampling | None = None,
        orders: int | None = None,
    ) -> DecisionRecord:
        """Answer one multiple-choice question and decide where its answer comes from.

        ``trail``: the FogGen nodes the question came through (when this node serves another
        node's escalation). ``sampling``: one draw at a temperature instead of the greedy
        answer, answered here and never escalated (a distillation teacher's request).
        ``orders`` > 1: thorough mode (``edge_runtime.thorough``), the consensus answered.
        """
        if not isinstance(question, Question):
            question = make_question(question, choices, id=id, domain=domain)
        if sampling is not None:
            mode, force_route, orders = Mode.FAST, Route.LOCAL, 1
        mode, orders = mode or self.config.mode, orders or self.config.orders
        signal, tau, profile = self.routing.decide(
            question.domain, tau=tau, signal=signal, mode=mode, orders=orders
        )
        config = replace(  # validated: e.g. a probability signal needs fast mode
            self.config, tau=tau, mode=mode, signal=signal, orders=orders, tau_file=None,
            force_route=force_route or self.config.force_route,
        )  # fmt: skip
        started = time.perf_counter()
        thorough = None
        if orders > 1:
            thorough = thorough_pass(self, question, orders)
            result = thorough.combined()
        else:
            pick = None if sampling is None else sampling.pick(question)
            result = self.run_edge(question, mode=config.mode, pick=pick)
        edge_ms = (time.perf_counter() - started) * 1000.0
        trail = (trail or Trail()).then(self.node)
        record = self._decide(
            question, result, config, edge_ms, trail, signal=signal, tau=tau, profile=profile
        )
        if thorough is not None:
            record = replace(record, orders=len(thorough.passes), order_answers=thorough.answers)
        return record if sampling is None else replace(record, mode=SAMPLED)

    def exclusive(self) -> threading.RLock:
        """Hold this (re-entrant) lock for several passes that must follow each other."""
        return self._lock

    @property
    def chat_format(self) -> ChatFormat:
        """How this model's prompts read (rendered once, at load)."""
        return self._prompt.chat

    @property
    def prefix_length(self) -> int:
        """Tokens of the system prompt's part every question shares (its KV state is kept)."""
        return len(self._prefix)

    def prompt_tokens(self, question: Question) -> list[int]:
        """The exact token ids llama.cpp evaluates for ``question`` (see ``PromptTokens``)."""
        return self._prompt(question)

    @property
    def reads_hidden(self) -> bool:
        """Whether fast passes read the hidden state by default (the calibrator needs it)."""
        return (
            self.calibrator is not None
            and self.calibrator.needs_hidden
            and self.engine.captures_hidden
        )

    def run_edge(
        self,
        question: Question,
        *,
        mode: Mode,
        hidden: bool | None = None,
        pick: Pick | None = None,
        keep_cache: bool = False,
    ) -> EdgeResult:
        """One forward pass of the edge model in ``mode`` (no routing); with ``keep_cache``,
        after the common prefix of what the cache holds (inside :meth:`exclusive`: the thorough
        passes of one question share its stem), else after the system prompt; with ``hidden``
        (default: when the calibrator needs it), a fast pass also returns the hidden state
        where the letter is read; with ``pick``, the fast walk takes its choices (sampling)."""
        hidden = self.reads_hidden if hidden is None else hidden
        if hidden and mode is Mode.FAST and not self.engine.captures_hidden:
            raise ConfigError(
                "this runtime reads no hidden states: load it with capture_hidden=True "
                "(or a calibrator that reads them)"
            )
        schema = AnswerSchema.for_options(len(question.choices))
        with self._lock:
            prompt = self.prompt_tokens(question)
            room = FAST_RESPONSE_TOKENS if mode is Mode.FAST else MAX_NEW_TOKENS
            if len(prompt) + room > self.engine.n_ctx:
                raise PromptTooLongError(len(prompt), self.engine.n_ctx - room)
            if self._threads is not None:
                threads = self._threads.choose()
                if threads != self.threads_in_use:
                    self.engine.set_threads(threads)
                    self.threads_in_use = threads
            if keep_cache:
                pass
            elif self.config.cache_prefix:
                # Reuse the system prompt only, never an earlier question's tokens: llama.cpp's
                # quantized kernels give batch-shape-dependent logits, so a repeated question
                # evaluated from its own cache would not get the same answer as the first time.
                self.engine.forget_after(len(self._prefix))
            else:
                self.engine.reset()
            if mode is Mode.FAST:
                result = decode_fast(
                    self.engine,
                    prompt,
                    self.response_trie(schema),
                    hidden=hidden,
                    pick=pick,
                    guess=self.guess,
                    question_end=(
                        self._prompt.question_end(prompt) if self.engine.captures_layers else None
                    ),
                )
            else:
                grammar = schema.grammar() if mode is Mode.GRAMMAR else None
                result = decode_generate(
                    self.engine, prompt, schema, grammar=grammar, max_new_tokens=MAX_NEW_TOKENS
                )
        return replace(result, n_prompt_tokens=len(prompt))

    def p_correct(self, question: Question, result: EdgeResult) -> float | None:
        """The calibrator's probability that ``result`` is right (None: no calibrator, or a
        pass without distributions, i.e. not fast mode)."""
        if self.calibrator is None:
            return None
        n_tokens = result.n_prompt_tokens or len(self.prompt_tokens(question))
        return self.calibrator.of_pass(question, result, n_tokens, self.engine.captures_layers)

    def _p_correct_for(
        self, question: Question, result: EdgeResult, config: RuntimeConfig
    ) -> float | None:
        if config.orders > 1:  # the calibrator ranks one pass's answer, not a consensus
            return None
        p_correct = self.p_correct(question, result)
        if config.signal is Signal.CALIBRATED and p_correct is None:
            raise ConfigError(
                "--signal calibrated needs a calibrator for this model "
                f"(sha256 {self.model.file.sha256[:12]}...) and a fast-mode pass: start with "
                "--signal calibrated (a named model's shipped calibrator loads then), run "
                "'foggen calibrator fit', or pass one with --calibrator"
            )
        return p_correct

    def response_trie(self, schema: AnswerSchema) -> ResponseTrie:
        """The valid responses of ``schema`` as token ids (built once per number of options)."""
        n = len(schema.letters)
        if n not in self._tries:
            self._tries[n] = ResponseTrie(schema, self.engine)
        return self._tries[n]

    def _decide(
        self,
        question: Question,
        result: EdgeResult,
        config: RuntimeConfig,
        edge_ms: float,
        trail: Trail,
        *,
        signal: Signal,
        tau: float,
        profile: str | None,
    ) -> DecisionRecord:
        """The record of one pass, routed on ``signal`` >= ``tau`` (``profile``: who chose)."""
        p_correct = self._p_correct_for(question, result, config)
        score = routing_score(signal, result, p_correct)
        decided = config.force_route or route(score, tau)
        record_id = question.id or uuid.uuid4().hex
        if decided is Route.LOCAL:
            outcome = kept_local(result.letter)
        elif self.escalator is None:  # no cloud configured: answer locally, say so
            outcome = no_cloud(result.letter)
        else:
            outcome = self.escalator.escalate(
                question, result.letter, record_id=record_id, trail=trail
            )
        edge_error = None if result.lenient else "unparseable_output"
        total_ms = edge_ms + (outcome.cloud_ms or 0.0)
        here = Hop(
            node=self.node.name, model=self.model.file.path.name, route=decided.value,
            signal=signal.value, score=score, answer=outcome.answer,
            ms=round(total_ms, 3),
        )  # fmt: skip
        return DecisionRecord(
            id=record_id,
            domain=question.domain,
            answer=outcome.answer,
            local_answer=result.letter,
            answer_source=outcome.source,
            route=decided,
            route_forced=config.force_route is not None,
            escalation=outcome.escalation,
            error_kind=outcome.error_kind or edge_error,
            confidence=result.confidence,
            signal=signal.value,
            score=score,
            p_correct=p_correct,
            p_correct_version=None if p_correct is None else version_of(self.calibrator),
            bucket_probs=result.bucket_probs,
            letter_probs=result.letter_probs,
            tau=tau,
            profile=profile,
            mode=config.mode.value,
            output=result.output,
            latency_ms=Latency(
                edge=round(edge_ms, 3), cloud=outcome.cloud_ms, total=round(total_ms, 3)
            ),
            model_sha256=self.model.file.sha256,
            provenance=(here, *outcome.hops),
        )
