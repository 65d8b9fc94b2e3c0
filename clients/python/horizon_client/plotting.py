"""``plot(df, fcst)``: history, forecast and its intervals, one panel per series.

Needs matplotlib: ``pip install "./clients/python[plot]"``.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import pandas as pd


def plot(
    df: pd.DataFrame,
    fcst: pd.DataFrame,
    *,
    ids: Optional[Sequence[Any]] = None,
    max_series: int = 8,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Any:
    """Plots the history of each series with its forecast and intervals.

    Args:
        df: the observations, long format.
        fcst: a forecast frame from :meth:`HorizonClient.forecast` (or
            :meth:`HorizonClient.cross_validation`).
        ids: the series to draw (default: the first ``max_series``).

    Returns:
        The matplotlib ``Figure``.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError('plot needs matplotlib: pip install "horizon-client[plot]"') from e
    if ids is None:
        ids = list(pd.unique(fcst[id_col]))[:max_series]
    ids = list(ids)
    models = [
        c
        for c in fcst.columns
        if c not in (id_col, time_col, target_col, "cutoff") and not re.search(r"-(lo|hi)-[0-9.]+$", c)
    ]
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.8 * max(1, len(ids))), squeeze=False)
    for ax, sid in zip(axes[:, 0], ids):
        hist = df[df[id_col] == sid]
        ax.plot(hist[time_col], hist[target_col], color="black", lw=1.2, label="y")
        part = fcst[fcst[id_col] == sid]
        for model in models:
            levels = sorted(
                {float(m.group(1)) for c in part.columns if (m := re.match(re.escape(model) + r"-lo-([0-9.]+)$", c))},
                reverse=True,
            )
            for i, level in enumerate(levels):
                name = str(int(level)) if level.is_integer() else str(level)
                ax.fill_between(
                    part[time_col],
                    part[f"{model}-lo-{name}"],
                    part[f"{model}-hi-{name}"],
                    alpha=0.18 + 0.12 * i,
                    color="tab:blue",
                    label=f"{model} {name}%",
                )
            ax.plot(part[time_col], part[model], lw=1.5, label=model)
        ax.set_title(str(sid))
        ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig
