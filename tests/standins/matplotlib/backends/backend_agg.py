"""The Agg backend's canvas and manager factory (what matplotlib-inline builds on)."""

from ..backend_bases import FigureCanvasBase, FigureManagerBase


class FigureCanvasAgg(FigureCanvasBase):
    pass


def new_figure_manager_given_figure(num, figure):
    return FigureManagerBase(FigureCanvasAgg(figure), num)
