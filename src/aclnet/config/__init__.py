"""The experiment configuration: the typed schema (`schema`) and how experiments are loaded (`loading`).

It sits below the engine and the tasks, which both read it; it imports neither.
"""

from aclnet.config.loading import (
    CONFIG_DIR,
    absolute_paths,
    config_as_dict,
    config_from_text,
    dump_config,
    list_configs,
    load_config,
    parse_overrides,
    validate_config,
)
from aclnet.config.schema import ExperimentConfig

__all__ = ["CONFIG_DIR", "ExperimentConfig", "absolute_paths", "config_as_dict", "config_from_text", "dump_config",
           "list_configs", "load_config", "parse_overrides", "validate_config"]
