# Mapillary Vistas v2.0 as class-name queries, as LISA trains on it:
# data/mapillary/{training,validation}/images/*.jpg with the label PNGs
# {split}/v2.0/labels/*.png (value = index into config_v2.0.json's labels) and the class
# names from config_v2.0.json (`labels[i].readable`, lowercased); every label value is a
# class (LISA ignores none). Only the dataset differs from ade20k.py.
_base_ = ['./ade20k.py']
mapillary = dict(
    _delete_=True,
    type='SemanticSegDataset',
    data_root='data/mapillary',
    classes='mapillary',  # the names of {data_root}/config_v2.0.json
    img_dir='{split}/images',
    seg_dir='{split}/v2.0/labels',
    reduce_zero_label=False,
)
train_dataloader = dict(
    dataset=dict(
        mapillary,
        split='training',
        num_classes_per_sample={{_base_.num_classes_per_sample}},
        on_error='skip',
        pipeline={{_base_.train_pipeline}},
    )
)
val_dataloader = dict(
    dataset=dict(mapillary, split='validation', test_mode=True, pipeline={{_base_.test_pipeline}})
)
test_dataloader = val_dataloader
