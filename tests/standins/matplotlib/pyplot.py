"""pyplot's state machine, enough for simple cells. Like the real pyplot, switching backend copies the backend
module's functions (`new_figure_manager`, `show`) at that moment."""

import contextlib
import importlib
import itertools

from . import _pylab_helpers, rcParams
from . import interactive as _set_interactive
from . import is_interactive as _is_interactive
from .figure import Figure

Gcf = _pylab_helpers.Gcf
_backend_mod = None
_numbers = itertools.count(1)


def _module_name(backend):
    if backend.startswith("module://"):
        return backend[len("module://"):]
    if backend == "inline":
        return "matplotlib_inline.backend_inline"
    return "matplotlib.backends.backend_agg"


def switch_backend(newbackend):
    global _backend_mod
    module = importlib.import_module(_module_name(newbackend))

    class backend_mod:  # as pyplot names it
        pass

    for name, value in vars(module).items():
        if callable(value) and not name.startswith("__"):
            setattr(backend_mod, name, staticmethod(value))
    rcParams["backend"] = newbackend
    _backend_mod = backend_mod


def _get_backend_mod():
    if _backend_mod is None:
        switch_backend(rcParams._get("backend"))
    return _backend_mod


def draw_if_interactive():
    pass


def figure(num=None, figsize=None, **kwargs):
    if num is not None and Gcf.get_fig_manager(num) is not None:
        return Gcf.get_fig_manager(num).canvas.figure
    num = next(_numbers) if num is None else num
    backend = _get_backend_mod()
    if hasattr(backend, "new_figure_manager"):
        manager = backend.new_figure_manager(num, figsize=figsize, FigureClass=Figure)
    else:
        from .backends.backend_agg import new_figure_manager_given_figure

        manager = new_figure_manager_given_figure(num, Figure(figsize=figsize))
    Gcf.set_active(manager)
    return manager.canvas.figure


def gcf():
    manager = Gcf.get_active()
    return manager.canvas.figure if manager is not None else figure()


def gca():
    return gcf().gca()


def subplots(nrows=1, ncols=1, **kwargs):
    fig = figure(**kwargs)
    return fig, fig.add_subplot()


def plot(*args, **kwargs):
    return gca().plot(*args, **kwargs)


def hist(*args, **kwargs):
    return gca().hist(*args, **kwargs)


def bar(*args, **kwargs):
    return gca().bar(*args, **kwargs)


def scatter(*args, **kwargs):
    return gca().scatter(*args, **kwargs)


def title(*args, **kwargs):
    return gca().set_title(*args, **kwargs)


def show(*args, **kwargs):
    return _get_backend_mod().show(*args, **kwargs)


def close(fig=None):
    if fig is None:
        manager = Gcf.get_active()
        if manager is not None:
            Gcf.destroy(manager.num)
    elif fig == "all":
        Gcf.destroy_all()
    elif isinstance(fig, Figure):
        Gcf.destroy_fig(fig)
    else:
        Gcf.destroy(fig)


def get_fignums():
    return sorted(Gcf.figs)


def ion():
    _set_interactive(True)
    return contextlib.ExitStack()


def ioff():
    _set_interactive(False)
    return contextlib.ExitStack()


def isinteractive():
    return _is_interactive()
