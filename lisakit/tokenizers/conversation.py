"""Render a conversation with a chat template and tokenize it as LISA's code does.

One sequence is rendered as one string (LLaVA's ``Conversation.get_prompt``, separator
style TWO: ``{system} USER: {q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>``),
split at ``<image>`` (LLaVA's ``tokenizer_image_token``) and tokenized; the labels are
LISA's ``collate_fn`` masking. :class:`ConversationEncoder` owns that, apart from the
datasets, so a backbone's processor can use it too.

Two text encodings:

- ``'lisa'``: transformers 4.31's slow ``LlamaTokenizer`` (LISA's, see
  :mod:`lisakit.tokenizers.slow_llama`) and LISA's label rule, byte for byte (tested
  against ids recorded with LISA's code, ``tests/data/lisa_fixtures``).
- ``'tokenizer'``: the tokenizer's own encoding of the same string (for tokenizers that
  are not LLaMA sentencepiece ones); labels cover each answer and its end token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

from transformers import PreTrainedTokenizerBase

from lisakit.utils.constants import IMAGE_TOKEN, LM_IGNORE_INDEX

from .builder import IM_END_TOKEN, IM_START_TOKEN, add_im_start_end_tokens
from .slow_llama import SlowLlamaEncoder

#: Text encodings of :class:`ConversationEncoder`.
TEXT_ENCODINGS = ('lisa', 'tokenizer')


@dataclass(frozen=True)
class ConversationTemplate:
    """A chat template: ``{system}{sep}{USER}: {q}{sep}{ASSISTANT}: {a}{eos}`` per turn.

    Attributes:
        system: System prompt ('' for none: the text then starts with the user role).
        roles: (user role, assistant role).
        sep: Separator after the system prompt and after each question.
    """

    system: str
    roles: tuple = ('USER', 'ASSISTANT')
    sep: str = ' '

    def head(self) -> str:
        """Text before the first question."""
        prefix = self.system + self.sep if self.system else ''
        return f'{prefix}{self.roles[0]}: '

    def tail(self) -> str:
        """Text between a question and its answer (a generation prompt ends here)."""
        return f'{self.sep}{self.roles[1]}:'

    def answer_sep(self) -> str:
        """What LISA splits a round on to find the answer: ``" ASSISTANT: "``."""
        return self.tail() + ' '

    def render(self, turns: Sequence[tuple[str, str]], eos: str) -> str:
        """The whole conversation as one string (``get_prompt`` of ``llava_v1``).

        Args:
            turns: (question, answer) pairs; an empty last answer gives a generation
                prompt ending with ``"ASSISTANT:"``.
            eos: The tokenizer's end-of-sequence text (``</s>``), after each answer.
        """
        text = self.system + self.sep if self.system else ''
        for question, answer in turns:
            text += f'{self.roles[0]}: {question}{self.sep}'
            text += f'{self.roles[1]}: {answer}{eos}' if answer else f'{self.roles[1]}:'
        return text


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


class ConversationEncoder:
    """Ids and labels of one rendered conversation, as LISA's ``collate_fn`` makes them.

    The returned ids hold lisakit's single ``<image>`` token where LISA has
    ``<im_start>``, -200, ``<im_end>`` (``use_im_start_end``) or -200: the backbone
    expands it into the same positions. Whitespace around the image is treated as
    LISA's text has it (stripped next to ``<im_start>`` / ``<im_end>``).

    Args:
        tokenizer: The built tokenizer (shared with the backbone).
        template: The conversation template.
        text_encoding: ``'lisa'`` or ``'tokenizer'`` (see the module docstring).
        use_im_start_end: LISA's ``<im_start><image><im_end>`` text (LLaVA-v1
            checkpoints); must agree with the backbone's option.
        image_token: lisakit's image placeholder text.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        template: Union[str, dict, ConversationTemplate] = 'llava_v1',
        text_encoding: str = 'lisa',
        use_im_start_end: bool = False,
        image_token: str = IMAGE_TOKEN,
    ) -> None:
        if text_encoding not in TEXT_ENCODINGS:
            raise ValueError(f'text_encoding={text_encoding!r}; expected one of {TEXT_ENCODINGS}.')
        self.tokenizer = tokenizer
        self.template = get_template(template)
        self.text_encoding = text_encoding
        self.use_im_start_end = use_im_start_end
        self.image_token = image_token
        self.image_id = tokenizer.convert_tokens_to_ids(image_token)
        self.im_ids = add_im_start_end_tokens(tokenizer) if use_im_start_end else None
        self._slow = SlowLlamaEncoder(tokenizer) if text_encoding == 'lisa' else None

    # ------------------------------------------------------------ encoding
    def _encode_text(self, text: str, add_bos: bool) -> list[int]:
        if self._slow is not None:
            return self._slow.encode(text, add_bos=add_bos)
        bos = self.tokenizer.bos_token_id
        ids = self.tokenizer(text, add_special_tokens=False)['input_ids'] if text else []
        return ([bos] if add_bos and bos is not None else []) + list(ids)

    def image_token_ids(self, prompt: str) -> list[int]:
        """``tokenizer_image_token``: chunks around ``<image>`` (BOS once) joined by the
        image id; ``prompt`` holds LISA's ``<im_start><image><im_end>`` when enabled."""
        ids = self._encode_text('', add_bos=True)
        for k, chunk in enumerate(prompt.split(self.image_token)):
            if k:
                ids.append(self.image_id)
            ids += self._encode_text(chunk, add_bos=False)
        return ids

    def render(self, turns: Sequence[tuple[str, str]]) -> str:
        """LISA's text of the conversation (``<im_start>`` / ``<im_end>`` included)."""
        text = self.template.render(turns, self.tokenizer.eos_token)
        if self.use_im_start_end:
            text = text.replace(self.image_token, IM_START_TOKEN + self.image_token + IM_END_TOKEN)
        return text

    def _bos_count(self) -> int:
        """Tokens in front of the text: LISA assumes one BOS; else the tokenizer's."""
        if self.text_encoding == 'lisa':
            return 1
        return int(self.tokenizer.bos_token_id is not None)

    def _instruction_len(self, part: str) -> int:
        """Tokens of a round's instruction (everything up to the answer)."""
        if self.text_encoding == 'lisa':  # LISA: minus BOS and the trailing "▁" of ": "
            return len(self.image_token_ids(part)) - 2
        return len(self.image_token_ids(part.rstrip(' '))) - self._bos_count()

    def _round_len(self, rou: str) -> int:
        """Tokens of a round with its ``</s>`` (LISA counts the round's BOS in its place)."""
        return len(self.image_token_ids(rou)) - self._bos_count() + 1

    def _labels(self, prompt: str, ids: list[int]) -> list[int]:
        """LISA's masking: the first token, each round's instruction and the rest."""
        labels = list(ids)
        cur_len = self._bos_count()
        labels[:cur_len] = [LM_IGNORE_INDEX] * cur_len
        sep = self.template.answer_sep()
        for rou in prompt.split(self.tokenizer.eos_token):
            if rou == '':
                break
            parts = rou.split(sep)
            if len(parts) != 2:
                raise ValueError(
                    f'A conversation round must contain {sep!r} exactly once (LISA splits on '
                    f'it to find the answer); got {rou!r}.'
                )
            end = min(cur_len + self._instruction_len(parts[0] + sep), len(labels))
            labels[cur_len:end] = [LM_IGNORE_INDEX] * max(end - cur_len, 0)
            cur_len += self._round_len(rou)
        labels[cur_len:] = [LM_IGNORE_INDEX] * max(len(labels) - cur_len, 0)
        return labels

    def encode(
        self, turns: Sequence[tuple[str, str]], max_length: Optional[int] = None
    ) -> tuple[list[int], list[int]]:
        """Ids and labels of one conversation (one sequence of the batch).

        Args:
            turns: (question, answer) pairs with one ``<image>`` in total; an empty last
                answer makes a generation prompt (every label ignored).
            max_length: Hard cut of LISA's ids (``<im_start>`` / ``<im_end>`` counted,
                the image as one token), applied before the image markers are removed.

        Returns:
            ``(ids, labels)`` with lisakit's single ``<image>`` token.
        """
        prompt = self.render(turns)
        ids = self.image_token_ids(prompt)
        if turns and turns[-1][1]:
            labels = self._labels(prompt, ids)
        else:
            labels = [LM_IGNORE_INDEX] * len(ids)
        if max_length is not None:
            ids, labels = ids[:max_length], labels[:max_length]
        return self._drop_image_markers(ids, labels)

    def _drop_image_markers(self, ids: list[int], labels: list[int]) -> tuple[list, list]:
        """Remove the ``<im_start>`` / ``<im_end>`` next to the image (the backbone puts
        them back when it expands ``<image>``)."""
        if self.im_ids is None or self.image_id not in ids:
            return ids, labels
        pos = ids.index(self.image_id)
        start, end = self.im_ids
        if not (0 < pos < len(ids) - 1 and ids[pos - 1] == start and ids[pos + 1] == end):
            raise ValueError('The text was cut inside <im_start><image><im_end>; raise max_length.')
        keep = [k for k in range(len(ids)) if k not in (pos - 1, pos + 1)]
        return [ids[k] for k in keep], [labels[k] for k in keep]
