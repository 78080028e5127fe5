"""Alerts by webhook: SLO burn, fallback-rate spikes and error-rate spikes, per model.

A background task wakes every ``interval_s``, reads what the telemetry already counts — the
cumulative Prometheus counters (requests, 5xx, fallbacks) and the SLO tracker's 5-minute window —
and evaluates three rules for every configured model:

``slo_burn``
    The error budget (``1 − slo.target``) burns ``slo_burn_rate`` times faster than sustainable over
    both the short window (the SLO tracker's 5 minutes) and the long one (``slo_long_window_s``, an
    hour by default): the multiwindow rule of the SRE workbook, which fires fast on a real outage and
    stays quiet on a blip. The long window is the time-weighted mean of the short-window samples.
``error_rate``
    At least ``error_rate`` of the requests of the last ``window_s`` failed with a 5xx.
``fallback_rate``
    At least ``fallback_rate`` of them needed more than one attempt.

A window with fewer than ``min_requests`` requests never fires. A firing alert is POSTed as JSON to
every webhook at once, repeated at most every ``cooldown_s`` while it lasts, and followed by one
``resolved`` message. Sending never touches the request path; a failed POST is logged (with the
webhook's host only: its URL may hold a token) and counted in ``interlock_alert_notifications_total``.
Each worker process evaluates its own traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge

from interlock.config.schema import AlertsSpec, WebhookSpec, revealed_headers

if TYPE_CHECKING:
    from interlock.telemetry.recorder import Telemetry

__all__ = ["Alert", "AlertMonitor", "ModelCounts", "telemetry_counts"]

log = logging.getLogger("interlock.alerts")

Rule = Literal["slo_burn", "error_rate", "fallback_rate"]
_SEVERITY: dict[Rule, str] = {"slo_burn": "critical", "error_rate": "critical", "fallback_rate": "warning"}


@dataclass(frozen=True, slots=True)
class ModelCounts:
    """One model's numbers at one moment: cumulative counters, and the SLO tracker's window."""

    requests: int
    server_errors: int
    fallbacks: int
    slo_requests: int
    slo_met: int
    slo_target: float
    slo_window_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification."""

    rule: Rule
    model: str
    status: Literal["firing", "resolved"]
    value: float
    threshold: float
    window_s: float
    requests: int
    details: Mapping[str, float]

    def payload(self) -> dict[str, Any]:
        """The JSON body POSTed to webhooks (``text`` makes it a valid Slack message too)."""
        return {
            "source": "interlock",
            "status": self.status,
            "alert": self.rule,
            "severity": _SEVERITY[self.rule],
            "model": self.model,
            "value": round(self.value, 4),
            "threshold": self.threshold,
            "window_s": self.window_s,
            "requests": self.requests,
            "details": dict(self.details),
            "summary": self.summary(),
            "text": f"[interlock] {self.status.upper()} {self.rule} on {self.model}: {self.summary()}",
            "at": datetime.now(UTC).isoformat(),
        }

    def summary(self) -> str:
        minutes = f"{self.window_s / 60:g} min"
        if self.rule == "slo_burn":
            return (
                f"error budget burning {self.value:.1f}x too fast over {minutes} "
                f"(long window {self.details.get('long_burn', 0.0):.1f}x; threshold {self.threshold:g}x)"
            )
        what = "failed with a 5xx" if self.rule == "error_rate" else "needed a fallback"
        return (
            f"{self.value * 100:.1f} % of {self.requests} requests {what} in the last {minutes} "
            f"(threshold {self.threshold * 100:g} %)"
        )


