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
    """Render ``question`` / ``answer`` with a template and tokenize them.

    Labels are ``-100`` everywhere but the answer tokens and the closing EOS. If the
    sequence is longer than ``max_length`` the *question* is cut from its end; the
    answer (and so every ``<SEG>``) is never truncated. Adds ``input_ids`` and
    ``labels`` (L,) int64.

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

    def __call__(self, results: dict) -> dict:
        tok = self.tokenizer
        name = results.get('img_path') or f'sample {results.get("sample_idx")}'
        missing = [k for k in ('question', 'answer') if not isinstance(results.get(k), str)]
        if missing:
            raise KeyError(
                f'{name}: the sample has no text {missing}; a dataset item needs '
                f"'question' (with one {self.image_token}) and 'answer' (one "
                f'{self.seg_token} per mask).'
            )
        question, answer = results['question'], results['answer']
        if question.count(self.image_token) != 1:
            raise ValueError(
                f'{name}: the question must contain exactly one '
                f'{self.image_token!r}, got {question!r}.'
            )
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        head = bos + self._encode(self.template.head())
        q_ids = self._encode(question)
        tail = self._encode(self.template.tail())
        a_ids = self._encode(answer) + [tok.eos_token_id]
        budget = self.max_length - len(head) - len(tail) - len(a_ids)
        image_id = tok.convert_tokens_to_ids(self.image_token)
        keep = q_ids.index(image_id) + 1  # the question is never cut before <image>
        if budget < keep:
            need = self.max_length - budget + keep
            raise ValueError(
                f'{name}: the prompt frame, the image token and the answer need {need} '
                f'tokens, more than max_length={self.max_length}; raise max_length or '
                'shorten the answer.'
            )
        q_ids = q_ids[:budget]
        ids = head + q_ids + tail + a_ids
        labels = [LM_IGNORE_INDEX] * (len(ids) - len(a_ids)) + a_ids
        results['input_ids'] = torch.tensor(ids, dtype=torch.long)
        results['labels'] = torch.tensor(labels, dtype=torch.long)
        gt_masks = results.get('gt_masks')
        n_seg = a_ids.count(tok.convert_tokens_to_ids(self.seg_token))
        if gt_masks is not None and n_seg != len(gt_masks):
            raise ValueError(
                f'{name}: the answer {answer!r} has {n_seg} {self.seg_token} '
                f'tokens but there are {len(gt_masks)} masks.'
            )
        return results
