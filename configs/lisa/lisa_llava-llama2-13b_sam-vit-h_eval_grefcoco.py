# Evaluate the released LISA-13B-llama2-v1 on gRefCOCO (unc) val in merged mode (same
# protocol as the 7B config; testA / testB with --cfg-options test_dataloader.dataset.split=
# testA; convert with tools/model_converters/lisa_to_lisakit.py into data/lisa/...):
#   python tools/test.py THIS_CONFIG data/lisa/LISA-13B-llama2-v1/lisakit_checkpoint.pth
_base_ = [
    '../_base_/models/lisa_llava-llama2-13b_sam-vit-h.py',
    '../_base_/datasets/grefcoco.py',
    '../_base_/runtimes/eval_only.py',
]
train_dataloader = None  # evaluation only
