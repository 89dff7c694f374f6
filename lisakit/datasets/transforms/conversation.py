"""Conversation rendering and tokenization with answer-only labels (LISA's layout)."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import torch

from lisakit.registry import TRANSFORMS
from lisakit.tokenizers import build_tokenizer
from lisakit.tokenizers.builder import IM_END_TOKEN, IM_START_TOKEN
from lisakit.tokenizers.conversation import (
    CONVERSATION_TEMPLATES,
    TEXT_ENCODINGS,
    ConversationEncoder,
    ConversationTemplate,
    get_template,
)
from lisakit.tokenizers.slow_llama import is_sentencepiece_llama
from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN

__all__ = [
    'CONVERSATION_TEMPLATES',
    'ConversationTemplate',
    'TokenizeConversation',
    'get_template',
    'LAYOUTS',
]

#: Sample layouts: one one-turn sequence per query (LISA), or all turns in one sequence.
LAYOUTS = ('per_query', 'multi_turn')
#: CLIP ViT-L/14 at 224 px (LISA): the image placeholder becomes 256 features.
LISA_IMAGE_FEATURES = 256


@TRANSFORMS.register_module()
class TokenizeConversation:
    """Render a sample's conversation as LISA does and tokenize it.

    The text is ``results['conversations']``, a list of ``dict(question=, answer=)``
    turns (``<image>`` in the first question), or else ``results['question']`` /
    ``results['answer']``. An empty last answer makes a generation prompt.

    Layouts:

    - ``'per_query'`` (LISA): every turn is its own one-turn sequence with its own
      ``<image>`` prompt (``"<image>\\n"`` is put in front of a question without one),
      as LISA's datasets make ``num_classes_per_sample`` conversations per image. Samples
      whose ``query_type`` is in ``dialogue_query_types`` (VQA) stay one sequence.
    - ``'multi_turn'``: all turns in one sequence (``... ASSISTANT: a1</s>USER: q2 ...``).

    Each sequence is one string through the tokenizer (see
    :class:`lisakit.tokenizers.conversation.ConversationEncoder`); labels are LISA's
    (-100 but the answers and their ``</s>``). Length limit as LISA's ``collate_fn``: a
    sequence is cut hard at ``max_length - (num_image_features - 1)`` tokens counted
    with the image as one token (and ``<im_start>`` / ``<im_end>``), so it holds at most
    ``max_length`` tokens once the image is expanded. Masks whose ``<SEG>`` was cut off
    are dropped (LISA would fail on them); ``truncated_masks`` counts them.

    Adds ``input_ids`` and ``labels``: lists of (L_k,) int64 tensors, one per sequence;
    ``gt_masks`` (n, H, W) stay in ``<SEG>`` order across the sequences.

    Args:
        tokenizer: Tokenizer config, the same as the backbone's.
        template: Conversation template name or dict.
        max_length: LISA's ``model_max_length``: tokens after image expansion; ``None``
            for no cut.
        num_image_features: Tokens the backbone puts in place of ``<image>`` (256 for
            CLIP ViT-L/14 at 224 px, 576 at 336 px).
        layout: ``'per_query'`` or ``'multi_turn'``.
        text_encoding: ``'lisa'`` (transformers 4.31 slow LLaMA tokenizer, LISA's label
            rule), ``'tokenizer'`` (the tokenizer's own encoding), or ``None``: ``'lisa'``
            for LLaMA sentencepiece tokenizers, else ``'tokenizer'``.
        use_im_start_end: LISA's ``<im_start><image><im_end>`` text; must agree with the
            backbone. ``None``: when the tokenizer holds both tokens (LISA's does).
        dialogue_query_types: ``query_type`` values kept as one multi-turn sequence.
        seg_token: Text of the segmentation token.
        image_token: Text of the image placeholder.
    """

    def __init__(
        self,
        tokenizer: Union[str, dict],
        template: Union[str, dict] = 'llava_v1',
        max_length: Optional[int] = 512,
        num_image_features: int = LISA_IMAGE_FEATURES,
        layout: str = 'per_query',
        text_encoding: Optional[str] = None,
        use_im_start_end: Optional[bool] = None,
        dialogue_query_types: Sequence[str] = ('vqa',),
        seg_token: str = SEG_TOKEN,
        image_token: str = IMAGE_TOKEN,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f'TokenizeConversation: layout={layout!r}; expected one of {LAYOUTS}.')
        if text_encoding not in (None, *TEXT_ENCODINGS):
            raise ValueError(
                f'TokenizeConversation: text_encoding={text_encoding!r}; expected None or '
                f'one of {TEXT_ENCODINGS}.'
            )
        self.cut_length = None
        if max_length is not None:
            self.cut_length = max_length - (num_image_features - 1)
            if self.cut_length < 2:
                raise ValueError(
                    f'TokenizeConversation: max_length={max_length} leaves no room for text '
                    f'next to {num_image_features} image features; raise max_length.'
                )
        self.tokenizer_cfg = tokenizer
        self.template = get_template(template)
        self.max_length = max_length
        self.layout = layout
        self.text_encoding = text_encoding
        self.use_im_start_end = use_im_start_end
        self.dialogue_query_types = tuple(dialogue_query_types)
        self.seg_token = seg_token
        self.image_token = image_token
        self._encoder = None

    @property
    def encoder(self) -> ConversationEncoder:
        """The conversation encoder, built lazily (once per dataloader worker)."""
        if self._encoder is None:
            tok = build_tokenizer(self.tokenizer_cfg, self.seg_token, self.image_token)
            encoding = self.text_encoding
            if encoding is None:
                encoding = 'lisa' if is_sentencepiece_llama(tok) else 'tokenizer'
            im = self.use_im_start_end
            if im is None:
                im = {IM_START_TOKEN, IM_END_TOKEN} <= set(tok.get_vocab())
            self._encoder = ConversationEncoder(tok, self.template, encoding, im, self.image_token)
        return self._encoder

    @property
    def tokenizer(self):
        """The tokenizer (built lazily)."""
        return self.encoder.tokenizer

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

    def _sequences(self, results: dict, turns: list) -> list[list[tuple[str, str]]]:
        """The turns grouped into sequences according to the layout."""
        if self.layout == 'multi_turn' or results.get('query_type') in self.dialogue_query_types:
            return [turns]
        image = self.image_token
        return [[(q if image in q else f'{image}\n{q}', a)] for q, a in turns]

    def __call__(self, results: dict) -> dict:
        enc = self.encoder
        name = results.get('img_path') or f'sample {results.get("sample_idx")}'
        turns = self._turns(results, name)
        sequences = self._sequences(results, turns)
        n_seg = [sum(a.count(self.seg_token) for _, a in seq) for seq in sequences]
        gt_masks = results.get('gt_masks')
        if gt_masks is not None and sum(n_seg) != len(gt_masks):
            raise ValueError(
                f'{name}: the answer {" / ".join(a for _, a in turns)!r} has {sum(n_seg)} '
                f'{self.seg_token} tokens but there are {len(gt_masks)} masks.'
            )
        seg_id = enc.tokenizer.convert_tokens_to_ids(self.seg_token)
        ids, labels, keep = [], [], []
        offset = 0
        for seq, n in zip(sequences, n_seg):
            seq_ids, seq_labels = enc.encode(seq, self.cut_length)
            kept = seq_ids.count(seg_id)
            if kept > n:
                raise ValueError(
                    f'{name}: a question contains {self.seg_token!r}; only answers may.'
                )
            keep += range(offset, offset + kept)
            offset += n
            ids.append(torch.tensor(seq_ids, dtype=torch.long))
            labels.append(torch.tensor(seq_labels, dtype=torch.long))
        results['input_ids'], results['labels'] = ids, labels
        if len(keep) < sum(n_seg):
            results['truncated_masks'] = sum(n_seg) - len(keep)
            if gt_masks is not None:
                results['gt_masks'] = gt_masks[np.asarray(keep, dtype=np.int64)]
        return results