def telemetry_counts(telemetry: Telemetry) -> dict[str, ModelCounts]:
    """Read :class:`ModelCounts` for every model from a gateway's telemetry (off the request path)."""
    requests: dict[str, int] = {}
    errors: dict[str, int] = {}
    for family in telemetry.metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                model = sample.labels["model"]
                requests[model] = requests.get(model, 0) + int(sample.value)
                if sample.labels["status_class"] == "5xx":
                    errors[model] = errors.get(model, 0) + int(sample.value)
    fallbacks = {
        s.labels["model"]: int(s.value)
        for family in telemetry.metrics.fallbacks.collect()
        for s in family.samples
        if s.name.endswith("_total")
    }
    counts = {}
    for report in telemetry.slo_reports():
        model = str(report["model"])
        counts[model] = ModelCounts(
            requests=requests.get(model, 0),
            server_errors=errors.get(model, 0),
            fallbacks=fallbacks.get(model, 0),
            slo_requests=_int(report["requests"]),
            slo_met=_int(report["met"]),
            slo_target=float(str(report["target"])),
            slo_window_s=float(str(report["window_s"])),
        )
    return counts


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    counts: ModelCounts


@dataclass(slots=True)
class _State:
    firing: bool = False
    notified: bool = False
    last_sent: float | None = None


