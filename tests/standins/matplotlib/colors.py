"""Colours: every stand-in figure is opaque white, so nothing here needs more."""


def to_rgba(color, alpha=None):
    return (1.0, 1.0, 1.0, 1.0 if alpha is None else alpha)


def to_rgba_array(colors, alpha=None):
    return [to_rgba(c, alpha) for c in colors]
