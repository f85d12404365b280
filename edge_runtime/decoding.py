"""The three ways the edge model answers: ``fast``, ``grammar`` and ``free``.

``fast`` walks a token trie of every valid response (5 buckets x the offered letters, each in
its canonical tokenization). Forced tokens are only appended; logits are read only where the
valid responses diverge (the bucket's first digit, its decimals, the letter), and each choice is
the argmax among the allowed continuations (ties go to the earlier bucket or letter). The same
logits give the bucket distribution (completed with at most one tiny extra decode for the branch
not taken) and the letter distribution given the emitted bucket.

With a guessed bucket (the model's usual one: ``RuntimeConfig.guess``), the question and the
response with that bucket go to llama.cpp as one batch, with logits at each choice point on
the way: when the walk agrees with the guess, the answer and both distributions come from that
single decode; where it leaves the guess it continues from there, so a miss costs at most what
the walk without a guess costs (a decode per choice point). The guess is fixed per model, never
the last answer's bucket: the batch shapes, and so llama.cpp's float noise, would then depend
on the question before, and a question would not always get the same record.

With ``hidden``, the final hidden state at the row where the letter is read comes with its
logits: the engine's capture copies it as llama.cpp's graph computes it (``capture_hidden``),
so reading it changes no number of the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.engine import EngineError, LlamaEngine, Output
from edge_runtime.schema import AnswerSchema


@dataclass(frozen=True)
class EdgeResult:
    """What the edge model produced for one question."""

    letter: str | None
    bucket: str | None
    output: str
    response_tokens: tuple[int, ...]
    bucket_probs: dict[str, float] | None = None
    letter_probs: dict[str, float] | None = None
    strict: bool = True  # exactly the two schema lines, then end of turn
    lenient: bool = True  # the first two lines parse
    n_prompt_tokens: int | None = None  # tokens llama.cpp evaluated for the prompt (BOS included)
    # The final hidden state where the letter is read (float32, n_embd), when asked for.
    hidden: np.ndarray | None = field(default=None, compare=False, repr=False)
    # fast mode: whether the guessed bucket was the one emitted (None: no guess), and how many
    # llama.cpp decodes the answer took after the cached system prompt
    guess_hit: bool | None = field(default=None, compare=False)
    decodes: int | None = field(default=None, compare=False)
    # The captured layers' outputs (engine ``capture_layers``), float32 (layers, n_embd), at
    # the positions of :data:`POSITIONS`, when the engine captures layers.
    layers: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)

    @property
    def confidence(self) -> float | None:
        return None if self.bucket is None else float(self.bucket)


LETTER = "letter"  # the row whose logits choose the letter
QUESTION = "question"  # the last token of the user's message (before the turn change)
POSITIONS = (LETTER, QUESTION)


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    buckets: set[str] = field(default_factory=set)
    letters: set[str] = field(default_factory=set)
    leaf: tuple[str, str] | None = None  # (bucket, letter) where a response ends


class ResponseTrie:
    """All valid responses of a schema as a trie over their canonical token ids."""

    def __init__(self, schema: AnswerSchema, engine: LlamaEngine) -> None:
        self.schema = schema
        self.root = _Node()
        self.paths: dict[tuple[str, str], tuple[int, ...]] = {}
        for bucket, letter, text in schema.responses():
            node = self.root
            node.buckets.add(bucket)
            node.letters.add(letter)
            self.paths[bucket, letter] = tuple(engine.tokenize(text, special=False))
            for token in self.paths[bucket, letter]:
                node = node.children.setdefault(token, _Node())
                node.buckets.add(bucket)
                node.letters.add(letter)
            if node.children or node.leaf is not None:
                raise ValueError(f"response {text!r} is a prefix of another one")
            node.leaf = (bucket, letter)

    def choice_points(self, tokens: Sequence[int]) -> list[tuple[int, ...]]:
        """The prefixes of the response ``tokens`` where the walk chooses (logits are read)."""
        return [prefix for prefix, _ in self._choices(tokens)]

    def _choices(self, tokens: Sequence[int]) -> list[tuple[tuple[int, ...], _Node]]:
        return [
            (prefix, node) for prefix, node in _along(self.root, tokens) if len(node.children) > 1
        ]


def _along(root: _Node, tokens: Sequence[int]) -> Iterator[tuple[tuple[int, ...], _Node]]:
    """The trie's nodes along ``tokens`` with their prefixes, the root first."""
    node = root
    yield (), node
    for n, token in enumerate(tokens):
        node = node.children[token]
        yield tuple(tokens[: n + 1]), node


