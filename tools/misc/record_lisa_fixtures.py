"""Record what LISA's own code feeds its model, for lisakit's fidelity tests.

Runs in a separate virtual environment with LISA's pinned transformers (no torch needed)::

    python3.11 -m venv /tmp/venv431
    /tmp/venv431/bin/pip install transformers==4.31.0 sentencepiece protobuf "numpy<2" pillow
    /tmp/venv431/bin/python tools/misc/record_lisa_fixtures.py            # rewrites the fixtures
    /tmp/venv431/bin/python tools/misc/record_lisa_fixtures.py --train-tokenizer  # new spm too

It writes ``tests/data/lisa_fixtures/``:

- ``tokenizer/``: a small LLaMA-like sentencepiece model (BPE, byte fallback, unk=0,
  bos=1, eos=2, no normalization, dummy prefix) with a LLaMA ``tokenizer_config.json``;
  trained offline from LISA's templates with ``--train-tokenizer`` (otherwise reused).
- ``conversations.json``: for each case, the sequences LISA's ``utils/dataset.py``
  ``collate_fn`` builds: the rendered prompt, ``input_ids`` (with -200 for the image)
  and ``labels`` (-100 ignored), using transformers 4.31's slow ``LlamaTokenizer``
  (``use_fast=False``) with ``[SEG]`` added by ``add_tokens`` and ``<im_start>`` /
  ``<im_end>`` by ``add_tokens(..., special_tokens=True)``, exactly as LISA's
  ``train_ds.py`` / ``chat.py`` set it up.
- ``clip_pixels.npz``: a few smooth images of odd sizes and their
  ``CLIPImageProcessor.preprocess(img, return_tensors='np')`` output with the
  ``openai/clip-vit-large-patch14`` settings (``clip/preprocessor_config.json``).

The code below follows LISA's (dvlab-research/LISA at 3cb2d43): ``model/llava/
conversation.py`` (``llava_v1``, separator style TWO), ``model/llava/mm_utils.py``
(``tokenizer_image_token``), ``utils/utils.py`` (templates) and ``collate_fn`` (label
masking, truncation to ``model_max_length - 255`` in training), written anew.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import shutil
import tempfile

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OUT_DIR = osp.join(ROOT, 'tests', 'data', 'lisa_fixtures')

IGNORE_INDEX = -100
IMAGE_TOKEN_INDEX = -200
IMAGE = '<image>'
IM_START, IM_END = '<im_start>', '<im_end>'
SEG = '[SEG]'
SYSTEM = (
    'A chat between a curious human and an artificial intelligence assistant. '
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
ROLES = ('USER', 'ASSISTANT')
SEP, SEP2 = ' ', '</s>'
MODEL_MAX_LENGTH = 512

SHORT_QUESTION_LIST = [
    IMAGE + '\n' + 'Can you segment the {class_name} in this image?',
    IMAGE + '\n' + 'Please segment the {class_name} in this image.',
    IMAGE + '\n' + 'What is {class_name} in this image? Please respond with segmentation mask.',
    IMAGE + '\n' + 'What is {class_name} in this image? Please output segmentation mask.',
]
LONG_QUESTION_LIST = [
    IMAGE + '\n' + '{sent} Please respond with segmentation mask.',
    IMAGE + '\n' + '{sent} Please output segmentation mask.',
]
EXPLANATORY_QUESTION_LIST = [
    'Please output segmentation mask and explain why.',
    'Please output segmentation mask and explain the reason.',
    'Please output segmentation mask and give some explanation.',
]
ANSWER_LIST = [
    'It is [SEG].',
    'Sure, [SEG].',
    'Sure, it is [SEG].',
    'Sure, the segmentation result is [SEG].',
    '[SEG].',
]
SENTS = [
    'the object used for cutting bread in this kitchen',
    'something that keeps the rain off the people walking on the street',
]
EXPLANATION = (
    'The knife lies on the wooden board next to the loaf, and its blade is long and '
    'serrated, which makes it the tool for slicing bread.'
)
VQA = [
    ('<image>\nWhat is the man holding in his hands?', 'He is holding a red umbrella.'),
    ('Why might he be doing this?', 'It is raining, so he keeps himself dry.\nHe walks fast.'),
    ('How many cars are there?', 'There are 2 cars parked on the left side of the road.'),
]

# ------------------------------------------------------------------ tokenizer
SPM_CORPUS = (
    [SYSTEM + ' USER: ASSISTANT:', EXPLANATION, *SENTS]
    + [t.replace(IMAGE + '\n', '') for t in SHORT_QUESTION_LIST + LONG_QUESTION_LIST]
    + EXPLANATORY_QUESTION_LIST
    + [a.replace(SEG, '') for a in ANSWER_LIST]
    + [t for turn in VQA for t in turn]
    + [
        'the cat on the sofa, the dog in the garden, a person riding a horse',
        'Please segment the red car. Where is the white cup? What color is the sky?',
    ]
)
SPM_VOCAB_SIZE = 640
LLAMA_TOKENIZER_CONFIG = {
    'add_bos_token': True,
    'add_eos_token': False,
    'bos_token': {
        '__type': 'AddedToken',
        'content': '<s>',
        'lstrip': False,
        'normalized': True,
        'rstrip': False,
        'single_word': False,
    },
    'eos_token': {
        '__type': 'AddedToken',
        'content': '</s>',
        'lstrip': False,
        'normalized': True,
        'rstrip': False,
        'single_word': False,
    },
    'unk_token': {
        '__type': 'AddedToken',
        'content': '<unk>',
        'lstrip': False,
        'normalized': True,
        'rstrip': False,
        'single_word': False,
    },
    'pad_token': None,
    'clean_up_tokenization_spaces': False,
    'model_max_length': 2048,
    'sp_model_kwargs': {},
    'tokenizer_class': 'LlamaTokenizer',
}
LLAMA_SPECIAL_TOKENS_MAP = {'bos_token': '<s>', 'eos_token': '</s>', 'unk_token': '<unk>'}


def train_tokenizer(folder: str) -> None:
    """Train the small LLaMA-like sentencepiece model and write a LLaMA tokenizer folder."""
    import sentencepiece as spm

    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = osp.join(tmp, 'corpus.txt')
        with open(corpus, 'w', encoding='utf-8') as f:
            f.write('\n'.join(SPM_CORPUS * 3) + '\n')
        spm.SentencePieceTrainer.train(
            input=corpus,
            model_prefix=osp.join(tmp, 'tokenizer'),
            model_type='bpe',
            vocab_size=SPM_VOCAB_SIZE,
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            normalization_rule_name='identity',
            add_dummy_prefix=True,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        shutil.copy(osp.join(tmp, 'tokenizer.model'), osp.join(folder, 'tokenizer.model'))
    with open(osp.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(LLAMA_TOKENIZER_CONFIG, f, indent=2)
    with open(osp.join(folder, 'special_tokens_map.json'), 'w') as f:
        json.dump(LLAMA_SPECIAL_TOKENS_MAP, f, indent=2)


def load_lisa_tokenizer(folder: str, use_mm_start_end: bool):
    """The tokenizer as LISA's ``train_ds.py`` builds it."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        folder, model_max_length=MODEL_MAX_LENGTH, padding_side='right', use_fast=False
    )
    tokenizer.pad_token = tokenizer.unk_token
    tokenizer.add_tokens(SEG)
    if use_mm_start_end:
        tokenizer.add_tokens([IM_START, IM_END], special_tokens=True)
    return tokenizer


