"""The demo report as pages: Markdown (report.md) and one self-contained HTML page (report.html).

Pure text building from the report dict that `report.json` holds (plus the PNGs' bytes for the
HTML page, embedded as data URIs): no files, no clock. Table cells are escaped so that a reason
holding a `|` cannot break a table.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence

from markdown_it import MarkdownIt

__all__ = ["cell", "fmt", "markdown_report", "html_page"]


def fmt(value, digits: int = 4) -> str:
    """A number for a table: floats to `digits` decimals, None as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def cell(value) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, line breaks flattened)."""
    return fmt(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _summary_rows(report: Mapping) -> list[tuple[str, str]]:
    d, m, f, s = report["detection"], report["models"], report["freshness_seconds"], report["serving"]
    rows = [
        ("inputs replayed (malformed included)", fmt(report["inputs"])),
        ("events processed / dead-lettered", f"{report['events']} / {report['dead_letters']}"),
        (
            "detection precision / recall / F1 / FPR (end of run)",
            " / ".join(fmt(d.get(k)) for k in ("precision", "recall", "f1", "fpr")),
        ),
        (
            "defended rounds / promoted / held / rejected",
            f"{m['rounds']} / {m['promoted']} / {m['held']} / {m['rejected']}",
        ),
        ("undefended shadow rounds (never promoted)", fmt(m["shadow_rounds"])),
    ]
    trained = report.get("attack_rows_trained")
    if trained:
        rows.append(
            (
                "attackers' events kept out of every training batch, defended / undefended",
                " / ".join(
                    f"{fmt(t['kept_out'])} ({t['attacker_rows_trained']} of {t['attacker_events']} rows trained)"
                    for t in (trained["defended"], trained["undefended"])
                ),
            )
        )
    if report.get("champion"):
        c = report["champion"]
        rows.append(
            (
                "champion at the end",
                f"version {c['version']}: HR@10 {fmt(c['hr@10'])}, NDCG@10 {fmt(c['ndcg@10'])}, "
                f"NDCG@10 drop under FGSM ε={c['fgsm_eps']} {fmt(c['fgsm_ndcg_drop'])}",
            )
        )
    else:  # the gate promoted no version: the defended scorer served its popularity list all along
        rows.append(("champion at the end", "none promoted: the defended scorer served the trusted popularity list"))
    rows += [
        ("freshness p50 / p95 (s)", f"{fmt(f['p50'], 1)} / {fmt(f['p95'], 1)} ({f['events_measured']} events)"),
        ("recommendation requests answered (defended)", f"{s['answered']} of {s['requests']}"),
        (
            "answers ranked by the user's profile, defended / undefended",
            " / ".join(fmt(s["from_profile"][k], 2) for k in ("defended", "undefended")),
        ),
        (
            "answers from the popularity list, defended / undefended",
            " / ".join(fmt(s["from_popularity"][k], 2) for k in ("defended", "undefended")),
        ),
        (
            "request → answer through Kafka p50 / p95 / p99 (ms)",
            " / ".join(fmt(s["end_to_end_ms"].get(k), 1) for k in ("p50", "p95", "p99")),
        ),
    ]
    return rows


def markdown_report(report: Mapping) -> str:
    """report.md: what ran, what the attack did to each pipeline, the gate's decisions, the pictures."""
    attack, times, exposure, verdict = report["attack"], report["times"], report["target_exposure"], report["verdict"]
    lines = [
        "# advrec demo report",
        "",
        f"Dataset: {report['dataset']}. Attack: `{attack['spec']}` (filler {attack['filler']}), "
        f"{attack['attackers']} accounts pushing {', '.join(f'`{t}`' for t in attack['targets']) or 'no target'}, "
        f"first attack event sent at {fmt(attack['start_s'], 1)} s. "
        f"Run time {fmt(times['total_s'], 1)} s (load average {report['load']['before']} at the start, "
        f"{report['load']['after']} at the end; {report['load']['cpus']} CPUs).",
        "",
        "## What the attack did",
        "",
        "Share of served top-10 lists to genuine users that contain a target item. The undefended shadow "
        "(plain BPR on every event, no quarantine, registered as "
        f"`{report['registry']['shadow_model']}`, never promoted) answers the same requests as the "
        "defended pipeline (quarantine of flagged users, APR, promotion gate). *After* = lists served by "
        "versions trained by the first round that took attack-period events, or later.",
        "",
    ]
    lines += _table(
        ["", "share of lists with a target", "lists"],
        [
            ("before the attack (both pipelines)", exposure["before_attack"], exposure["lists"]["before_attack"]),
            ("after: undefended shadow", exposure["undefended"], exposure["lists"]["undefended"]),
            ("after: defended pipeline", exposure["defended"], exposure["lists"]["defended"]),
        ],
    )
    by_source = exposure.get("with_target_by_source") or {}
    shown = {
        pipeline: ", ".join(f"{source} {n}" for source, n in sorted(counts.items())) or "none"
        for pipeline, counts in by_source.items()
    }
    if shown:
        lines += [
            "Lists with a target after the attack, by the path that served them: "
            + "; ".join(f"{pipeline} {text}" for pipeline, text in sorted(shown.items()))
            + ".",
            "",
        ]
    lines += [
        f"Lift undefended {fmt(verdict['undefended_lift'])}, defended {fmt(verdict['defended_lift'])}: "
        f"the attack bites (undefended ≥ 5× before): **{fmt(verdict['attack_bites'])}**; the defence holds "
        f"(defended lift ≤ 10% of the undefended lift): **{fmt(verdict['defence_holds'])}**.",
        "",
        "## The run",
        "",
    ]
    lines += _table(["what", "value"], _summary_rows(report))
    lines += ["## Phases", ""]
    lines += _table(["phase", "seconds"], [(name, fmt(sec, 1)) for name, sec in times["phases"].items()])
    lines += ["## Rounds and gate decisions", ""]
    lines += _table(
        ["pipeline", "version", "round", "at (s)", "decision", "HR@10", "NDCG@10", "FGSM drop", "reasons"],
        [
            (
                v["pipeline"],
                v["version"],
                v["round"],
                fmt(v["at_s"], 1),
                v["decision"],
                v["hr@10"],
                v["ndcg@10"],
                v["fgsm_drop"],
                v["reasons"],
            )
            for v in report["versions"]
        ],
    )
    lines += ["## Sample recommendations (defended)", ""]
    for rec in report["sample_recommendations"]:
        lines.append(f"- user `{rec['user_id']}` (version {rec['model_version']}): {', '.join(rec['items'][:10])}")
    lines += ["", "## Pictures", ""]
    lines += [f"![{name}]({name})" for name in report["plots"]]
    lines += ["", "## Inspect the registry", "", "```bash", *report["registry"]["commands"], "```", ""]
    return "\n".join(lines)


def html_page(markdown_text: str, images: Mapping[str, bytes], title: str = "advrec demo report") -> str:
    """One self-contained HTML page: the Markdown rendered (tables included), PNGs inlined as data URIs."""
    body = MarkdownIt("commonmark").enable("table").render(markdown_text)
    for name, data in images.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode()
        body = body.replace(f'src="{html.escape(name)}"', f'src="{uri}"')
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
        "table{border-collapse:collapse;margin:0.5rem 0}td,th{border:1px solid #ccc;padding:0.25rem 0.5rem;"
        "text-align:left;vertical-align:top}img{max-width:100%}code{background:#f4f4f4}"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n{body}</body></html>\n"
    )
