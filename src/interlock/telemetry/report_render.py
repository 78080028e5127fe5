"""Render a report (the data of :func:`interlock.telemetry.report_data.build_report`) as Markdown or
as one self-contained HTML page with inline SVG charts.

Sections: summary, performance, SLO compliance, cost, fallbacks, top consumers. Markdown shows each
model's trend (one value per bucket) as a sparkline; HTML draws charts.

"errors" are failures of the gateway or its backends, as a share of the requests they could have
hit (answers and failures); the callers' own mistakes ("client errors") and the gateway's 429
refusals are shown apart, as counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from interlock.telemetry.svg_charts import bar_chart, hbar_chart, line_chart

__all__ = ["RENDERERS", "to_html", "to_markdown"]

_SPARKS = "▁▂▃▄▅▆▇█"
Table = tuple[list[str], list[list[str]]]


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f} %" if whole else "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms")


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def _spark(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    top = max(present, default=0.0)
    if top <= 0:
        return "".join("▁" if v is not None else " " for v in values)
    return "".join(" " if v is None else _SPARKS[min(7, int(v / top * 7.999))] for v in values)


def _day(start: str) -> str:
    return start[5:10] if start.endswith("00:00:00+00:00") else start[5:16].replace("T", " ")


def _compliance(model: Mapping[str, Any]) -> tuple[str, str]:
    slo = model.get("slo")
    if not slo or slo["compliance"] is None:
        return "-", ""
    value = 100 * slo["compliance"]
    verdict = "met" if value >= 100 * slo["target"] else "MISSED"
    return f"{value:.2f} %", verdict


def _objectives(slo: Mapping[str, Any] | None) -> str:
    if not slo:
        return "-"
    objectives = slo["objectives_ms"]
    parts = [f"{name} ≤ {_ms(v)}" for name, v in objectives.items() if v is not None]
    return ", ".join(parts) or "success only"


def _tables(report: Mapping[str, Any]) -> dict[str, Table]:
    t, models = report["totals"], report["models"]
    tables: dict[str, Table] = {}
    tables["Summary"] = (
        [
            "requests",
            "errors",
            "5xx",
            "fallbacks",
            "client errors",
            "refused",
            "p50",
            "p95",
            "p99",
            "tokens",
            "cost",
        ],
        [
            [
                f"{t['requests']:,}",
                _pct(t["errors"], t.get("judged", t["requests"])),
                _pct(t["server_errors"], t["requests"]),
                _pct(t["fallbacks"], t["requests"]),
                f"{t.get('client_errors', 0):,}",
                f"{t.get('refused', 0):,}",
                _ms(t["p50_ms"]),
                _ms(t["p95_ms"]),
                _ms(t["p99_ms"]),
                f"{t['tokens']:,}",
                _usd(t["cost"]),
            ]
        ],
    )
    tables["Performance"] = (
        ["model", "requests", "p50", "p95", "p99", "errors", "client errors", "trend"],
        [
            [
                m["model"],
                f"{m['requests']:,}",
                _ms(m["p50_ms"]),
                _ms(m["p95_ms"]),
                _ms(m["p99_ms"]),
                _pct(m["errors"], m.get("judged", m["requests"])),
                f"{m.get('client_errors', 0):,}",
                _spark([b["p95_ms"] for b in m["buckets"]]),
            ]
            for m in models
        ],
    )
    tables["SLO compliance"] = (
        ["model", "objectives", "target", "compliance", "", "trend"],
        [
            [
                m["model"],
                _objectives(m["slo"]),
                f"{100 * m['slo']['target']:g} %" if m["slo"] else "-",
                *_compliance(m),
                _spark([b["compliance"] for b in m["buckets"]]),
            ]
            for m in models
        ],
    )
    tables["Cost"] = (
        ["model", "requests", "tokens", "cost", "per 1k requests", "trend"],
        [
            [
                m["model"],
                f"{m['requests']:,}",
                f"{m['tokens']:,}",
                _usd(m["cost"]),
                _usd(1000 * m["cost"] / m["requests"]) if m["requests"] else "-",
                _spark([b["cost"] for b in m["buckets"]]),
            ]
            for m in models
        ],
    )
    tables["Fallbacks"] = (
        ["model", "requests", "needed a fallback", "rate", "trend"],
        [
            [
                m["model"],
                f"{m['requests']:,}",
                f"{m['fallbacks']:,}",
                _pct(m["fallbacks"], m["requests"]),
                _spark([b["fallbacks"] for b in m["buckets"]]),
            ]
            for m in models
        ],
    )
    tables["Failed attempts behind fallbacks"] = (
        ["deployment", "outcome", "attempts"],
        [[d["deployment"], d["outcome"], f"{d['count']:,}"] for d in report["failing_deployments"]],
    )
    for title, kind in (("Top consumers: keys", "keys"), ("Top consumers: teams", "teams")):
        tables[title] = (
            ["name", "id", "requests", "errors", "tokens", "cost"],
            [
                [
                    c["name"] or "-",
                    c["id"] or "(none)",
                    f"{c['requests']:,}",
                    f"{c['errors']:,}",
                    f"{c['tokens']:,}",
                    _usd(c["cost"]),
                ]
                for c in report["consumers"][kind]
            ],
        )
    return tables


def _markdown_table(table: Table) -> list[str]:
    head, rows = table
    if not rows:
        return ["_nothing in this period_"]
    cells = [[c.replace("|", "\\|") for c in row] for row in rows]
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(row) + " |" for row in cells),
    ]


def _period(report: Mapping[str, Any]) -> str:
    return f"{report['since'][:16].replace('T', ' ')} – {report['until'][:16].replace('T', ' ')} UTC"


def to_markdown(report: Mapping[str, Any], title: str = "Interlock weekly report") -> str:
    """The report as GitHub-flavoured Markdown."""
    lines = [f"# {title}", "", f"_{_period(report)}_", ""]
    for name, table in _tables(report).items():
        lines += [f"## {name}", "", *_markdown_table(table), ""]
    return "\n".join(lines)


def _html_table(table: Table) -> str:
    head, rows = table
    if not rows:
        return "<p><em>nothing in this period</em></p>"
    if head[-1] == "trend":  # the charts show it
        head, rows = head[:-1], [row[:-1] for row in rows]
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _charts(report: Mapping[str, Any]) -> dict[str, str]:
    models = report["models"]
    labels = [_day(b["start"]) for b in models[0]["buckets"]] if models else []

    def per_model(key: str, scale: float = 1.0) -> list[tuple[str, list[float | None]]]:
        return [
            (m["model"], [None if b[key] is None else b[key] * scale for b in m["buckets"]]) for m in models
        ]

    targets = [
        (m["model"], 100 * m["slo"]["compliance"], 100 * m["slo"]["target"])
        for m in models
        if m["slo"] and m["slo"]["compliance"] is not None
    ]
    return {
        "Performance": line_chart("p95 latency", labels, per_model("p95_ms"), " ms")
        + bar_chart("Requests", labels, per_model("requests")),
        "SLO compliance": hbar_chart("SLO compliance against target", targets) if targets else "",
        "Cost": bar_chart("Spend (USD)", labels, per_model("cost")),
        "Fallbacks": bar_chart("Requests that needed a fallback", labels, per_model("fallbacks")),
    }


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111827;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:4px 10px;border-bottom:1px solid #e5e7eb;
text-align:right}th:first-child,td:first-child{text-align:left}th{background:#f9fafb}
h2{margin-top:2em;border-bottom:2px solid #e5e7eb}svg{display:block;margin:.5em 0}.period{color:#6b7280}
"""


def to_html(report: Mapping[str, Any], title: str = "Interlock weekly report") -> str:
    """The report as one HTML page: tables and inline SVG charts, nothing loaded from anywhere."""
    charts = _charts(report)
    sections = []
    for name, table in _tables(report).items():
        sections.append(f"<h2>{escape(name)}</h2>{charts.get(name, '')}{_html_table(table)}")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="period">{escape(_period(report))}</p>{"".join(sections)}</body></html>\n'
    )


RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {"markdown": to_markdown, "html": to_html}
