"""RCA methods behind one interface; see :mod:`llmrca.methods.registry`."""

from llmrca.methods.base import Method, NoConfig, Tags
from llmrca.methods.registry import available, get_method, list_methods, load_plugins, method_class

load_plugins()  # installed plug-ins (entry points "llmrca.methods") and $LLMRCA_PLUGINS modules

__all__ = ["Method", "NoConfig", "Tags", "available", "get_method", "list_methods", "method_class"]
