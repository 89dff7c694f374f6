"""Conversation templates and tokenization with answer-only labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch

from lisakit.registry import TRANSFORMS
from lisakit.tokenizers import build_tokenizer
from lisakit.utils.constants import IMAGE_TOKEN, LM_IGNORE_INDEX, SEG_TOKEN


@dataclass(frozen=True)
class ConversationTemplate:
    """A single-turn chat template: ``{system}{sep}{USER}: {q}{sep}{ASSISTANT}: {a}{eos}``.

    Attributes:
        system: System prompt ('' for none).
        roles: (user role, assistant role).
        sep: Separator between the system prompt and the turns.
    """

    system: str
    roles: tuple = ('USER', 'ASSISTANT')
    sep: str = ' '

    def head(self) -> str:
        """Text before the question."""
        prefix = self.system + self.sep if self.system else ''
        return f'{prefix}{self.roles[0]}: '

    def tail(self) -> str:
        """Text between the question and the answer (the prompt ends here)."""
        return f'{self.sep}{self.roles[1]}:'

    def turn_head(self) -> str:
        """Text before a later question of a multi-turn conversation (it follows the
        previous answer's EOS, as in LLaVA's ``llava_v1``)."""
        return f'{self.roles[0]}: '


#: Named templates. ``llava_v1`` is LISA's (and LLaVA-1.5's) template; ``plain``
#: drops the system prompt to keep tiny CPU configs short.
CONVERSATION_TEMPLATES = {
    'llava_v1': ConversationTemplate(
        system='A chat between a curious human and an artificial intelligence assistant. '
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    ),
    'plain': ConversationTemplate(system=''),
}


def get_template(template: Union[str, dict, ConversationTemplate]) -> ConversationTemplate:
    """Look up a template by name or build one from a dict."""
    if isinstance(template, ConversationTemplate):
        return template
    if isinstance(template, dict):
        return ConversationTemplate(**template)
    if template not in CONVERSATION_TEMPLATES:
        raise ValueError(
            f'Unknown conversation template {template!r}; expected one of '
            f'{sorted(CONVERSATION_TEMPLATES)} or a dict(system=, roles=, sep=).'
        )
    return CONVERSATION_TEMPLATES[template]


@TRANSFORMS.register_module()
class TokenizeConversation:
    """Render a conversation with a template and tokenize it.

    The conversation is ``results['conversations']``, a list of
    ``dict(question=..., answer=...)`` turns with ``<image>`` in the first question
    only, or else the single turn ``results['question']`` / ``results['answer']``.
    Rendering: ``[BOS] {head}{q1}{tail} {a1}[EOS]{turn_head}{q2}{tail} {a2}[EOS]...``
    (LLaVA's ``llava_v1`` multi-turn form). Labels are ``-100`` everywhere but the
    answer tokens and each answer's closing EOS.

    When the text is longer than ``max_length``, whole trailing turns are dropped
    with their masks (``gt_masks`` follow ``<SEG>`` order; ``dropped_turns`` counts
    them). If the first turn alone is too long, its question is cut from its end;
    an answer without ``<SEG>`` (text only) is cut from its end first. An answer's
    ``<SEG>`` is never truncated. Adds ``input_ids`` and ``labels`` (L,) int64.

    Args:
        tokenizer: Tokenizer config, the same as the backbone's.
        template: Conversation template name or dict.
        max_length: Maximum tokens before image expansion (``<image>`` counts 1).
        seg_token: Text of the segmentation token.
        image_token: Text of the image placeholder.
    """

    def __init__(
        self,
        tokenizer: Union[str, dict],
        template: Union[str, dict] = 'llava_v1',
        max_length: int = 512,
        seg_token: str = SEG_TOKEN,
        image_token: str = IMAGE_TOKEN,
    ) -> None:
        self.tokenizer_cfg = tokenizer
        self.template = get_template(template)
        self.max_length = max_length
        self.seg_token = seg_token
        self.image_token = image_token
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The tokenizer, built lazily (once per dataloader worker)."""
        if self._tokenizer is None:
            self._tokenizer = build_tokenizer(self.tokenizer_cfg, self.seg_token, self.image_token)
        return self._tokenizer

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)['input_ids']

    def _turns(self, results: dict, name: str) -> list[tuple[str, str]]:
        """(question, answer) texts, checked: strings, one ``<image>`` in turn 1 only."""
        convs = results.get('conversations')
        if convs is None:
            missing = [k for k in ('question', 'answer') if not isinstance(results.get(k), str)]
            if missing:
                raise KeyError(
                    f'{name}: the sample has no text {missing}; a dataset item needs '
                    f"'question' (with one {self.image_token}) and 'answer' (one "
                    f"{self.seg_token} per mask), or 'conversations'."
                )
            turns = [(results['question'], results['answer'])]
        else:
            turns = [(t.get('question'), t.get('answer')) for t in convs]
            if not turns or not all(isinstance(x, str) for t in turns for x in t):
                raise KeyError(
                    f"{name}: 'conversations' must be a non-empty list of "
                    'dict(question=str, answer=str).'
                )
        for k, (question, _) in enumerate(turns):
            if question.count(self.image_token) != (1 if k == 0 else 0):
                where = 'the question must' if k == 0 else f'question {k + 1} must not'
                count = 'exactly one' if k == 0 else 'any'
                raise ValueError(
                    f'{name}: {where} contain {count} {self.image_token!r}, got {question!r}.'
                )
        if self.seg_token != SEG_TOKEN:  # templates write lisakit's <SEG>, e.g. LISA's [SEG]
            turns = [(q, a.replace(SEG_TOKEN, self.seg_token)) for q, a in turns]
        return turns

    def _fit_single(self, head, tail, q_ids, a_ids, name) -> tuple[list[int], list[int]]:
        """Cut one over-long turn: a text-only answer's end, then the question's end."""
        seg_id = self.tokenizer.convert_tokens_to_ids(self.seg_token)
        keep = q_ids.index(self.tokenizer.convert_tokens_to_ids(self.image_token)) + 1
        room = self.max_length - len(head) - len(tail)
        if seg_id not in a_ids:
            a_ids = a_ids[: max(room - len(q_ids), 1)]
        budget = room - len(a_ids)
        if budget < keep:
            need = self.max_length - budget + keep
            raise ValueError(
                f'{name}: the prompt frame, the image token and the answer need {need} '
                f'tokens, more than max_length={self.max_length}; raise max_length or '
                'shorten the answer.'
            )
        return q_ids[:budget], a_ids

    def __call__(self, results: dict) -> dict:
        tok = self.tokenizer
        name = results.get('img_path') or f'sample {results.get("sample_idx")}'
        turns = self._turns(results, name)
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        head = bos + self._encode(self.template.head())
        tail = self._encode(self.template.tail())
        turn_head = self._encode(self.template.turn_head())
        pieces = [
            ((turn_head if k else []) + self._encode(q), self._encode(a) + [tok.eos_token_id])
            for k, (q, a) in enumerate(turns)
        ]
        seg_id = tok.convert_tokens_to_ids(self.seg_token)
        n_seg = [a_ids.count(seg_id) for _, a_ids in pieces]
        gt_masks = results.get('gt_masks')
        if gt_masks is not None and sum(n_seg) != len(gt_masks):
            raise ValueError(
                f'{name}: the answer {" / ".join(a for _, a in turns)!r} has {sum(n_seg)} '
                f'{self.seg_token} tokens but there are {len(gt_masks)} masks.'
            )
        kept, length = [], len(head)
        for q_ids, a_ids in pieces:
            if kept and length + len(q_ids) + len(tail) + len(a_ids) > self.max_length:
                break
            kept.append((q_ids, a_ids))
            length += len(q_ids) + len(tail) + len(a_ids)
        if length > self.max_length:  # the first turn alone is too long
            kept = [self._fit_single(head, tail, *kept[0], name)]
        ids, labels = list(head), [LM_IGNORE_INDEX] * len(head)
        for q_ids, a_ids in kept:
            ids += q_ids + tail + a_ids
            labels += [LM_IGNORE_INDEX] * (len(q_ids) + len(tail)) + a_ids
        results['input_ids'] = torch.tensor(ids, dtype=torch.long)
        results['labels'] = torch.tensor(labels, dtype=torch.long)
        if len(kept) < len(pieces):
            results['dropped_turns'] = len(pieces) - len(kept)
            if gt_masks is not None:
                results['gt_masks'] = gt_masks[: sum(n_seg[: len(kept)])]
        return results
