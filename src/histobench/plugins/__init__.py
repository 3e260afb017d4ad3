"""Plugin API: hook markers for plugin authors, and the plugin manager."""

from histobench.plugins.hookspecs import hookimpl

__all__ = ["hookimpl"]
