"""Proof of parity: the same prompts through transformers (the source) and llama.cpp (the GGUF).

Prompts are the runtime's own (system prompt + a real bundled MCQ + a schema answer), teacher
forced. Reported: whether both tokenizers give identical ids, top-1 agreement over all
positions, max |logit difference|, mean KL(source || GGUF), and the decision: the letter after
``Final answer:`` (bucket held fixed) and the largest difference of the first-digit (bucket)
distributions. ``compare_ggufs`` does the decision part between two GGUFs (e.g. an export and
the original quantized file) through the runtime's llama.cpp engine.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from converter.errors import MissingExtraError
from edge_runtime.engine import EngineSettings, LlamaEngine
from edge_runtime.prompt import ChatFormat, chat_format_for_engine
from edge_runtime.question import Question
from edge_runtime.schema import AnswerSchema

log = logging.getLogger(__name__)

FIXED_BUCKET = "0.0"
VERIFY_BATCH = 64  # rows of 262,144 logits the context buffers per decode


@dataclass
class ParityReport:
    n_prompts: int = 0
    n_positions: int = 0
    token_id_mismatches: list[str] = field(default_factory=list)
    top1_agree: int = 0
    max_abs_logit_diff: float = 0.0
    kl_sum: float = 0.0
    letter_agree: int = 0
    max_bucket_prob_diff: float = 0.0

    @property
    def top1_agreement(self) -> float:
        return self.top1_agree / max(1, self.n_positions)

    @property
    def mean_kl(self) -> float:
        return self.kl_sum / max(1, self.n_positions)

    @property
    def letter_agreement(self) -> float:
        return self.letter_agree / max(1, self.n_prompts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("kl_sum")
        data.pop("top1_agree")
        data.pop("letter_agree")
        data.update(
            top1_agreement=round(self.top1_agreement, 6),
            mean_kl=self.mean_kl,
            letter_agreement=round(self.letter_agreement, 4),
            token_ids_identical=not self.token_id_mismatches,
        )
        return data


def teacher_text(question: Question, *, chat: ChatFormat) -> str:
    """The prompt in the model's ``chat`` format, then a schema answer (bucket held fixed)."""
    return chat.render(question) + AnswerSchema.for_options(len(question.choices)).render(
        FIXED_BUCKET, question.letters[0]
    )


def teacher_ids(engine: LlamaEngine, question: Question) -> tuple[str, list[int]]:
    """The teacher-forced prompt in the model's own chat format: its text (after BOS) and the
    ids llama.cpp evaluates (BOS first when the model wants one)."""
    chat = chat_format_for_engine(engine)
    text = teacher_text(question, chat=chat)
    return text, [*([engine.bos] if chat.add_bos else []), *engine.tokenize(text)]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _kl_sum(ref: np.ndarray, got: np.ndarray, rows: int = 16) -> float:
    """Sum over positions of KL(softmax(ref) || softmax(got)), in float32 row chunks (a float64
    pass over 250 x 262,144 logits costs seconds; chunks stay in cache). The log-ratio is taken
    as (ref - got) minus a per-row float64 constant, which keeps float32's error small."""
    total = 0.0
    for start in range(0, len(ref), rows):
        r, g = ref[start : start + rows], got[start : start + rows]
        max_r, max_g = r.max(-1, keepdims=True), g.max(-1, keepdims=True)
        exp_r = np.exp(r - max_r)
        z_r = exp_r.sum(-1, keepdims=True, dtype=np.float64)
        z_g = np.exp(g - max_g).sum(-1, keepdims=True, dtype=np.float64)
        shift = (max_r + np.log(z_r)) - (max_g + np.log(z_g))
        weighted = (exp_r * (r - g)).sum(-1, keepdims=True, dtype=np.float64) / z_r
        total += float((weighted - shift).sum())
    return total


def _choice_positions(
    engine: LlamaEngine, question: Question, n_tokens: int
) -> tuple[int, int, list[int], list[int]]:
    """Where the choices are read: (position whose logits predict the bucket's first digit,
    position predicting the letter, the digit token ids, the letter token ids)."""
    schema = AnswerSchema.for_options(len(question.choices))
    answer = engine.tokenize(schema.render(FIXED_BUCKET, question.letters[0]), special=False)
    start = n_tokens - len(answer)  # first answer token's index
    digit_pos = start + len(engine.tokenize("Confidence: ", special=False)) - 1
    digits = [engine.tokenize(digit, special=False)[0] for digit in ("0", "1")]
    letters = [engine.tokenize(f" {x}", special=False)[0] for x in question.letters]
    return digit_pos, n_tokens - 2, digits, letters


def _compare(
    report: ParityReport, engine: LlamaEngine, question: Question, ref: np.ndarray, got: np.ndarray
) -> None:
    report.n_prompts += 1
    report.n_positions += len(ref)
    report.top1_agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
    report.max_abs_logit_diff = max(report.max_abs_logit_diff, float(np.abs(ref - got).max()))
    report.kl_sum += _kl_sum(ref, got)
    digit_pos, letter_pos, digits, letters = _choice_positions(engine, question, len(ref))
    report.letter_agree += int(
        ref[letter_pos, letters].argmax() == got[letter_pos, letters].argmax()
    )
    p_ref = np.exp(_log_softmax(ref[digit_pos, digits]))
    p_got = np.exp(_log_softmax(got[digit_pos, digits]))
    report.max_bucket_prob_diff = max(
        report.max_bucket_prob_diff, float(np.abs(p_ref - p_got).max())
    )


