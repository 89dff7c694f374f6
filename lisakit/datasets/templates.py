"""LISA's question and answer templates (``utils/utils.py`` of the LISA repository).

``[SEG]`` is written as lisakit's ``<SEG>`` token and ``DEFAULT_IMAGE_TOKEN`` as
``<image>``. Datasets take these lists as config so users can swap them.
"""

from lisakit.utils.constants import IMAGE_TOKEN, SEG_TOKEN

#: Short (class-name / phrase) questions; ``{class_name}`` is filled in.
SHORT_QUESTION_LIST = [
    IMAGE_TOKEN + '\n' + 'Can you segment the {class_name} in this image?',
    IMAGE_TOKEN + '\n' + 'Please segment the {class_name} in this image.',
    IMAGE_TOKEN
    + '\n'
    + 'What is {class_name} in this image? Please respond with segmentation mask.',
    IMAGE_TOKEN + '\n' + 'What is {class_name} in this image? Please output segmentation mask.',
]
#: Long (sentence) questions; ``{sent}`` is filled in.
LONG_QUESTION_LIST = [
    IMAGE_TOKEN + '\n' + '{sent} Please respond with segmentation mask.',
    IMAGE_TOKEN + '\n' + '{sent} Please output segmentation mask.',
]
#: Appended to a question when an explanation is asked for.
EXPLANATORY_QUESTION_LIST = [
    'Please output segmentation mask and explain why.',
    'Please output segmentation mask and explain the reason.',
    'Please output segmentation mask and give some explanation.',
]
#: Training answers; one ``<SEG>`` each.
ANSWER_LIST = [
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation result is {SEG_TOKEN}.',
    f'{SEG_TOKEN}.',
]
#: LISA's fixed validation answer (teacher-forced evaluation).
VAL_ANSWER = f'{SEG_TOKEN}.'