class AlertMonitor:
    """Evaluate the rules every ``spec.interval_s`` and notify ``spec.webhooks``."""

    def __init__(
        self,
        spec: AlertsSpec,
        source: Callable[[], Mapping[str, ModelCounts]],
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._source = source
        self._clock = clock
        self._history: dict[str, deque[_Sample]] = {}
        self._states: dict[tuple[Rule, str], _State] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0
        self._notifications = Counter(
            "interlock_alert_notifications",
            "Alert webhook deliveries by rule and outcome (sent, failed).",
            ["alert", "outcome"],
            registry=registry,
        )
        self._firing = Gauge(
            "interlock_alert_firing", "1 while an alert fires.", ["alert", "model"], registry=registry
        )

    def start(self) -> None:
        """Start evaluating (only when a webhook is configured)."""
        if self.spec.webhooks and self._task is None:
            self._task = asyncio.create_task(self._run(), name="interlock-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:  # the first sample is the baseline later windows are measured from
            try:
                await self.notify(self.evaluate())
            except Exception:
                log.exception("alert evaluation failed; trying again next interval")
            await asyncio.sleep(self.spec.interval_s)

    def evaluate(self) -> list[Alert]:
        """Take a sample and return the notifications it calls for."""
        now = self._clock()
        alerts: list[Alert] = []
        for model, counts in self._source().items():
            history = self._history.setdefault(model, deque())
            history.append(_Sample(now, counts))
            horizon = now - max(self.spec.slo_long_window_s, self.spec.window_s) - self.spec.interval_s
            while len(history) > 2 and history[1].at <= horizon:
                history.popleft()
            for rule, measured in self._measure(history).items():
                alert = self._transition(rule, model, now, measured)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _measure(self, history: deque[_Sample]) -> dict[Rule, tuple[bool, Alert]]:
        spec = self.spec
        now, latest = history[-1].at, history[-1].counts
        found: dict[Rule, tuple[bool, Alert]] = {}
        if spec.slo_burn_rate is not None:
            short = _burn(latest.slo_requests - latest.slo_met, latest.slo_requests, latest.slo_target)
            long = self._long_burn(history, now - spec.slo_long_window_s)
            firing = (
                latest.slo_requests >= spec.min_requests
                and short >= spec.slo_burn_rate
                and long >= spec.slo_burn_rate
            )
            details = {"long_burn": round(long, 3), "long_window_s": spec.slo_long_window_s}
            details["compliance"] = (
                round(latest.slo_met / latest.slo_requests, 4) if latest.slo_requests else 1.0
            )
            details["target"] = latest.slo_target
            alert = Alert(
                "slo_burn",
                "",
                "firing",
                short,
                spec.slo_burn_rate,
                latest.slo_window_s,
                latest.slo_requests,
                details,
            )
            found["slo_burn"] = (firing, alert)
        base = _at_or_before(history, now - spec.window_s).counts
        requests = latest.requests - base.requests
        rates: list[tuple[Rule, float | None, int]] = [
            ("error_rate", spec.error_rate, latest.server_errors - base.server_errors),
            ("fallback_rate", spec.fallback_rate, latest.fallbacks - base.fallbacks),
        ]
        for rule, threshold, count in rates:
            if threshold is None:
                continue
            rate = count / requests if requests > 0 else 0.0
            firing = requests >= spec.min_requests and rate >= threshold
            alert = Alert(rule, "", "firing", rate, threshold, spec.window_s, requests, {"count": count})
            found[rule] = (firing, alert)
        return found

    @staticmethod
    def _long_burn(history: deque[_Sample], since: float) -> float:
        """Time-weighted mean of the short-window samples since ``since``: each request is seen in
        about the same number of samples, so the ratio of the weighted sums is the long window's."""
        bad = total = 0.0
        previous: float | None = None
        for sample in history:
            weight = (sample.at - previous) if previous is not None else 0.0
            previous = sample.at
            if sample.at < since:
                continue
            weight = weight or 1.0
            c = sample.counts
            bad += (c.slo_requests - c.slo_met) * weight
            total += c.slo_requests * weight
        return _burn(bad, total, history[-1].counts.slo_target)

    def _transition(self, rule: Rule, model: str, now: float, measured: tuple[bool, Alert]) -> Alert | None:
        firing, template = measured
        state = self._states.setdefault((rule, model), _State())
        cooled = state.last_sent is None or now - state.last_sent >= self.spec.cooldown_s
        self._firing.labels(rule, model).set(1.0 if firing else 0.0)
        if firing:
            first = not state.firing
            state.firing = True
            if cooled:
                state.notified = True
                state.last_sent = now
                return _with(template, model, "firing")
            if first:
                state.notified = False
            return None
        if state.firing:
            state.firing = False
            if state.notified:
                state.notified = False
                return _with(template, model, "resolved")
        return None

    async def notify(self, alerts: list[Alert]) -> None:
        """POST each alert to every webhook, concurrently; failures are logged and counted."""
        if not alerts or not self.spec.webhooks:
            return
        # trust_env: webhooks leave through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY exempts them
        session = self._open_session()
        await asyncio.gather(
            *(self._post(session, hook, alert) for alert in alerts for hook in self.spec.webhooks)
        )

    async def notify_payload(self, rule: str, payload: dict[str, Any]) -> None:
        """POST one event that is not a model alert (a budget threshold, a spend anomaly) to every
        webhook, the same way."""
        if not self.spec.webhooks:
            return
        session = self._open_session()
        await asyncio.gather(*(self._send(session, hook, rule, "", payload) for hook in self.spec.webhooks))

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.spec.timeout_s), trust_env=True
            )
        return self._session

    async def _post(self, session: aiohttp.ClientSession, hook: WebhookSpec, alert: Alert) -> None:
        await self._send(session, hook, alert.rule, alert.model, alert.payload())

    async def _send(
        self,
        session: aiohttp.ClientSession,
        hook: WebhookSpec,
        rule: str,
        model: str,
        payload: dict[str, Any],
    ) -> None:
        headers = {"Content-Type": "application/json", **revealed_headers(hook.headers)}
        url = hook.url.get_secret_value()
        try:
            async with session.post(url, data=orjson.dumps(payload), headers=headers) as resp:
                await resp.read()
                ok = resp.status < 300
                problem = f"status {resp.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ok, problem = False, type(exc).__name__
        if ok:
            self.sent += 1
            self._notifications.labels(rule, "sent").inc()
            return
        self.failed += 1
        self._notifications.labels(rule, "failed").inc()
        where = f" for {model}" if model else ""
        log.warning("alert %s%s not delivered to %s: %s", rule, where, _host(url), problem)


def _burn(bad: float, total: float, target: float) -> float:
    """How many times faster than sustainable the error budget burns."""
    if total <= 0:
        return 0.0
    budget = 1.0 - target
    error_rate = bad / total
    if budget <= 0:
        return float("inf") if error_rate > 0 else 0.0
    return error_rate / budget


def _at_or_before(history: deque[_Sample], when: float) -> _Sample:
    chosen = history[0]
    for sample in history:
        if sample.at > when:
            break
        chosen = sample
    return chosen


def _with(template: Alert, model: str, status: Literal["firing", "resolved"]) -> Alert:
    return Alert(
        template.rule,
        model,
        status,
        template.value,
        template.threshold,
        template.window_s,
        template.requests,
        template.details,
    )


def _host(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"