def verify(
    source: str | Path,
    gguf_path: str | Path,
    questions: list[Question],
    *,
    adapter: str | Path | None = None,
    threads: int = 2,
    progress: bool = True,
) -> ParityReport:
    """Teacher-forced parity of ``gguf_path`` against the HF checkpoint ``source`` (fp32, eager)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingExtraError("torch and transformers", "train") from exc
    from converter.checkpoint import resolve_source

    directory = resolve_source(source)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.float32, attn_implementation="eager"
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))  # type: ignore[assignment]
    model.eval()
    engine = LlamaEngine(
        Path(gguf_path), EngineSettings(n_ctx=4096, n_threads=threads, n_batch=VERIFY_BATCH)
    )
    report = ParityReport()
    try:
        for question in tqdm(questions, desc="verify", unit="prompt", disable=not progress):
            text, ids = teacher_ids(engine, question)
            hf_ids = tokenizer(text, add_special_tokens=True)["input_ids"]
            if hf_ids != ids:
                report.token_id_mismatches.append(question.id or text[:40])
            with torch.no_grad():
                ref = model(torch.tensor([ids])).logits[0].float().numpy()
            _compare(report, engine, question, ref, engine.logits_for_all(ids))
    finally:
        engine.close()
    return report


@dataclass
class DecisionReport:
    n_questions: int = 0
    letter_agree: int = 0
    bucket_flips: int = 0  # the first digit's argmax differs
    max_bucket_prob_diff: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "letter_agreement": round(self.letter_agree / max(1, self.n_questions), 4),
        }


def _decision(engine: LlamaEngine, question: Question) -> tuple[np.ndarray, int]:
    _, ids = teacher_ids(engine, question)
    digit_pos, _, digits, letters = _choice_positions(engine, question, len(ids))
    digit_probs = np.exp(_log_softmax(engine.logits_after(ids[: digit_pos + 1])[digits]))
    letter = int(engine.logits_after(ids[:-1])[letters].argmax())
    return digit_probs, letter


def decision_agreement(
    reference: str | Path,
    candidate: str | Path,
    questions: list[Question],
    *,
    threads: int = 2,
    progress: bool = True,
) -> DecisionReport:
    """Per question, through the runtime's engine on both GGUFs: the letter after
    ``Final answer:`` with the bucket held fixed, and the bucket's first-digit distribution."""
    settings = EngineSettings(n_ctx=4096, n_threads=threads, n_batch=512)
    ref_engine, engine = (
        LlamaEngine(Path(reference), settings),
        LlamaEngine(Path(candidate), settings),
    )
    report = DecisionReport()
    try:
        for question in tqdm(questions, desc="decisions", unit="q", disable=not progress):
            (ref_digits, ref_letter), (digits, letter) = (
                _decision(ref_engine, question),
                _decision(engine, question),
            )
            report.n_questions += 1
            report.letter_agree += int(ref_letter == letter)
            report.bucket_flips += int(ref_digits.argmax() != digits.argmax())
            report.max_bucket_prob_diff = max(
                report.max_bucket_prob_diff, float(np.abs(ref_digits - digits).max())
            )
    finally:
        ref_engine.close()
        engine.close()
    return report


def batch_shape_self_agreement(
    model: str | Path, questions: list[Question], *, threads: int = 2
) -> float:
    """The noise floor of a decision: how often the same GGUF picks the same letter when
    llama.cpp evaluates it in batches of 512 vs 64 (quantized kernels differ by batch shape)."""
    big = LlamaEngine(Path(model), EngineSettings(n_ctx=4096, n_threads=threads, n_batch=512))
    small = LlamaEngine(Path(model), EngineSettings(n_ctx=4096, n_threads=threads, n_batch=64))
    try:
        same = [_decision(big, q)[1] == _decision(small, q)[1] for q in questions]
    finally:
        big.close()
        small.close()
    return sum(same) / max(1, len(same))


def compare_ggufs(
    reference: str | Path,
    candidate: str | Path,
    questions: list[Question],
    *,
    threads: int = 2,
    progress: bool = True,
) -> ParityReport:
    """The same teacher-forced comparison between two GGUFs, both through llama.cpp."""
    settings = EngineSettings(n_ctx=4096, n_threads=threads, n_batch=VERIFY_BATCH)
    ref_engine, engine = (
        LlamaEngine(Path(reference), settings),
        LlamaEngine(Path(candidate), settings),
    )
    report = ParityReport()
    try:
        for question in tqdm(questions, desc="compare", unit="prompt", disable=not progress):
            text, ids = teacher_ids(engine, question)
            _, ref_ids = teacher_ids(ref_engine, question)
            if ref_ids != ids:
                report.token_id_mismatches.append(question.id or text[:40])
            _compare(
                report,
                engine,
                question,
                ref_engine.logits_for_all(ref_ids),
                engine.logits_for_all(ids),
            )
    finally:
        ref_engine.close()
        engine.close()
    return report
