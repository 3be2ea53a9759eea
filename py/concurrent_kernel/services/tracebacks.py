"""IPython's tracebacks, the same text, made faster where a profiler showed the time going.

stack_data (which IPython formats traceback frames with) highlights each frame's code with a lexer class it defines
anew on every call; pygments processes a lexer class's token definitions the first time the class is used, so
every traceback paid for building the Python lexer's regular expressions again: measured, a third of an
interrupted cell's traceback (~8 ms of ~23 ms under cProfile; ~4 ms of a ~10 ms interrupt round trip). The lexer
class is made once here and told each call's ranges, which gives the same tokens. Likewise the style class that
marks the executing node is made once per theme (~1.2 ms of each traceback under cProfile), and the 256-colour
formatter IPython makes for each traceback maps that style's colours to terminal colours once per style instead of
every time (~4.6 ms of a ~12.5 ms traceback under cProfile, most of it searching the colour table).
"""

from __future__ import annotations

from functools import cache, lru_cache
from types import ModuleType
from typing import Any

from .import_hooks import when_imported


@cache
def _ranges_lexer() -> type:
    from pygments.lexers import get_lexer_by_name

    class RangesLexer(type(get_lexer_by_name("python3"))):  # type: ignore[misc]
        """The Python lexer, marking the tokens that start within `ranges` (the executing node) as stack_data's
        own lexer does."""

        ranges: Any = ()

        def get_tokens(self, text: str, unfiltered: bool = False) -> Any:
            length = 0
            ranges = self.ranges
            for ttype, value in super().get_tokens(text):
                if any(start <= length < end for start, end in ranges):
                    ttype = ttype.ExecutingNode
                length += len(value)
                yield ttype, value

    return RangesLexer


def pygmented_with_ranges(formatter: Any, code: str, ranges: Any) -> list[str]:
    """stack_data.utils._pygmented_with_ranges, with one lexer class."""
    import pygments

    lexer = _ranges_lexer()(stripnl=False)
    lexer.ranges = ranges
    try:
        highlighted = pygments.highlight(code, lexer, formatter)
    except Exception:  # as stack_data: code without highlighting rather than no traceback
        highlighted = code
    return str(highlighted).splitlines()


def _adapt_stack_data(core: ModuleType) -> None:
    if hasattr(core, "_pygmented_with_ranges"):
        core._pygmented_with_ranges = pygmented_with_ranges
    style_with_executing_node = getattr(core, "style_with_executing_node", None)
    if style_with_executing_node is not None:
        # keyed on the theme's style class (IPython keeps one per theme) and the highlight: both hashable
        core.style_with_executing_node = lru_cache(maxsize=16)(style_with_executing_node)


def _adapt_terminal256(module: ModuleType) -> None:
    formatter = getattr(module, "Terminal256Formatter", None)
    setup = getattr(formatter, "_setup_styles", None)
    if setup is None:
        return
    done: dict[tuple[Any, ...], dict[str, Any]] = {}

    def _setup_styles(self: Any) -> None:
        # What it computes depends on the style and these three options only (the colour table is a constant).
        key = (self.style, self.usebold, self.useunderline, self.useitalic)
        strings = done.get(key)
        if strings is None:
            setup(self)
            if len(done) < 32:
                done[key] = dict(self.style_string)
        else:
            self.style_string = dict(strings)

    formatter._setup_styles = _setup_styles


def install() -> None:
    when_imported("stack_data.core", _adapt_stack_data)
    when_imported("pygments.formatters.terminal256", _adapt_terminal256)
