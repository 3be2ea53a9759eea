"""Figures and axes that record what was drawn on them."""

from . import rcParams


class Axes:
    def __init__(self, figure):
        self.figure = figure
        self.calls = []

    def _record(self, name, *args, **kwargs):
        self.calls.append(name)
        self.figure.stale = True
        return [name]

    def plot(self, *args, **kwargs):
        return self._record("plot", *args, **kwargs)

    def hist(self, *args, **kwargs):
        return self._record("hist", *args, **kwargs)

    def bar(self, *args, **kwargs):
        return self._record("bar", *args, **kwargs)

    def scatter(self, *args, **kwargs):
        return self._record("scatter", *args, **kwargs)

    def set_title(self, *args, **kwargs):
        return self._record("title", *args, **kwargs)


class Figure:
    def __init__(self, figsize=None, dpi=None, **kwargs):
        self.figsize = tuple(figsize or rcParams["figure.figsize"])
        self.dpi = dpi or rcParams["figure.dpi"]
        self.axes = []
        self.lines = []
        self.canvas = None
        self.number = None
        self.stale = False

    def add_subplot(self, *args, **kwargs):
        axes = Axes(self)
        self.axes.append(axes)
        return axes

    def gca(self):
        return self.axes[-1] if self.axes else self.add_subplot()

    def get_facecolor(self):
        return (1.0, 1.0, 1.0, 1.0)

    def get_edgecolor(self):
        return (1.0, 1.0, 1.0, 1.0)

    def __repr__(self):
        return f"<Figure size {self.figsize[0] * self.dpi:g}x{self.figsize[1] * self.dpi:g} with {len(self.axes)} Axes>"
