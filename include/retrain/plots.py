"""Report figures whose text is drawn as text. Column names, category values and tags come from data and
specs: with matplotlib's default mathtext a `$\\notacommand$` is parsed as a formula and the drawing fails
(it crashed the drift step). Every figure of the reports is made here."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def text_figure(figsize: tuple[float, float], dpi: int) -> Iterator[tuple[Any, Any]]:
    """A matplotlib figure and axes (Agg backend) with math parsing and TeX off for every text drawn inside
    the block; the figure is closed when the block ends. Render it with `png_data_uri` inside the block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def png_data_uri(fig: Any) -> str:
    """The figure, laid out, as a PNG data URI for an <img src>."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