def _reads_letter(node: _Node) -> bool:
    """The choice point where the letter is chosen (the bucket is fixed by then)."""
    return len(node.buckets) == 1 and len(node.letters) > 1 and len(node.children) > 1


def restricted_softmax(logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """Probabilities of ``tokens`` renormalised among themselves."""
    values = np.asarray(logits[list(tokens)], dtype=np.float64)
    values = np.exp(values - values.max())
    return values / values.sum()


class _Walk:
    """One greedy walk through the trie, remembering the distribution at each choice point."""

    def __init__(
        self, engine: LlamaEngine, prompt: Sequence[int], *, hidden: bool, mark: int | None
    ) -> None:
        self.engine = engine
        self.prompt = list(prompt)
        self.choices: dict[tuple[int, ...], dict[int, float]] = {}
        self.states: dict[tuple[int, ...], np.ndarray] = {}  # hidden states at letter choices
        self.layers: dict[tuple[int, ...], np.ndarray] = {}  # captured layers at letter choices
        self.want_hidden = hidden
        self.marks = [] if mark is None else [mark]  # read in the first decode only
        self.marked: np.ndarray | None = None
        self.n_decodes = 0

    def _evaluate(self, tokens: list[int], rows: list[int]) -> list[Output]:
        evaluation = self.engine.evaluate(tokens, rows, marks=self.marks)
        if self.marks:
            self.marked = evaluation.marked.get(self.marks[0])
            self.marks = []
        self.n_decodes += 1
        return evaluation.outputs

    def speculate(self, trie: ResponseTrie, guess: Sequence[int]) -> None:
        """Evaluate the question and the guessed response in one decode, reading the logits
        at every choice point on the guess (up to the letter's)."""
        choices = trie._choices(guess)  # every schema has at least the letter to choose
        rows = [len(self.prompt) + len(prefix) - 1 for prefix, _ in choices]
        outputs = self._evaluate(self.prompt + list(choices[-1][0]), rows)
        for (prefix, node), output in zip(choices, outputs, strict=True):
            self._remember(prefix, node, output)

    def distribution(self, prefix: tuple[int, ...], node: _Node) -> dict[int, float]:
        if prefix not in self.choices:
            sequence = self.prompt + list(prefix)
            (output,) = self._evaluate(sequence, [len(sequence) - 1])
            self._remember(prefix, node, output)
        return self.choices[prefix]

    def _remember(self, prefix: tuple[int, ...], node: _Node, output: Output) -> None:
        tokens = list(node.children)
        probs = restricted_softmax(output.logits, tokens).tolist()
        self.choices[prefix] = dict(zip(tokens, probs, strict=True))
        if _reads_letter(node) and output.layers is not None:
            self.layers[prefix] = output.layers
        if self.want_hidden and _reads_letter(node):
            if output.hidden is None:
                raise EngineError("this engine does not capture hidden states (capture_hidden)")
            self.states[prefix] = output.hidden

    def greedy(
        self, root: _Node, pick: Pick | None = None
    ) -> tuple[tuple[int, ...], list[tuple[tuple[int, ...], _Node]]]:
        """The argmax walk, or ``pick``'s (it gets each choice point's distribution)."""
        prefix: tuple[int, ...] = ()
        node = root
        path: list[tuple[tuple[int, ...], _Node]] = [(prefix, root)]
        while node.leaf is None:
            if len(node.children) == 1:
                token = next(iter(node.children))
            else:
                dist = self.distribution(prefix, node)
                if pick is None:
                    token = max(node.children, key=lambda t: (dist[t], -list(dist).index(t)))
                else:
                    token = pick(dist)
            prefix, node = prefix + (token,), node.children[token]
            path.append((prefix, node))
        return prefix, path

    def probs(self, prefix: tuple[int, ...], node: _Node, key: str) -> dict[str, float]:
        """The distribution over ``key`` ('buckets' or 'letters') below ``node``."""
        values: set[str] = getattr(node, key)
        if len(values) == 1:
            return {next(iter(values)): 1.0}
        if len(node.children) == 1:
            token, child = next(iter(node.children.items()))
            return self.probs(prefix + (token,), child, key)
        total: dict[str, float] = {}
        for token, p_token in self.distribution(prefix, node).items():
            for value, p in self.probs(prefix + (token,), node.children[token], key).items():
                total[value] = total.get(value, 0.0) + p_token * p
        return total


Pick = Callable[[dict[int, float]], int]  # a choice point's distribution -> the token taken


def tempered_pick(temperature: float, rng: np.random.Generator) -> Pick:
    """Draw each choice from the allowed tokens' softmax at ``temperature``: the schema-forced
    sampler (what a GBNF sampler at that temperature does on the canonical tokenizations)."""
    if not temperature > 0.0:
        raise ValueError("temperature must be > 0 (the greedy walk takes the argmax)")

    def pick(dist: dict[int, float]) -> int:
        tokens = list(dist)
        with np.errstate(divide="ignore"):
            logp = np.log(np.array([dist[t] for t in tokens], dtype=np.float64)) / temperature
        weights = np.exp(logp - logp.max())
        return tokens[int(rng.choice(len(tokens), p=weights / weights.sum()))]

    return pick


def decode_fast(
    engine: LlamaEngine,
    prompt: Sequence[int],
    trie: ResponseTrie,
    *,
    hidden: bool = False,
    pick: Pick | None = None,
    guess: str | None = None,
    question_end: int | None = None,
) -> EdgeResult:
    """The greedy walk (or ``pick``'s, e.g. :func:`tempered_pick`) and the distributions.

    With ``guess`` (a bucket), the question and the response with that bucket are evaluated in
    one decode first, with logits at each choice point on the way; the walk then decodes again
    only from the first choice where it leaves the guess. ``question_end``: the prompt's index
    of the user message's last token, where the engine's captured layers are read too.
    """
    walk = _Walk(engine, prompt, hidden=hidden, mark=question_end)
    if guess is not None:
        walk.speculate(trie, trie.paths[guess, trie.schema.letters[0]])
    tokens, path = walk.greedy(trie.root, pick)
    leaf = path[-1][1].leaf
    assert leaf is not None  # the walk only stops at a leaf
    bucket, letter = leaf
    fixed_prefix, fixed_node = next((p, n) for p, n in path if len(n.buckets) == 1)
    letter_probs = walk.probs(fixed_prefix, fixed_node, "letters")
    bucket_probs = walk.probs((), trie.root, "buckets")
    letter_prefix = next((p for p, n in path if _reads_letter(n)), None)
    return EdgeResult(
        letter=letter,
        bucket=bucket,
        output=trie.schema.render(bucket, letter),
        response_tokens=tokens,
        bucket_probs={b: bucket_probs.get(b, 0.0) for b in trie.schema.buckets},
        letter_probs={x: letter_probs.get(x, 0.0) for x in trie.schema.letters},
        hidden=walk.states.get(letter_prefix) if letter_prefix is not None else None,
        guess_hit=None if guess is None else bucket == guess,
        decodes=walk.n_decodes,
        layers=_layers(walk, letter_prefix),
    )


def _layers(walk: _Walk, letter_prefix: tuple[int, ...] | None) -> dict[str, np.ndarray] | None:
    letter = walk.layers.get(letter_prefix) if letter_prefix is not None else None
    if letter is None:
        return None
    layers = {LETTER: letter}
    if walk.marked is not None:
        layers[QUESTION] = walk.marked
    return layers


def decode_generate(
    engine: LlamaEngine,
    prompt: Sequence[int],
    schema: AnswerSchema,
    *,
    grammar: str | None,
    max_new_tokens: int,
) -> EdgeResult:
    """Greedy generation (``grammar`` constrains it), then parsing."""
    engine.logits_after(prompt)
    generated: list[int] = []
    ended = False
    with engine.new_sampler(grammar=grammar) as sampler:
        for _ in range(max_new_tokens):
            token = engine.sample(sampler)
            if engine.is_end_of_generation(token):
                ended = True
                break
            generated.append(token)
            engine.append(token)
    text = engine.detokenize(generated)
    parsed = schema.parse(text)
    bucket = None if parsed.confidence is None else _bucket_text(schema, parsed.confidence)
    return EdgeResult(
        letter=parsed.letter,
        bucket=bucket,
        output=text,
        response_tokens=tuple(generated),
        strict=parsed.strict and ended,
        lenient=parsed.lenient,
    )


def _bucket_text(schema: AnswerSchema, value: float) -> str:
    return next(b for b in schema.buckets if float(b) == value)
