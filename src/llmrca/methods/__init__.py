"""RCA methods behind one interface; see :mod:`llmrca.methods.registry`."""

from llmrca.methods.base import Method, NoConfig, Tags
from llmrca.methods.registry import available, get_method, list_methods, method_class

__all__ = ["Method", "NoConfig", "Tags", "available", "get_method", "list_methods", "method_class"]
