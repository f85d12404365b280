"""The three ways the edge model answers: ``fast``, ``grammar`` and ``free``.

``fast`` walks a token trie of every valid response (5 buckets x the offered letters, each in
its canonical tokenization). Forced tokens are only appended; logits are read only where the
valid responses diverge (the bucket's first digit, its decimals, the letter), and each choice is
the argmax among the allowed continuations (ties go to the earlier bucket or letter). The same
logits give the bucket distribution (completed with at most one tiny extra decode for the branch
not taken) and the letter distribution given the emitted bucket.

With ``hidden``, the decode that reads the letter also returns the model's final hidden state
there (see ``LlamaEngine.logits_and_hidden_after``): the vector the LM head turns into the
letter's logits, after the question and the emitted bucket. The token before the letter is then
decoded on its own (embeddings on), the forced tokens before it as one batch. llama.cpp's
kernels differ by batch shape, so this moves the letter's probabilities by float noise (a
near-tie can flip); the bucket's are untouched. Reading at the emitted letter instead (one more
decode after every choice) ranked worse on calib: cross-validated AUROC 0.643 against 0.671 on
the 1.5B's 409 calib questions (0.620 against 0.671 from the hidden state alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_runtime.engine import LlamaEngine
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

    @property
    def confidence(self) -> float | None:
        return None if self.bucket is None else float(self.bucket)


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
        for bucket, letter, text in schema.responses():
            node = self.root
            node.buckets.add(bucket)
            node.letters.add(letter)
            for token in engine.tokenize(text, special=False):
                node = node.children.setdefault(token, _Node())
                node.buckets.add(bucket)
                node.letters.add(letter)
            if node.children or node.leaf is not None:
                raise ValueError(f"response {text!r} is a prefix of another one")
            node.leaf = (bucket, letter)


def restricted_softmax(logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
    """Probabilities of ``tokens`` renormalised among themselves."""
    values = np.asarray(logits[list(tokens)], dtype=np.float64)
    values = np.exp(values - values.max())
    return values / values.sum()


class _Walk:
    """One greedy walk through the trie, remembering the distribution at each choice point."""

    def __init__(self, engine: LlamaEngine, prompt: Sequence[int], *, hidden: bool) -> None:
        self.engine = engine
        self.prompt = list(prompt)
        self.choices: dict[tuple[int, ...], dict[int, float]] = {}
        self.want_hidden = hidden
        self.hidden: np.ndarray | None = None

    def distribution(self, prefix: tuple[int, ...], node: _Node) -> dict[int, float]:
        if prefix not in self.choices:
            sequence = self.prompt + list(prefix)
            if self.want_hidden and len(node.buckets) == 1 and len(node.letters) > 1:
                logits, self.hidden = self.engine.logits_and_hidden_after(sequence)
            else:
                logits = self.engine.logits_after(sequence)
            tokens = list(node.children)
            probs = restricted_softmax(logits, tokens).tolist()
            self.choices[prefix] = dict(zip(tokens, probs, strict=True))
        return self.choices[prefix]

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
) -> EdgeResult:
    """The greedy walk (or ``pick``'s, e.g. :func:`tempered_pick`) and the distributions."""
    walk = _Walk(engine, prompt, hidden=hidden)
    tokens, path = walk.greedy(trie.root, pick)
    leaf = path[-1][1].leaf
    assert leaf is not None  # the walk only stops at a leaf
    bucket, letter = leaf
    fixed_prefix, fixed_node = next((p, n) for p, n in path if len(n.buckets) == 1)
    letter_probs = walk.probs(fixed_prefix, fixed_node, "letters")
    bucket_probs = walk.probs((), trie.root, "buckets")
    return EdgeResult(
        letter=letter,
        bucket=bucket,
        output=trie.schema.render(bucket, letter),
        response_tokens=tokens,
        bucket_probs={b: bucket_probs.get(b, 0.0) for b in trie.schema.buckets},
        letter_probs={x: letter_probs.get(x, 0.0) for x in trie.schema.letters},
        hidden=walk.hidden,
    )


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
