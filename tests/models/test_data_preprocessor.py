"""LISADataPreprocessor: LISA's flattened sequence layout (its ``offset`` tensor)."""

import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.datasets.transforms import PackLISAInputs
from lisakit.registry import MODELS
from lisakit.structures import ReasonSegDataSample


def batch(per_sample):
    """Packed inputs of samples with the given lists of sequences."""
    return dict(
        inputs=dict(
            input_ids=per_sample,
            labels=[[s.clone() for s in seqs] for seqs in per_sample],
            sam_image=[torch.full((3, 8, 8), float(i)) for i in range(len(per_sample))],
            clip_image=[torch.full((3, 4, 4), float(i)) for i in range(len(per_sample))],
        ),
        data_samples=[ReasonSegDataSample() for _ in per_sample],
    )


def test_sequences_of_all_samples_are_flattened_in_order():
    pre = MODELS.build(dict(type='LISADataPreprocessor', pad_token_id=0))
    three = [torch.tensor([1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6])]
    out = pre(batch([three, [torch.tensor([7, 8, 9, 10])]]))['inputs']
    assert out['input_ids'].tolist() == [[1, 2, 0, 0], [3, 4, 5, 0], [6, 0, 0, 0], [7, 8, 9, 10]]
    assert out['labels'].tolist()[2] == [6, -100, -100, -100]
    assert out['attention_mask'].sum(dim=1).tolist() == [2, 3, 1, 4]
    assert out['seq_to_sample'].tolist() == [0, 0, 0, 1]
    assert out['seq_to_sample'].dtype == torch.int64
    # one image per sample (SAM encodes it once), not one per sequence
    assert out['sam_images'].shape == (2, 3, 8, 8) and out['clip_images'].shape == (2, 3, 4, 4)
    assert out['clip_images'][out['seq_to_sample']][:, 0, 0, 0].tolist() == [0, 0, 0, 1]


def test_single_sequences_keep_one_row_per_sample():
    pre = MODELS.build(dict(type='LISADataPreprocessor'))
    out = pre(batch([[torch.tensor([1, 2])], [torch.tensor([3])]]))['inputs']
    assert out['input_ids'].shape == (2, 2) and out['seq_to_sample'].tolist() == [0, 1]


def test_mismatched_labels_raise():
    pre = MODELS.build(dict(type='LISADataPreprocessor'))
    data = batch([[torch.tensor([1, 2])]])
    data['inputs']['labels'] = [[torch.tensor([1])]]
    with pytest.raises(ValueError, match='same lengths'):
        pre(data)


def test_packed_samples_with_different_query_counts_survive_pseudo_collate():
    """PackLISAInputs concatenates a sample's sequences (mmengine's collate would
    transpose lists); the preprocessor splits them back."""
    pack = PackLISAInputs()

    def packed(seqs, value):
        results = dict(
            input_ids=seqs,
            labels=[s.clone() for s in seqs],
            img_path='x.jpg',
            sam_image=torch.full((3, 8, 8), value),
            clip_image=torch.zeros(3, 4, 4),
        )
        return pack(results)  # fmt: skip

    items = [
        packed([torch.tensor([1, 2]), torch.tensor([3, 4, 5])], 0.0),
        packed([torch.tensor([6])], 1.0),
        packed([torch.tensor([7]), torch.tensor([8]), torch.tensor([9, 9])], 2.0),
    ]
    assert items[0]['inputs']['input_ids'].tolist() == [1, 2, 3, 4, 5]
    out = MODELS.build(dict(type='LISADataPreprocessor'))(pseudo_collate(items))['inputs']
    assert out['input_ids'].tolist() == [
        [1, 2, 0], [3, 4, 5], [6, 0, 0], [7, 0, 0], [8, 0, 0], [9, 9, 0]
    ]  # fmt: skip
    assert out['seq_to_sample'].tolist() == [0, 0, 1, 2, 2, 2]
    assert out['sam_images'][:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_pipeline_to_model_with_several_queries_per_image(tiny_cfg):
    """The real pipeline (per-query layout) through the tiny model: 3 + 1 queries over 2
    images give 4 sequences, SAM runs on 2 images, each image gets its masks."""
    from lisakit.datasets import ShapesReasonSegDataset
    from lisakit.datasets.transforms import (
        CLIPPreprocess,
        LoadImageFromFile,
        SAMPreprocess,
        TokenizeConversation,
    )

    steps = [
        LoadImageFromFile(),
        SAMPreprocess(img_size=64),
        CLIPPreprocess(size=32),
        TokenizeConversation(
            dict(type='WordTokenizer'),
            template='plain',
            max_length=128,
            num_image_features=16,
            layout='per_query',
        ),  # fmt: skip
        PackLISAInputs(),
    ]
    raw = ShapesReasonSegDataset(num_samples=2, seed=0)
    items = []
    for idx, n_queries in enumerate((3, 1)):
        info = raw.get_data_info(idx)
        question, mask = info['question'], info['gt_masks'][:1]
        turns = [dict(question=question, answer='<SEG>.')]
        turns += [dict(question=question.replace('<image>\n', ''), answer='<SEG>.')] * (
            n_queries - 1
        )
        results = dict(info, conversations=turns, gt_masks=mask.repeat(n_queries, axis=0))
        for step in steps:
            results = step(results)
        items.append(results)
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg.model)
    data = model.data_preprocessor(pseudo_collate(items), True)
    assert data['inputs']['seq_to_sample'].tolist() == [0, 0, 0, 1]
    assert data['inputs']['sam_images'].shape[0] == 2
    seen = []
    handle = model.sam_encoder.register_forward_hook(lambda m, a, out: seen.append(len(out)))
    try:
        losses = model(**data, mode='loss')
        model.eval()
        with torch.no_grad():
            preds = model(**model.data_preprocessor(pseudo_collate(items), False), mode='predict')
    finally:
        handle.remove()
    assert torch.isfinite(sum(v for k, v in losses.items() if k.startswith('loss_')))
    assert seen == [2, 2]
    assert [len(p.pred_masks) for p in preds] == [3, 1]
