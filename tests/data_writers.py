"""Write small fixtures in the real formats of lisakit's data sources (for tests)."""

import json

import numpy as np
from PIL import Image

from lisakit.utils.constants import IMAGE_TOKEN


def uncompressed_rle(mask):
    """COCO's uncompressed RLE of a (H, W) 0/1 mask: column-major run lengths, starting
    with zeros (as crowd annotations store it)."""
    runs, value, count = [], 0, 0
    for v in mask.flatten(order='F'):
        if v == value:
            count += 1
        else:
            runs.append(count)
            value, count = v, 1
    return dict(size=list(mask.shape), counts=[int(r) for r in runs + [count]])


def write_image(path, height=40, width=48, value=90):
    """A constant-colour RGB image file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)
    return path


def llava_item(i, image, turns=2):
    """A LLaVA-Instruct item with ``turns`` human / gpt pairs, ``<image>`` at the end of the
    first question (LISA moves it to the front)."""
    conversations = []
    for k in range(turns):
        question = f'What is shown here {k}?' + (f'\n{IMAGE_TOKEN}' if k == 0 else '')
        conversations += [
            dict(value=question, **{'from': 'human'}),
            dict(value=f'A grey square, answer {k}.', **{'from': 'gpt'}),
        ]
    return dict(id=f'item{i}', image=image, conversations=conversations)


def write_llava(root, n=3, turns=2, size=(40, 48)):
    """``root/llava_dataset/llava_instruct_150k.json`` and ``root/coco/train2017/*.jpg``."""
    items = []
    for i in range(n):
        name = f'{i:012d}.jpg'
        write_image(root / 'coco' / 'train2017' / name, *size, value=60 + 20 * i)
        items.append(llava_item(i, name, turns))
    ann = root / 'llava_dataset' / 'llava_instruct_150k.json'
    ann.parent.mkdir(parents=True, exist_ok=True)
    ann.write_text(json.dumps(items))
    return ann


def write_jsonl(path, objects):
    """One JSON object (or a raw string line) per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [o if isinstance(o, str) else json.dumps(o) for o in objects]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return path


def write_ade20k(root, n=2, size=(16, 20)):
    """``root/images/training/*.jpg`` and label PNGs (0 = other, v = class v - 1)."""
    (root / 'annotations' / 'training').mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_image(root / 'images' / 'training' / f'ADE_train_{i:08d}.jpg', *size)
        label = np.zeros(size, np.uint8)
        label[: size[0] // 2] = 1 + i  # one class in the top half
        label[size[0] // 2 :, : size[1] // 2] = 5  # another in the bottom left
        Image.fromarray(label).save(root / 'annotations' / 'training' / f'ADE_train_{i:08d}.png')
    return root


def write_refer(root, dataset='refcoco', split_by='unc', img_dir='images/mscoco/images/train2014'):
    """A REFER folder ``root/{dataset}`` (refs pickle + instances.json) and its images."""
    import pickle

    size = (12, 16)
    write_image(root / img_dir / 'img_1.jpg', *size)
    images = [dict(id=1, file_name='img_1.jpg', height=size[0], width=size[1])]
    anns = [
        dict(id=11, image_id=1, category_id=1, segmentation=[[1, 1, 6, 1, 6, 5, 1, 5]]),
        dict(id=12, image_id=1, category_id=1, segmentation=[[8, 2, 12, 2, 12, 6, 8, 6]]),
    ]
    refs = [
        dict(
            ref_id=k,
            ann_id=ann,
            image_id=1,
            split='train',
            category_id=1,
            sentences=[dict(sent=s, raw=s, tokens=s.split(), sent_id=10 * k) for s in sents],
        )
        for k, (ann, sents) in enumerate([(11, ['left box', 'small one']), (12, ['right box'])])
    ]
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'instances.json').write_text(
        json.dumps(dict(images=images, annotations=anns, categories=[dict(id=1, name='box')]))
    )
    with open(folder / f'refs({split_by}).p', 'wb') as f:
        pickle.dump(refs, f, protocol=2)
    return root


def write_reasonseg(root, split, names, texts=('the thing', 'what holds water?'), size=(20, 24)):
    """``root/{split}/{name}.jpg`` + LISA-format JSON with one target rectangle."""
    for name in names:
        write_image(root / split / f'{name}.jpg', *size)
        shapes = [dict(label='target', points=[[2, 2], [9, 2], [9, 9], [2, 9]])]
        ann = dict(text=list(texts), is_sentence=False, shapes=shapes)
        (root / split / f'{name}.json').write_text(json.dumps(ann))
    return root


def write_parts(root, ann_file, img_dir, file_names, size=(40, 48)):
    """A COCO-format part file ``root/ann_file`` ("object:part" and object categories)
    with two instances per image; images ``root/img_dir/{file_name}`` (kept if present)."""
    images, anns = [], []
    for i, name in enumerate(file_names, start=1):
        if not (root / img_dir / name).exists():
            write_image(root / img_dir / name, *size)
        images.append(dict(id=i, file_name=name, height=size[0], width=size[1]))
        for k, polygon in enumerate(([2, 2, 12, 2, 12, 9, 2, 9], [20, 5, 30, 5, 30, 20, 20, 20])):
            anns.append(dict(id=10 * i + k, image_id=i, category_id=1 + k, segmentation=[polygon]))
    categories = [dict(id=1, name='dog:leg_(left)'), dict(id=2, name='cup_(drink)')]
    path = root / ann_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=categories)))
    return path


def write_mapillary(root, n=2, size=(16, 20)):
    """``root/config_v2.0.json`` and ``root/training/{images,v2.0/labels}`` (value = class)."""
    labels = [dict(readable=r) for r in ('Bird', 'Curb', 'Road', 'Unlabeled')]
    root.mkdir(parents=True, exist_ok=True)
    (root / 'config_v2.0.json').write_text(json.dumps(dict(labels=labels)))
    (root / 'training' / 'v2.0' / 'labels').mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_image(root / 'training' / 'images' / f'm{i}.jpg', *size)
        label = np.full(size, 2, np.uint8)
        label[: size[0] // 2] = 1
        Image.fromarray(label).save(root / 'training' / 'v2.0' / 'labels' / f'm{i}.png')
    return root
