# PASCAL-Part instances ("object:part" categories) as name queries, as LISA trains on them
# (training only in LISA). COCO-format data/vlpart/pascal_part/{train,val}.json with images
# under data/vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/. Parts are asked as
# "dog leg" or "the leg of the dog" (probability 0.5 each).
_base_ = ['./paco_lvis.py']
pascal_part = dict(
    type='PartSegDataset',
    data_root='data',
    img_dir='vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages',
)
train_dataloader = dict(dataset=dict(pascal_part, ann_file='vlpart/pascal_part/train.json'))
val_dataloader = dict(dataset=dict(pascal_part, ann_file='vlpart/pascal_part/val.json'))
test_dataloader = val_dataloader