# --------------------------------------------------------------- LISA's code
def get_prompt(messages: list[tuple[str, str]]) -> str:
    """``Conversation.get_prompt`` of ``llava_v1`` (separator style TWO)."""
    seps = [SEP, SEP2]
    ret = SYSTEM + seps[0]
    for i, (role, message) in enumerate(messages):
        if message:
            ret += role + ': ' + message + seps[i % 2]
        else:
            ret += role + ':'
    return ret


def tokenizer_image_token(prompt: str, tokenizer) -> list[int]:
    """``mm_utils.tokenizer_image_token``: chunks around ``<image>`` joined by -200."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(IMAGE)]
    ids, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    joined = [
        e for pair in zip(chunks, [[IMAGE_TOKEN_INDEX] * (offset + 1)] * len(chunks)) for e in pair
    ][:-1]
    for x in joined:
        ids.extend(x[offset:])
    return ids


def collate(conversations: list[str], tokenizer, use_mm_start_end: bool, inference: bool):
    """``collate_fn``: image-token replacement, ids, label masking, truncation."""
    if use_mm_start_end:
        conversations = [c.replace(IMAGE, IM_START + IMAGE + IM_END) for c in conversations]
    sequences = []
    for conversation in conversations:
        input_ids = tokenizer_image_token(conversation, tokenizer)
        target = list(input_ids)
        sep = SEP + ROLES[1] + ': '
        cur_len = 1
        target[:cur_len] = [IGNORE_INDEX] * cur_len
        for rou in conversation.split(SEP2):
            if rou == '':
                break
            parts = rou.split(sep)
            assert len(parts) == 2, (len(parts), rou)
            parts[0] += sep
            if IMAGE in conversation:
                round_len = len(tokenizer_image_token(rou, tokenizer))
                instruction_len = len(tokenizer_image_token(parts[0], tokenizer)) - 2
            else:
                round_len = len(tokenizer(rou).input_ids)
                instruction_len = len(tokenizer(parts[0]).input_ids) - 2
            end = min(cur_len + instruction_len, len(target))
            target[cur_len:end] = [IGNORE_INDEX] * (end - cur_len)
            cur_len += round_len
        target[cur_len:] = [IGNORE_INDEX] * max(len(target) - cur_len, 0)
        if cur_len < tokenizer.model_max_length:
            assert cur_len == len(input_ids), (cur_len, len(input_ids), conversation)
        if not inference:
            truncate_len = tokenizer.model_max_length - 255
            input_ids, target = input_ids[:truncate_len], target[:truncate_len]
        sequences.append(dict(prompt=conversation, input_ids=input_ids, labels=target))
    return sequences


def chat_prompt(text: str, tokenizer, use_mm_start_end: bool) -> dict:
    """``chat.py``: ``"<image>\\n" + text``, an empty assistant message, no labels."""
    prompt = IMAGE + '\n' + text
    if use_mm_start_end:
        prompt = prompt.replace(IMAGE, IM_START + IMAGE + IM_END)
    prompt = get_prompt([(ROLES[0], prompt), (ROLES[1], '')])
    return dict(prompt=prompt, input_ids=tokenizer_image_token(prompt, tokenizer), labels=None)


# -------------------------------------------------------------------- cases
def one_turn(question: str, answer: str) -> str:
    return get_prompt([(ROLES[0], question), (ROLES[1], answer)])


def cases() -> list[dict]:
    """Samples as LISA's datasets build them: each a list of queries (``turns`` of
    (question, answer)); every query is its own conversation except VQA dialogues."""
    short = [
        dict(
            name=f'short_template_{k}_answer_{k}',
            queries=[(q.format(class_name=c), ANSWER_LIST[k])],
        )
        for k, (q, c) in enumerate(zip(SHORT_QUESTION_LIST, ['cat', 'red car', 'dog', 'person']))
    ]
    long = [
        dict(
            name=f'long_template_{k}_answer_{4 - k}',
            queries=[(q.format(sent=SENTS[k]), ANSWER_LIST[4 - k])],
        )
        for k, q in enumerate(LONG_QUESTION_LIST)
    ]
    val_sentence = IMAGE + '\n {} Please output segmentation mask.'.format(SENTS[0])
    val_refer = IMAGE + '\n What is {} in this image? Please output segmentation mask.'
    explain_q = IMAGE + '\n' + SENTS[0] + ' ' + EXPLANATORY_QUESTION_LIST[1]
    multi = [
        (SHORT_QUESTION_LIST[k % 4].format(class_name=c), ANSWER_LIST[(k + 1) % 5])
        for k, c in enumerate(['cup', 'white dog', 'tree'])
    ]
    long_sent = ' '.join([SENTS[1], EXPLANATION] * 6)
    out = (
        short
        + long
        + [
            dict(name='val_reasonseg_sentence', queries=[(val_sentence, '[SEG].')], inference=True),
            dict(
                name='val_refer_phrase',
                queries=[(val_refer.format('the man on the left'), '[SEG].')],
                inference=True,
            ),
            dict(
                name='explanatory_seg_and_text',
                queries=[(explain_q, ANSWER_LIST[0] + ' ' + EXPLANATION)],
            ),
            dict(name='explanatory_text_only', queries=[(IMAGE + '\n' + SENTS[0], EXPLANATION)]),
            dict(name='multi_query_three_masks', queries=multi),
            dict(name='vqa_dialogue', dialogue=VQA),
            dict(
                name='digits_unicode_spaces',
                queries=[
                    (
                        IMAGE + '\n' + 'Segment the 2nd café  sign (12 cm) in this image.',
                        'Sure,[SEG] .',
                    )
                ],
            ),
            dict(
                name='truncated_long_query',
                queries=[(LONG_QUESTION_LIST[0].format(sent=long_sent), ANSWER_LIST[0])],
            ),
            dict(
                name='truncated_vqa_dialogue',
                dialogue=VQA + [(q.replace(IMAGE + '\n', ''), a) for q, a in VQA] * 3,
            ),
            dict(name='chat_prompt', chat='Where is the red umbrella in this picture?'),
        ]
    )
    for case in list(out):
        if case['name'] in (
            'short_template_0_answer_0',
            'val_reasonseg_sentence',
            'vqa_dialogue',
            'chat_prompt',
            'multi_query_three_masks',
        ):
            out.append(dict(case, name=case['name'] + '_no_im_start_end', use_mm_start_end=False))
    return out


def record_case(case: dict, folder: str) -> dict:
    use_mm = case.get('use_mm_start_end', True)
    inference = case.get('inference', False)
    tokenizer = load_lisa_tokenizer(folder, use_mm)
    if 'chat' in case:
        sequences = [chat_prompt(case['chat'], tokenizer, use_mm)]
    elif 'dialogue' in case:
        roles = [ROLES[k % 2] for k in range(2 * len(case['dialogue']))]
        texts = [t for turn in case['dialogue'] for t in turn]
        sequences = collate([get_prompt(list(zip(roles, texts)))], tokenizer, use_mm, inference)
    else:
        convs = [one_turn(q, a) for q, a in case['queries']]
        sequences = collate(convs, tokenizer, use_mm, inference)
    turns = case.get('queries') or case.get('dialogue') or [(IMAGE + '\n' + case['chat'], '')]
    return dict(
        name=case['name'],
        kind='chat' if 'chat' in case else 'dialogue' if 'dialogue' in case else 'queries',
        turns=[list(t) for t in turns],
        use_mm_start_end=use_mm,
        inference=inference,
        model_max_length=MODEL_MAX_LENGTH,
        seg_token_id=tokenizer.convert_tokens_to_ids(SEG),
        sequences=sequences,
    )


# ---------------------------------------------------------------- CLIP pixels
CLIP_CONFIG = {
    'crop_size': 224,
    'do_center_crop': True,
    'do_normalize': True,
    'do_resize': True,
    'feature_extractor_type': 'CLIPFeatureExtractor',
    'image_mean': [0.48145466, 0.4578275, 0.40821073],
    'image_std': [0.26862954, 0.26130258, 0.27577711],
    'resample': 3,
    'size': 224,
}
CLIP_IMAGE_SIZES = [(97, 131), (300, 227), (224, 224), (161, 400)]


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """An (h, w, 3) uint8 image of smooth gradients and a sharp disc (compresses well)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    a, b, c = rng.uniform(0.5, 3.0, size=3)
    img = np.stack(
        [
            127.5 + 127.5 * np.sin(a * xx / w * np.pi + b),
            255.0 * yy / max(h - 1, 1),
            127.5 + 127.5 * np.cos(c * (xx + yy) / (h + w) * np.pi),
        ],
        axis=-1,
    )
    disc = (yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (min(h, w) / 4) ** 2
    img[disc] = (250, 20, 60)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def record_clip(out_dir: str) -> None:
    from transformers import CLIPImageProcessor

    folder = osp.join(out_dir, 'clip')  # what LISA reads from openai/clip-vit-large-patch14
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'preprocessor_config.json'), 'w') as f:
        json.dump(CLIP_CONFIG, f, indent=2)
    processor = CLIPImageProcessor.from_pretrained(folder)
    arrays = {}
    for k, (h, w) in enumerate(CLIP_IMAGE_SIZES):
        img = smooth_image(h, w, seed=k)
        arrays[f'image_{k}'] = img
        # LISA: clip_image_processor.preprocess(image_np, return_tensors="pt")["pixel_values"][0]
        arrays[f'pixels_{k}'] = processor.preprocess(img, return_tensors='np')['pixel_values'][0]
    np.savez_compressed(osp.join(out_dir, 'clip_pixels.npz'), **arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=OUT_DIR, help='fixture folder')
    parser.add_argument(
        '--train-tokenizer',
        action='store_true',
        help='retrain the sentencepiece model (else reuse OUT/tokenizer)',
    )
    args = parser.parse_args()
    import transformers

    if transformers.__version__ != '4.31.0':
        raise SystemExit(
            f'Run this with transformers==4.31.0 (LISA pins it), got {transformers.__version__}.'
        )
    folder = osp.join(args.out, 'tokenizer')
    if args.train_tokenizer or not osp.isfile(osp.join(folder, 'tokenizer.model')):
        train_tokenizer(folder)
    records = [record_case(case, folder) for case in cases()]
    with open(osp.join(args.out, 'conversations.json'), 'w', encoding='utf-8') as f:
        lines = [json.dumps(r, ensure_ascii=False) for r in records]  # one case a line
        f.write('{"transformers": "%s", "cases": [\n' % transformers.__version__)
        f.write(',\n'.join(lines) + '\n]}\n')
    record_clip(args.out)
    print(
        f'{len(records)} conversation cases and {len(CLIP_IMAGE_SIZES)} CLIP images in {args.out}'
    )


if __name__ == '__main__':
    main()
