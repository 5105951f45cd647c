"""The demo report's pictures (matplotlib, Agg): the run's timeline, target exposure, freshness.

Every axis that counts things has integer ticks; labels and legends sit inside the picture; the
attack's start is marked wherever time runs along the x axis. Input is the report's own series,
so a picture never shows a number the report does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["write_plots", "DECISION_STYLE"]

# decision → (marker, colour) in every picture
DECISION_STYLE = {
    "promote": ("^", "tab:green"),
    "hold": ("s", "tab:orange"),
    "reject": ("X", "tab:red"),
    "shadow": ("o", "tab:grey"),
}


def _legend(ax, **kwargs) -> None:
    """A legend inside the axes, if anything is labelled (an empty run draws none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, **kwargs)


def _marker(ax, x: float, text: str | None, color: str, linestyle: str, linewidth: float, y: float, dy: float) -> None:
    """A vertical line at x, labelled at height y (a share of the axes) when `text` is given."""
    ax.axvline(x, color=color, linestyle=linestyle, linewidth=linewidth)
    if text:
        ax.annotate(
            text,
            (x, y),
            xycoords=("data", "axes fraction"),
            xytext=(3, dy),
            textcoords="offset points",
            color=color,
            fontsize=8,
        )


def _attack(ax, start_s: float | None, label: bool = True) -> None:
    if start_s is not None:
        _marker(ax, start_s, "attack starts" if label else None, "tab:red", "--", 1, 0.0, 4)


def _timeline(plt, out: Path, report: Mapping, series: Mapping) -> str:
    from matplotlib.ticker import MaxNLocator

    start = report["attack"]["start_s"]
    fig, (events_ax, flags_ax, rounds_ax) = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True)
    if series["events"]:
        t, n = zip(*series["events"])
        events_ax.plot(t, n, color="tab:blue", label="events processed")
        events_ax.plot(*zip(*series["replayed"]), color="tab:blue", alpha=0.35, label="inputs replayed")
    events_ax.set(ylabel="events", title="The run: ingest, detection, training rounds and the gate")
    _legend(events_ax, loc="lower right")
    if series["flags"]:
        t, attackers, genuine = zip(*series["flags"])
        flags_ax.step(t, attackers, where="post", color="tab:red", label="attackers flagged")
        flags_ax.step(t, genuine, where="post", color="tab:green", label="genuine users flagged")
    flags_ax.axhline(report["attack"]["attackers"], color="tab:red", alpha=0.3, linewidth=1)
    flags_ax.annotate(
        f"{report['attack']['attackers']} attackers injected",
        (0.01, report["attack"]["attackers"]),
        xycoords=("axes fraction", "data"),
        xytext=(0, -11),
        textcoords="offset points",
        fontsize=8,
        color="tab:red",
    )
    flags_ax.set(ylabel="users flagged now")
    _legend(flags_ax, loc="center left")
    rows = {"defended": 1, "undefended": 0}
    seen: set[str] = set()
    for v in report["versions"]:
        if v["at_s"] is None:
            continue
        marker, colour = DECISION_STYLE.get(v["decision"], ("o", "black"))
        label = v["decision"] if v["decision"] not in seen else None
        seen.add(v["decision"])
        rounds_ax.scatter(v["at_s"], rows[v["pipeline"]], marker=marker, color=colour, s=60, label=label, zorder=3)
        rounds_ax.annotate(
            f"v{v['version']}", (v["at_s"], rows[v["pipeline"]]), xytext=(0, 7), textcoords="offset points", fontsize=7
        )
    rounds_ax.set_yticks([0, 1], ["undefended\nshadow", "defended"])
    rounds_ax.set_ylim(-0.6, 1.8)
    rounds_ax.set(xlabel="seconds since the start of the replay", ylabel="registered versions")
    _legend(rounds_ax, loc="upper left", ncol=max(1, len(seen)))
    for ax in (events_ax, flags_ax, rounds_ax):
        _attack(ax, start, label=ax is events_ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (events_ax, flags_ax):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=110)
    plt.close(fig)
    return "timeline.png"


def _exposure(plt, out: Path, report: Mapping, series: Mapping) -> str:
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 3.6))
    colours = {"undefended": "tab:red", "defended": "tab:blue"}
    names = {"undefended": "undefended shadow", "defended": "defended pipeline"}
    for pipeline in ("undefended", "defended"):
        points = series["exposure"].get(pipeline) or []
        if points:
            t, share = zip(*points)
            ax.plot(t, share, marker=".", color=colours[pipeline], label=names[pipeline])
    exposure = report["target_exposure"]
    if exposure["before_attack"] is not None:
        ax.axhline(exposure["before_attack"], color="grey", linestyle=":", linewidth=1, label="before the attack")
    for v in report["versions"]:
        if v["pipeline"] == "defended" and v["decision"] == "promote" and v["at_s"] is not None:
            ax.axvline(v["at_s"], color="tab:green", alpha=0.25, linewidth=1)
    _attack(ax, report["attack"]["start_s"])
    attackers = report["attack"]["attackers"]
    flagged_at = next((t for t, n, _ in series["flags"] if attackers and n >= 0.9 * attackers), None)
    if flagged_at is not None:
        _marker(ax, flagged_at, "90% of attackers flagged", "tab:purple", ":", 1.5, 0.5, 0)
    ax.set(
        xlabel="seconds since the start of the replay (green: promotions)",
        ylabel="share of top-10 lists",
        title="Served lists to genuine users that contain a target item",
    )
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(ax, loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "exposure.png", dpi=110)
    plt.close(fig)
    return "exposure.png"


def _freshness(plt, out: Path, fresh: Sequence[float]) -> str:
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 3.2))
    if len(fresh):
        ax.hist(np.asarray(fresh), bins=30, color="tab:blue")
    ax.set(
        xlabel="seconds from an event's arrival to the first answer of a model trained on it",
        ylabel="events",
        title="Freshness",
    )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(out / "freshness.png", dpi=110)
    plt.close(fig)
    return "freshness.png"


def write_plots(out: Path, report: Mapping, series: Mapping, fresh: Sequence[float]) -> list[str]:
    """Write timeline.png, exposure.png and freshness.png into `out`; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return [_timeline(plt, out, report, series), _exposure(plt, out, report, series), _freshness(plt, out, fresh)]
