"""Deprecated location of :mod:`lisakit.engine.runtime` (kept so that old imports work).

``lisakit.utils`` is the lowest layer and must not import the engine (docs/architecture.md);
import from :mod:`lisakit.engine.runtime` instead. The import-linter contracts ignore this
one re-export until the tools have moved to the new path.
"""

from lisakit.engine.runtime import (  # noqa: F401
    CPU_STRATEGIES,
    DEEPSPEED_WRAPPER_SOURCES,
    add_common_args,
    build_runner,
    deepspeed_config_keys,
    load_config,
    prepare_cpu_distributed,
    prepare_strategy,
    setup_runtime,
)
