"""A stand-in for matplotlib (see tests/standins/README.md): just what the inline backend path touches."""

import os

__version__ = "3.10.0+standin"
__version_info__ = (3, 10, 0)


class RcParams(dict):
    def _get(self, key):
        return self.get(key)


rcParams = RcParams({
    "backend": os.environ.get("MPLBACKEND", "agg"),
    "figure.figsize": (6.4, 4.8),
    "figure.dpi": 100.0,
    "figure.facecolor": "white",
    "figure.edgecolor": "white",
    "font.size": 10.0,
    "figure.subplot.bottom": 0.11,
})
_interactive = False


def interactive(flag):
    global _interactive
    _interactive = bool(flag)


def is_interactive():
    return _interactive


def get_backend(auto_select=True):
    return rcParams["backend"]


def use(backend, force=True):
    from . import pyplot

    pyplot.switch_backend(backend)
