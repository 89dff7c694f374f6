# PACO-LVIS object and part instances as name queries, as LISA trains on them (training
# only: LISA has no evaluation on it; the val split is PACO's val annotations). COCO-format
# annotations data/vlpart/paco/annotations/paco_lvis_v1_{train,val}.json, images under
# data/coco/ (file_name holds train2017/...). Parts are asked as "dog leg" or "the leg of
# the dog" (probability 0.5 each), objects by name (LVIS's "_(...)" suffix removed).
_base_ = ['./ade20k.py']
paco_lvis = dict(
    _delete_=True,
    type='PartSegDataset',
    data_root='data',
    img_dir='coco',
)
train_dataloader = dict(
    dataset=dict(
        paco_lvis,
        ann_file='vlpart/paco/annotations/paco_lvis_v1_train.json',
        num_classes_per_sample={{_base_.num_classes_per_sample}},
        on_error='skip',
        pipeline={{_base_.train_pipeline}},
    )
)
val_dataloader = dict(
    dataset=dict(
        paco_lvis,
        ann_file='vlpart/paco/annotations/paco_lvis_v1_val.json',
        test_mode=True,
        pipeline={{_base_.test_pipeline}},
    )
)
test_dataloader = val_dataloader
