# COCO-Stuff 164k as class-name queries, as LISA trains on it: COCO images
# (data/coco/train2017/*.jpg) with the stuffthingmaps label PNGs
# (data/cocostuff/train2017/*.png, value = index of the 182 names, 255 = unlabelled).
# As in LISA, the 28 classes whose name contains "-" (wall-brick, building-other, ...) are
# ignored. Only the dataset differs from ade20k.py.
_base_ = ['./ade20k.py']
cocostuff = dict(
    _delete_=True,
    type='SemanticSegDataset',
    data_root='data',
    classes='cocostuff',
    img_dir='coco/{split}',
    seg_dir='cocostuff/{split}',
    reduce_zero_label=False,
    ignore_classes_containing='-',
)
train_dataloader = dict(
    dataset=dict(
        cocostuff,
        split='train2017',
        num_classes_per_sample={{_base_.num_classes_per_sample}},
        on_error='skip',
        pipeline={{_base_.train_pipeline}},
    )
)
val_dataloader = dict(
    dataset=dict(cocostuff, split='val2017', test_mode=True, pipeline={{_base_.test_pipeline}})
)
test_dataloader = val_dataloader
