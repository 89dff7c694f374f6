"""lisakit registries: children of mmengine's root registries, scope ``lisakit``.

Building any component from a config whose ``default_scope`` is ``'lisakit'``
imports the modules listed in ``locations`` first, so every registered class is
available without manual imports.
"""

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

SCOPE = 'lisakit'

#: Runners (mmengine's Runner as is; FlexibleRunner with a resume fix; custom ones).
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, scope=SCOPE, locations=['lisakit.engine'])
#: Training / validation / test loops.
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, scope=SCOPE, locations=['lisakit.engine'])
#: Hooks (training history, mask visualization, ...).
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope=SCOPE, locations=['lisakit.engine'])
#: Datasets.
DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, scope=SCOPE, locations=['lisakit.datasets']
)
#: Data samplers.
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, scope=SCOPE, locations=['lisakit.datasets']
)
#: Data transforms (image loading, SAM preprocessing, masks, packing neutral samples).
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, scope=SCOPE, locations=['lisakit.datasets.transforms']
)
#: Every model part: segmentors, backbones, necks, heads, losses, data preprocessors.
MODELS = Registry('model', parent=MMENGINE_MODELS, scope=SCOPE, locations=['lisakit.models'])
#: Model wrappers (DDP, FSDP, ...).
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, scope=SCOPE, locations=['lisakit.models']
)
#: Weight initializers.
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMENGINE_WEIGHT_INITIALIZERS,
    scope=SCOPE,
    locations=['lisakit.models'],
)
#: Optimizers.
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, scope=SCOPE, locations=['lisakit.engine']
)
#: Optimizer wrappers.
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, scope=SCOPE, locations=['lisakit.engine']
)
#: Optimizer wrapper constructors.
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope=SCOPE,
    locations=['lisakit.engine'],
)
#: Parameter schedulers.
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMENGINE_PARAM_SCHEDULERS,
    scope=SCOPE,
    locations=['lisakit.engine'],
)
#: Metrics (gIoU / cIoU).
METRICS = Registry('metric', parent=MMENGINE_METRICS, scope=SCOPE, locations=['lisakit.evaluation'])
#: Evaluators.
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, scope=SCOPE, locations=['lisakit.evaluation']
)
#: Visualizers (mask overlays).
VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, scope=SCOPE, locations=['lisakit.visualization']
)
#: Visualization backends.
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, scope=SCOPE, locations=['lisakit.visualization']
)
#: Log processors.
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMENGINE_LOG_PROCESSORS, scope=SCOPE, locations=['lisakit.engine']
)
#: Tokenizer builders (mmengine has no root for these): offline word-level tokenizers
#: for tiny configs and local Hugging Face tokenizer folders.
TOKENIZERS = Registry('tokenizer', scope=SCOPE, locations=['lisakit.tokenizers'])
#: VLM processors (tokenizer, chat template, special tokens, image preprocessing of a
#: backbone), built by the backbone from its ``processor`` config.
PROCESSORS = Registry('processor', scope=SCOPE, locations=['lisakit.models.processors'])
