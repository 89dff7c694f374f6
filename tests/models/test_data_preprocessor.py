"""LISADataPreprocessor: the backbone's processor on neutral samples, LISA's flattened
sequence layout (its ``offset`` tensor), truncated masks."""

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from lisakit.datasets.transforms import PackLISAInputs
from lisakit.models.processors import LlavaProcessor
from lisakit.registry import MODELS

WORD_TOK = dict(type='WordTokenizer')


def processor(layout='per_query', max_length=None, **kwargs):
    """A LLaVA processor on the word tokenizer: 1 image feature, 4 px CLIP."""
    return LlavaProcessor(
        WORD_TOK,
        template='plain',
        layout=layout,
        max_length=max_length,
        num_image_features=1,
        image_size=4,
        **kwargs,
    )


def packed(n_queries, value, answer='<SEG> .', question='segment the square'):
    """A neutral sample (PackLISAInputs) of an 8 x 8 image of grey ``value`` with
    ``n_queries`` turns, one mask each."""
    turns = [dict(question=f'<image>\n{question}', answer=answer)]
    turns += [dict(question=question, answer=answer)] * (n_queries - 1)
    results = dict(
        img=np.full((8, 8, 3), value, np.uint8),
        sam_image=torch.full((3, 8, 8), float(value)),
        conversations=turns,
        gt_masks=np.arange(n_queries, dtype=np.uint8)[:, None, None].repeat(8, 1).repeat(8, 2),
        img_path=f'img{value}.jpg',
    )
    return PackLISAInputs()(results)


def test_sequences_of_all_samples_are_flattened_in_order():
    proc = processor()
    pre = MODELS.build(dict(type='LISADataPreprocessor', processor=proc))
    items = [packed(3, 0), packed(1, 100), packed(2, 200)]
    assert set(items[0]['inputs']) == {'img', 'sam_image'}
    out = pre(pseudo_collate(items))['inputs']
    assert out['seq_to_sample'].tolist() == [0, 0, 0, 1, 2, 2]
    assert out['seq_to_sample'].dtype == torch.int64
    # the rows are the processor's sequences, right-padded with its pad id
    seqs = []
    for item in items:
        ds = item['data_samples']
        seqs += proc(item['inputs']['img'], ds.conversations, name='x')['input_ids']
    lengths = [len(s) for s in seqs]
    assert out['attention_mask'].sum(dim=1).tolist() == lengths
    for row, seq in zip(out['input_ids'], seqs):
        assert row[: len(seq)].tolist() == seq.tolist()
        assert (row[len(seq) :] == proc.pad_token_id).all()
    assert (out['labels'][out['attention_mask'] == 0] == -100).all()
    # one SAM image per sample (SAM encodes it once), CLIP pixels per sequence
    assert out['sam_images'].shape == (3, 3, 8, 8)
    assert out['sam_images'][:, 0, 0, 0].tolist() == [0.0, 100.0, 200.0]
    pixels = out['vision']['pixel_values']  # (N, 3, 4, 4)
    assert pixels.shape == (6, 3, 4, 4)
    assert torch.equal(pixels[0], pixels[2]) and not torch.equal(pixels[2], pixels[3])
    assert torch.equal(pixels[4], pixels[5])


def test_single_sequences_keep_one_row_per_sample():
    pre = MODELS.build(dict(type='LISADataPreprocessor', processor=processor('multi_turn')))
    out = pre(pseudo_collate([packed(3, 0), packed(1, 9)]))['inputs']
    assert out['input_ids'].shape[0] == 2 and out['seq_to_sample'].tolist() == [0, 1]
    assert out['vision']['pixel_values'].shape == (2, 3, 4, 4)


def test_pad_token_id_overrides_the_processors():
    pre = MODELS.build(dict(type='LISADataPreprocessor', processor=processor(), pad_token_id=0))
    out = pre(pseudo_collate([packed(1, 0, answer='<SEG> . sure'), packed(1, 1)]))['inputs']
    assert out['input_ids'][1, -1] == 0 and out['attention_mask'][1, -1] == 0


def test_truncated_masks_are_dropped_and_counted():
    """A <SEG> cut off by the processor's max_length loses its mask (LISA would fail on
    it); the data sample counts it in ``truncated_masks``."""
    proc = processor(max_length=None)
    full = proc(np.zeros((8, 8, 3), np.uint8), [('<image>\nsegment the square', '<SEG> .')])
    cut = full['input_ids'][0].tolist().index(proc.seg_token_id)  # cuts off every <SEG>
    pre = MODELS.build(dict(type='LISADataPreprocessor', processor=processor(max_length=cut)))
    data = pre(pseudo_collate([packed(2, 0), packed(1, 5, question='segment it')]))
    first, second = data['data_samples']
    assert first.truncated_masks == 2 and first.gt_masks.shape == (0, 8, 8)
    assert 'truncated_masks' not in second and second.gt_masks.shape == (1, 8, 8)
    # the masks that survive keep their <SEG> order
    pre = MODELS.build(
        dict(type='LISADataPreprocessor', processor=processor('multi_turn', cut + 6))
    )
    (sample,) = pre(pseudo_collate([packed(3, 0)]))['data_samples']
    kept = 3 - sample.metainfo.get('truncated_masks', 0)
    assert 0 < kept < 3
    assert sample.gt_masks[:, 0, 0].tolist() == list(range(kept))


def test_missing_processor_and_old_inputs_raise():
    pre = MODELS.build(dict(type='LISADataPreprocessor'))
    with pytest.raises(ValueError, match='has no processor'):
        pre(pseudo_collate([packed(1, 0)]))
    old = dict(inputs=dict(input_ids=[torch.tensor([1])], clip_image=[torch.zeros(3, 4, 4)]))
    with pytest.raises(KeyError, match='PackLISAInputs'):
        MODELS.build(dict(type='LISADataPreprocessor', processor=processor()))(old)


def test_processor_errors_name_the_sample():
    pre = MODELS.build(dict(type='LISADataPreprocessor', processor=processor()))
    item = packed(1, 0)
    item['data_samples'].set_metainfo(dict(conversations=[('<image> what is <SEG> ?', 'x')]))
    with pytest.raises(ValueError, match=r'img0\.jpg: a question contains'):
        pre(pseudo_collate([item]))


def test_pipeline_to_model_with_several_queries_per_image(tiny_cfg):
    """The real pipeline through the tiny model with LISA's per-query layout: 3 + 1
    queries over 2 images give 4 sequences, SAM runs on 2 images, each image gets its
    masks."""
    from lisakit.datasets import ShapesReasonSegDataset
    from lisakit.datasets.transforms import LoadImageFromFile, SAMPreprocess

    steps = [LoadImageFromFile(), SAMPreprocess(img_size=64), PackLISAInputs()]
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
    cfg = tiny_cfg.model.to_dict()
    cfg['backbone']['processor'].update(layout='per_query', max_text_length=128 - 15)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
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
