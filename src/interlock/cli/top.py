"""``interlock top``: a live view of a running gateway for operators who live in a shell.

Per model: requests per second, error share (failures of the gateway or its backends among the
requests they could hit), the callers' own 4xx and the gateway's refusals (shares of all requests),
latency and TTFT percentiles, SLO compliance, tokens per second and spend; per deployment: breaker
state, in-flight, concurrency limit, error rate and TTFT. Rates are differences of ``/metrics``
counters between two polls; percentiles and compliance are the SLO tracker's rolling 5 minutes
(``/admin/slo``). ``--once`` prints one frame (two polls ``--interval`` apart) and exits, for
scripts and tests.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from interlock.cli.admin_client import Gateway, MasterKey

__all__ = ["Sample", "poll", "register", "render"]

_STATE_STYLES = {
    "closed": "green",
    "half_open": "yellow",
    "open": "red",
    "disabled": "dim",
    "unhealthy": "red",
}
Samples = dict[str, list[tuple[dict[str, str], float]]]


class Unreachable(Exception):
    """The gateway did not answer (or refused)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One poll of the gateway."""

    at: float
    metrics: Samples
    slo: list[dict[str, Any]]
    deployments: list[dict[str, Any]]

    def total(self, name: str, **labels: str) -> float:
        return sum(
            v for found, v in self.metrics.get(name, []) if all(found.get(k) == x for k, x in labels.items())
        )


def _get(url: str, master_key: str | None) -> bytes:
    headers = {"Authorization": f"Bearer {master_key}"} if master_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        exc.close()
        raise Unreachable(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


def poll(gateway: str, master_key: str) -> Sample:
    """Read ``/metrics``, ``/admin/slo`` and ``/admin/deployments`` once."""
    base = gateway.rstrip("/")
    metrics: Samples = {}
    for family in text_string_to_metric_families(_get(base + "/metrics", None).decode()):
        for sample in family.samples:
            metrics.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    slo = json.loads(_get(base + "/admin/slo", master_key))["data"]
    deployments = json.loads(_get(base + "/admin/deployments", master_key))["data"]
    return Sample(time.monotonic(), metrics, slo, deployments)


def _rate(now: Sample, before: Sample | None, name: str, **labels: str) -> float | None:
    if before is None or now.at <= before.at:
        return None
    return max(0.0, now.total(name, **labels) - before.total(name, **labels)) / (now.at - before.at)


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else (f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms")


def _by_outcome(now: Sample, before: Sample | None, model: str) -> dict[str, float]:
    """Requests of ``model`` per outcome class: over the last interval, or since start when idle."""
    name = "interlock_requests_total"
    classes = ("ok", "client_error", "refused", "upstream_error", "gateway_error", "cancelled")
    recent = {c: _rate(now, before, name, model=model, outcome=c) or 0.0 for c in classes}
    if sum(recent.values()) > 0:
        return recent
    return {c: now.total(name, model=model, outcome=c) for c in classes}


def _shares(now: Sample, before: Sample | None, model: str) -> dict[str, float | None]:
    """The error share (failures among answers and failures) and the shares of all requests that
    were the callers' own 4xx or the gateway's refusals."""
    counts = _by_outcome(now, before, model)
    requests = sum(counts.values())
    failures = counts["upstream_error"] + counts["gateway_error"]
    judged = failures + counts["ok"]
    return {
        "errors": failures / judged if judged else None,
        "client_error": counts["client_error"] / requests if requests else None,
        "refused": counts["refused"] / requests if requests else None,
    }


def _share(value: float | None, style: str) -> Text:
    return Text(_num(None if value is None else value * 100, "{:.1f}%"), style=style if value else "")


def _models(now: Sample, before: Sample | None) -> Table:
    table = Table(
        "model",
        "req/s",
        "requests",
        "errors",
        "caller 4xx",
        "refused",
        "p50",
        "p95",
        "ttft p50",
        "SLO",
        "tok/s",
        "spend $",
        "$/h",
        title="models",
        title_justify="left",
    )
    for report in now.slo:
        model = report["model"]
        total = now.total("interlock_requests_total", model=model)
        recent = _rate(now, before, "interlock_requests_total", model=model)
        shares = _shares(now, before, model)
        tokens = _rate(now, before, "interlock_tokens_total", model=model, type="prompt")
        out_tokens = _rate(now, before, "interlock_tokens_total", model=model, type="completion")
        spend_rate = _rate(now, before, "interlock_cost_usd_total", model=model)
        compliance, target = report["compliance"], report["target"]
        slo = (
            Text("-")
            if compliance is None
            else Text(f"{compliance * 100:.1f}%", style="green" if compliance >= target else "red")
        )
        table.add_row(
            model,
            _num(recent),
            f"{int(total):,}",
            _share(shares["errors"], "red"),
            _share(shares["client_error"], "yellow"),
            _share(shares["refused"], "yellow"),
            _ms(report["e2e_ms"]["p50"]),
            _ms(report["e2e_ms"]["p95"]),
            _ms(report["ttft_ms"]["p50"]),
            slo,
            _num(None if tokens is None else tokens + (out_tokens or 0.0), "{:.0f}"),
            f"{now.total('interlock_cost_usd_total', model=model):.4f}",
            _num(None if spend_rate is None else spend_rate * 3600, "{:.2f}"),
        )
    return table


def _deployments(now: Sample) -> Table:
    table = Table(
        "deployment",
        "state",
        "in flight",
        "limit",
        "queued",
        "errors",
        "ttft ewma",
        title="deployments",
        title_justify="left",
    )
    for d in now.deployments:
        state = d["state"]
        table.add_row(
            d["id"],
            Text(state, style=_STATE_STYLES.get(state, "")),
            str(d["in_flight"]),
            str(d["concurrency_limit"]),
            str(d["queued"]),
            f"{d['error_rate'] * 100:.1f}%",
            _ms(d["ewma_ttft_ms"]),
        )
    return table


def render(now: Sample | None, before: Sample | None, gateway: str, problem: str | None = None) -> Group:
    """One frame: the models table, the deployments table and a status line."""
    stamp = datetime.now().strftime("%H:%M:%S")
    header = Text.assemble(("interlock top", "bold"), f"  {gateway}  {stamp}")
    if problem:
        header.append(f"  {problem}", style="red")
    if now is None:
        return Group(header)
    return Group(header, _models(now, before), _deployments(now))


def top(
    gateway: Gateway = "http://127.0.0.1:4000",
    master_key: MasterKey = "",
    interval: Annotated[float, typer.Option(help="Seconds between polls.", min=0.05)] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
) -> None:
    """A live view: models (requests/s, errors, latency, SLO, tokens, spend) and deployments."""
    console = Console() if not once else Console(width=max(Console().width, 160))
    try:
        before = poll(gateway, master_key)
    except Unreachable as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if once:
        time.sleep(interval)
        console.print(render(poll(gateway, master_key), before, gateway))
        return
    _live(console, gateway, master_key, interval, before)


def _live(console: Console, gateway: str, master_key: str, interval: float, before: Sample) -> None:
    now: Sample | None = before
    with Live(render(before, None, gateway), console=console, refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                try:
                    latest = poll(gateway, master_key)
                except Unreachable as exc:  # keep the last frame up and keep trying
                    live.update(render(now, None, gateway, str(exc)))
                    continue
                live.update(render(latest, now, gateway))
                now = latest
        except KeyboardInterrupt:
            return


def register(app: typer.Typer) -> None:
    app.command("top")(top)
