"""Dark and light themes: the Panel template theme plus the colours our own marks use.

Panel styles its widgets and the Bokeh plots from the template theme; the colours here are for
what we draw ourselves (candles, markers, order levels, metric cards), chosen to read on both.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradetower.errors import ConfigError


@dataclass(frozen=True)
class Theme:
    name: str
    #: the theme name Panel's templates take ("default" is Panel's light theme)
    panel: str
    background: str
    surface: str
    text: str
    muted: str
    accent: str
    up: str
    down: str
    buy: str
    sell: str
    equity: str
    drawdown: str
    heatmap_cmap: str
    #: line colours of the compared runs, in order
    series: tuple[str, ...]


DARK = Theme(
    name="dark",
    panel="dark",
    background="#181818",
    surface="#242424",
    text="#e8e8e8",
    muted="#a0a0a0",
    accent="#4fa3ff",
    up="#26a69a",
    down="#ef5350",
    buy="#2ecc71",
    sell="#ff6b6b",
    equity="#4fa3ff",
    drawdown="#ef5350",
    heatmap_cmap="viridis",
    series=("#4fa3ff", "#ffb74d", "#81c784", "#e57373", "#ba68c8"),
)

LIGHT = Theme(
    name="light",
    panel="default",
    background="#f5f5f5",
    surface="#ffffff",
    text="#1f1f1f",
    muted="#5f5f5f",
    accent="#0b62c4",
    up="#00897b",
    down="#d32f2f",
    buy="#1b9e4b",
    sell="#d62728",
    equity="#0b62c4",
    drawdown="#d32f2f",
    heatmap_cmap="viridis",
    series=("#0b62c4", "#e67e00", "#2e7d32", "#c62828", "#6a1b9a"),
)

THEMES = {"dark": DARK, "light": LIGHT}
#: names a URL may carry (Panel's theme switch writes ``theme=default`` for light)
_ALIASES = {"dark": DARK, "light": LIGHT, "default": LIGHT}


def get_theme(theme: str | Theme) -> Theme:
    """A theme by name (``dark`` or ``light``); a clear error for anything else."""
    if isinstance(theme, Theme):
        return theme
    found = _ALIASES.get(str(theme).strip().lower())
    if found is None:
        raise ConfigError("theme", f"unknown theme {theme!r}; use dark or light")
    return found
