"""Canvas and manager: the canvas 'prints' a PNG header of the figure's size, or an SVG naming its calls."""

import struct
import zlib


class FigureCanvasBase:
    def __init__(self, figure=None):
        self.figure = figure
        if figure is not None:
            figure.canvas = self

    def draw_idle(self):
        pass

    def print_figure(self, fp, format="png", dpi=None, **kwargs):
        figure = self.figure
        dpi = dpi or figure.dpi
        width, height = int(figure.figsize[0] * dpi), int(figure.figsize[1] * dpi)
        if format == "svg":
            calls = ",".join(call for axes in figure.axes for call in axes.calls)
            fp.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
                     f"<desc>{calls}</desc></svg>".encode())
            return
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        chunk = b"IHDR" + header
        fp.write(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk
                 + struct.pack(">I", zlib.crc32(chunk)))


class FigureManagerBase:
    def __init__(self, canvas, num):
        self.canvas = canvas
        self.num = num
        canvas.manager = self
        canvas.figure.number = num
