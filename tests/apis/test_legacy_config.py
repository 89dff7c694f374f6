"""Model folders written before the processor seam still load (their pipeline steps migrate)."""

import copy

import torch
from mmengine.config import Config

from lisakit.apis import export_model, inference_model, init_model
from lisakit.apis.legacy_config import migrate_removed_steps
from lisakit.datasets.shapes_reasonseg import render_scene

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
#: The tiny CLIP's image features (32 px / patch 8).
TINY_IMAGE_FEATURES = 16
SHAPES = [dict(kind='square', color='red', cx=20.0, cy=20.0, r=10.0, angle=0.0)]


def _old_processor(processor: dict) -> dict:
    """The text settings as lisakit 0.x wrote them: max_length (text + the 16 features)."""
    processor = dict(processor)
    processor['max_length'] = processor.pop('max_text_length') + TINY_IMAGE_FEATURES - 1
    return processor


def _old_style(cfg: Config) -> Config:
    """``cfg`` as lisakit 0.x wrote it: the tokenizer on the backbone, the text and CLIP
    settings in TokenizeConversation / CLIPPreprocess steps of every pipeline."""
    old = Config(copy.deepcopy(cfg.to_dict()))
    processor = _old_processor(old.model.backbone.pop('processor').to_dict())
    tokenizer = old.model.backbone.tokenizer = processor.pop('tokenizer')
    steps = [
        dict(type='CLIPPreprocess', size=32),
        dict(
            type='TokenizeConversation',
            tokenizer=tokenizer,
            num_image_features=TINY_IMAGE_FEATURES,
            **processor,
        ),
    ]
    for loader in LOADERS:
        old[loader].dataset.pipeline[-1:-1] = copy.deepcopy(steps)  # before PackLISAInputs
    return old


def test_removed_steps_move_into_the_processor(tiny_cfg):
    old = _old_style(tiny_cfg)
    assert migrate_removed_steps(old)
    processor = _old_processor(tiny_cfg.model.backbone.processor)
    processor.pop('tokenizer')  # the backbone's (deprecated) tokenizer key stays the source
    assert old.model.backbone.processor == processor
    assert old.model.backbone.tokenizer == tiny_cfg.model.backbone.processor.tokenizer
    for loader in LOADERS:
        assert old[loader].dataset.pipeline == tiny_cfg[loader].dataset.pipeline
    assert not migrate_removed_steps(copy.deepcopy(tiny_cfg))  # a current config: unchanged


def test_an_old_export_folder_predicts_as_the_new_one(tiny_cfg, tmp_path):
    model = init_model(tiny_cfg)
    export_model(model, tiny_cfg, str(tmp_path))
    image, _ = render_scene(SHAPES, 64)
    new = inference_model(init_model(str(tmp_path)), image, 'the red shape', answer='<SEG>.')
    _old_style(tiny_cfg).dump(str(tmp_path / 'lisakit_config.py'))
    old = inference_model(init_model(str(tmp_path)), image, 'the red shape', answer='<SEG>.')
    assert torch.equal(old.pred_masks, new.pred_masks)
    torch.testing.assert_close(old.pred_iou_scores, new.pred_iou_scores)
