# LISA's training mix (train_ds.py): semantic segmentation : referring segmentation : VQA :
# ReasonSeg drawn at sample rates 9:3:3:1 (probabilities 0.5625 / 0.1875 / 0.1875 / 0.0625),
# validation on ReasonSeg val (gIoU / cIoU overall, short and long queries).
# Inside the semantic-seg and referring groups a dataset is picked uniformly, regardless of
# its size, as LISA does: ADE20K, COCO-Stuff, PASCAL-Part, PACO-LVIS and Mapillary; refCLEF,
# refCOCO, refCOCO+ and refCOCOg. Folder layout under `data_root` (LISA's --dataset_dir):
# docs/datasets.md. Every source has its own pipeline; SAM's input size must match the
# model (1024); the text and CLIP settings are the backbone's (model.backbone.processor).
data_root = 'data'
sam_img_size = 1024
# masks per image per step (LISA: 3): classes (sem-seg), sentences (refer-seg), queries
# (ReasonSeg)
num_classes_per_sample = 3
# draws per epoch over all GPUs: LISA's batch 2 x grad accumulation 10 x 500 steps x 8 GPUs
# (each GPU sees 10,000 per epoch, i.e. 500 optimizer steps); set for your GPU count
samples_per_epoch = 2 * 10 * 500 * 8

_image_branches = [
    dict(type='SAMPreprocess', img_size=sam_img_size),
    dict(type='PackLISAInputs'),
]
seg_pipeline = [dict(type='LoadImageFromFile')] + _image_branches  # masks come with the item
vqa_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadMaskAnnotations')] + _image_branches
reasonseg_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadReasonSegAnnotation'),
] + _image_branches

_sem_seg_common = dict(
    type='SemanticSegDataset',
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',  # images without a labelled class are redrawn, as in LISA (logged)
    pipeline=seg_pipeline,
)
ade20k = dict(
    **_sem_seg_common,
    data_root=data_root + '/ade20k',
    split='training',
    classes='ade20k',
    reduce_zero_label=True,
)
cocostuff = dict(
    **_sem_seg_common,
    data_root=data_root,
    split='train2017',
    classes='cocostuff',
    img_dir='coco/{split}',
    seg_dir='cocostuff/{split}',
    reduce_zero_label=False,
    ignore_classes_containing='-',
)
_part_common = dict(
    type='PartSegDataset',
    data_root=data_root,
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',
    pipeline=seg_pipeline,
)
pascal_part = dict(
    **_part_common,
    ann_file='vlpart/pascal_part/train.json',
    img_dir='vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages',
)
paco_lvis = dict(
    **_part_common, ann_file='vlpart/paco/annotations/paco_lvis_v1_train.json', img_dir='coco'
)
mapillary = dict(
    **_sem_seg_common,
    data_root=data_root + '/mapillary',
    split='training',
    classes='mapillary',  # {data_root}/config_v2.0.json
    img_dir='{split}/images',
    seg_dir='{split}/v2.0/labels',
    reduce_zero_label=False,
)
sem_seg = dict(
    type='MixedDataset',
    datasets=[ade20k, cocostuff, pascal_part, paco_lvis, mapillary],
    seed=1,
)

_refer_common = dict(
    type='RefCOCODataset',
    data_root=data_root + '/refer_seg',
    split='train',
    num_classes_per_sample=num_classes_per_sample,
    on_error='skip',
    pipeline=seg_pipeline,
)
refer_seg = dict(
    type='MixedDataset',
    datasets=[
        dict(**_refer_common, dataset='refclef', split_by='unc'),
        dict(**_refer_common, dataset='refcoco', split_by='unc'),
        dict(**_refer_common, dataset='refcoco+', split_by='unc'),
        dict(**_refer_common, dataset='refcocog', split_by='umd'),
    ],
    seed=2,
)
vqa = dict(
    type='VQADataset',
    data_root=data_root,
    ann_file='llava_dataset/llava_instruct_150k.json',
    data_prefix=dict(img_path='coco/train2017'),
    on_error='skip',
    pipeline=vqa_pipeline,
)
reason_seg = dict(
    type='ReasonSegDataset',
    data_root=data_root + '/reason_seg/ReasonSeg',
    split='train',
    num_classes_per_sample=num_classes_per_sample,
    explanatory=0.1,  # LISA's default: explanation-only answers for 10 % of explained images
    on_error='skip',
    pipeline=reasonseg_pipeline,
)

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    # fresh draws every epoch (DefaultSampler would repeat the same draws each epoch)
    sampler=dict(type='FreshDrawSampler', shuffle=True),
    dataset=dict(
        type='MixedDataset',
        datasets=[sem_seg, refer_seg, vqa, reason_seg],
        sample_rates=[9, 3, 3, 1],
        num_samples=samples_per_epoch,
        seed=0,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ReasonSegDataset',
        data_root=data_root + '/reason_seg/ReasonSeg',
        split='val',
        test_mode=True,
        pipeline=reasonseg_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='ReasonSegMetric', group_by='query_type')
test_evaluator = val_evaluator
