"""Visual question answering from LLaVA-Instruct JSON: text-only samples (no masks).

``ann_file`` (LISA: ``llava_dataset/llava_instruct_150k.json``) is a JSON list of
``{"id", "image", "conversations": [{"from": "human" | "gpt", "value": str}, ...]}``;
images are found under ``data_prefix['img_path']`` (LISA: ``coco/train2017``). As in
LISA, ``<image>`` is moved to the front of the first question (``"<image>\\n" + rest``)
and the whole dialogue is one conversation. The samples carry no masks: the model
trains only its language-model loss on them and skips SAM.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from mmengine.dataset import BaseDataset

from lisakit.registry import DATASETS
from lisakit.utils.constants import SEG_TOKEN

from .bad_samples import SkipBadSamplesMixin
from .jsonl import AnnLocationMixin
from .templates import strip_image_token, to_turns

#: LLaVA-Instruct speaker names of the user and the assistant.
HUMAN, GPT = 'human', 'gpt'


def read_json_document(path: str):
    """Load a whole JSON file; errors name the file and the position."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Annotation file {path!r} not found; check data_root / ann_file.')
    with open(path, 'rb') as f:
        raw = f.read()
    try:
        text = raw.decode('utf-8-sig')
    except UnicodeDecodeError as err:
        raise ValueError(
            f'{path}: not UTF-8 text (byte {err.start}: {raw[err.start : err.start + 1]!r}); '
            're-save the file as UTF-8.'
        ) from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f'{path}: invalid JSON at line {err.lineno} column {err.colno} ({err.msg}).'
        ) from err


def llava_turns(conversations) -> list[dict]:
    """LLaVA ``conversations`` as ``dict(question, answer)`` turns, ``<image>`` first.

    Raises:
        ValueError: If the speakers do not alternate human / gpt from a human turn, a
            value is not a string, or an answer holds ``<SEG>``.
    """
    if not isinstance(conversations, list) or not conversations:
        raise ValueError('"conversations" must be a non-empty list')
    if len(conversations) % 2:
        raise ValueError(f'{len(conversations)} messages; expected human / gpt pairs')
    questions, answers = [], []
    for k, msg in enumerate(conversations):
        speaker = HUMAN if k % 2 == 0 else GPT
        if not isinstance(msg, dict) or msg.get('from') != speaker:
            got = msg.get('from') if isinstance(msg, dict) else msg
            raise ValueError(f'message {k + 1} must be from {speaker!r}, got {got!r}')
        if not isinstance(msg.get('value'), str):
            raise ValueError(f'message {k + 1} has no string "value"')
        (questions if speaker == HUMAN else answers).append(msg['value'])
    if any(SEG_TOKEN in a for a in answers):
        raise ValueError(f'an answer contains {SEG_TOKEN}, but VQA samples have no masks')
    return to_turns([strip_image_token(q) for q in questions], answers)


@DATASETS.register_module()
class VQADataset(SkipBadSamplesMixin, AnnLocationMixin, BaseDataset):
    """LLaVA-Instruct visual question answering (text-only samples).

    Each item has ``conversations`` (all turns), ``mask_anns=[]`` (so
    ``LoadMaskAnnotations`` gives ``gt_masks`` of shape (0, H, W)) and
    ``query_type='vqa'``.

    Args:
        ann_file: The LLaVA-Instruct JSON (relative to ``data_root``).
        data_root: Root of relative paths (LISA's dataset folder).
        data_prefix: ``img_path``: the image folder, relative to ``data_root``.
        on_error: ``'raise'``: stop at the first bad item with the file, item index
            and reason; ``'skip'``: leave it out, list it in ``skipped``, log a warning
            (and skip samples failing in the pipeline in training, logged). A file that
            is not valid UTF-8 JSON always raises.
        **kwargs: ``pipeline``, ``indices``, ``test_mode``, ... of ``BaseDataset``.
    """

    METAINFO = dict(classes=('object',))

    def __init__(
        self,
        ann_file: str = 'llava_dataset/llava_instruct_150k.json',
        data_root: str = '',
        data_prefix: Optional[dict] = None,
        on_error: str = 'raise',
        **kwargs,
    ) -> None:
        self._init_on_error(on_error)
        prefix = data_prefix if data_prefix is not None else dict(img_path='coco/train2017')
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=prefix, **kwargs)

    def _entry(self, item, where: str) -> dict:
        if not isinstance(item, dict):
            raise ValueError('an item must be an object')
        missing = [k for k in ('image', 'conversations') if k not in item]
        if missing:
            raise ValueError(f'missing keys {missing}; each item needs "image" and "conversations"')
        if not isinstance(item['image'], str):
            raise ValueError('"image" must be a file name')
        turns = llava_turns(item['conversations'])
        return dict(
            img_path=os.path.join(self.data_prefix['img_path'], item['image']),
            ann_location=where,
            conversations=turns,
            question=turns[0]['question'],
            answer=turns[0]['answer'],
            mask_anns=[],
            query_type='vqa',
        )

    def load_data_list(self) -> list[dict]:
        """Parse every item; bad items raise or are skipped (``on_error``)."""
        items = read_json_document(self.ann_file)
        if not isinstance(items, list):
            raise ValueError(f'{self.ann_file}: expected a JSON list of conversations.')
        data_list = []
        for i, item in enumerate(items):
            item_id = item.get('id') if isinstance(item, dict) else None
            where = f'{self.ann_file}[{i}]' + (f' (id {item_id})' if item_id is not None else '')
            try:
                entry = self._entry(item, where)
            except ValueError as err:
                self._bad(ValueError(f'{where}: {err}.'), where)
                continue
            data_list.append(dict(entry, sample_idx=len(data_list)))
        self._log_skipped(f'item(s) of {self.ann_file}')
        return data_list
