"""Chaos scenarios: what traffic to drive, which faults to inject when, and (optionally) the fleet to
run it on. The schema is here; reading files, and messages that name the key and line of each
problem, are in :mod:`interlock.chaos.loading`.

::

    name: kill-one-deployment
    model: chat
    rps: 50
    phases: {baseline: 3s, fault: 6s, recovery: 3s}
    actions:
      - {at: fault, do: kill, sim: a}
      - {at: recovery+0.5, do: restart, sim: a}
    fleet:
      simulators: {a: {}, b: {}}

``at`` is seconds from the start of the baseline, a phase name (its start), or ``phase+seconds``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from interlock.config.schema import ModelSpec, ProviderSpec
from interlock.sim import SimConfig
from interlock.sim.faults import FaultError, parse_faults

__all__ = [
    "ACTION_KINDS",
    "Action",
    "FleetSpec",
    "MeasureSpec",
    "Phases",
    "Scenario",
    "SimSpec",
]

PHASES = ("baseline", "fault", "recovery")
ACTION_KINDS = ("fault", "clear", "kill", "stop", "resume", "restart", "disable", "enable")
DISRUPTIVE = frozenset({"fault", "kill", "stop", "disable"})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")
_AT = re.compile(r"^\s*(baseline|fault|recovery)\s*(?:\+\s*(\d+(?:\.\d*)?|\.\d+)\s*s?)?\s*$")
_SIM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def _duration(value: object) -> object:
    """``5``, ``2.5``, ``"5s"``, ``"500ms"``, ``"1m"`` → seconds; anything else is left to pydantic."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"not a duration: {value!r} (write seconds, or e.g. '5s', '500ms', '1m')")
        unit = {"ms": 0.001, "s": 1.0, "m": 60.0}[match.group(2) or "s"]
        return float(match.group(1)) * unit
    return value


Seconds = Annotated[float, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Phases(_Strict):
    """How long each phase lasts. Faults usually start with ``fault`` and end with ``recovery``."""

    baseline: Seconds = Field(ge=0)
    fault: Seconds = Field(gt=0)
    recovery: Seconds = Field(0.0, ge=0)

    @property
    def total_s(self) -> float:
        return self.baseline + self.fault + self.recovery

    def start_of(self, phase: str) -> float:
        return {"baseline": 0.0, "fault": self.baseline, "recovery": self.baseline + self.fault}[phase]

    def bounds(self) -> tuple[tuple[str, float, float], ...]:
        """``(name, start, end)`` of each phase, in order."""
        return tuple(
            (name, self.start_of(name), self.start_of(name) + getattr(self, name)) for name in PHASES
        )


class _Action(_Strict):
    at: float | str
    """Seconds from the start of the baseline, a phase name, or ``phase+seconds``."""

    def when(self, phases: Phases) -> float:
        """When this action runs, in seconds from the start of the baseline."""
        if isinstance(self.at, int | float):
            return float(self.at)
        try:
            return float(self.at)
        except ValueError:
            pass
        match = _AT.match(self.at)
        if match is None:
            raise ValueError(
                f"'at' must be seconds or a phase ({', '.join(PHASES)}) with an optional '+seconds', "
                f"got {self.at!r}"
            )
        return phases.start_of(match.group(1)) + float(match.group(2) or 0)

    @property
    def sim_ref(self) -> str | None:
        return getattr(self, "sim", None)

    @property
    def deployment_ref(self) -> str | None:
        return getattr(self, "deployment", None)


class FaultAction(_Action):
    """``POST /sim/faults`` to a simulator (a fleet name, or a URL)."""

    do: Literal["fault"]
    sim: str
    faults: dict[str, Any]
    deployment: str | None = None
    """The deployment the simulator serves (an id); in a fleet it is found from the simulator."""

    @model_validator(mode="after")
    def _valid_faults(self) -> FaultAction:
        try:
            parse_faults(self.faults)
        except FaultError as exc:
            raise ValueError(f"faults: {exc}") from None
        if not any(v not in (None, False, 0) for v in self.faults.values()):
            raise ValueError("faults: set at least one fault (e.g. {error_rate: 1})")
        return self


class ClearAction(_Action):
    """``DELETE /sim/faults``."""

    do: Literal["clear"]
    sim: str
    deployment: str | None = None


class KillAction(_Action):
    """SIGKILL a fleet simulator: its deployment drops dead, connections reset."""

    do: Literal["kill"]
    sim: str


class StopAction(_Action):
    """SIGSTOP a fleet simulator: it hangs — connections are accepted by the kernel, nothing answers."""

    do: Literal["stop"]
    sim: str


class ResumeAction(_Action):
    """SIGCONT a stopped fleet simulator."""

    do: Literal["resume"]
    sim: str


class RestartAction(_Action):
    """Start a killed fleet simulator again on the same port."""

    do: Literal["restart"]
    sim: str


class DisableAction(_Action):
    """``POST /admin/deployments/{id}/disable`` (an id, or a fleet simulator's name)."""

    do: Literal["disable"]
    deployment: str


class EnableAction(_Action):
    do: Literal["enable"]
    deployment: str


Action = Annotated[
    FaultAction
    | ClearAction
    | KillAction
    | StopAction
    | ResumeAction
    | RestartAction
    | DisableAction
    | EnableAction,
    Field(discriminator="do"),
]


class SimSpec(_Strict):
    """A simulator the drill starts itself (a subset of :class:`~interlock.sim.SimConfig`)."""

    ttft_ms: float = Field(20.0, ge=0)
    tpot_ms: float = Field(2.0, ge=0)
    prefill_ms_per_token: float = Field(0.0, ge=0)
    batch_penalty: float = Field(0.02, ge=0)
    max_concurrency: int = Field(64, ge=1)
    max_queue: int | None = Field(None, ge=0)
    output_tokens_min: int = Field(16, ge=1)
    output_tokens_max: int = Field(64, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _valid(self) -> SimSpec:
        self.to_config("check")  # SimConfig's own checks (output_tokens_min <= output_tokens_max …)
        return self

    def to_config(self, name: str) -> SimConfig:
        return SimConfig(name=name, **self.model_dump())


class FleetSpec(_Strict):
    """Simulators and a gateway the drill starts itself (``--fleet``): one provider per simulator,
    and the scenario's model with one deployment on each."""

    simulators: dict[str, SimSpec] = Field(min_length=1)
    upstream_model: str = "sim-small"
    model: dict[str, Any] = Field(default_factory=dict)
    """Settings of the generated model (``models.<name>`` in docs/config.md), deployments excepted."""
    provider: dict[str, Any] = Field(default_factory=dict)
    """Settings of every generated provider (timeouts …), ``kind`` and ``base_url`` excepted."""

    @model_validator(mode="after")
    def _valid(self) -> FleetSpec:
        for name in self.simulators:
            if not _SIM_NAME.match(name):
                raise ValueError(f"simulators: name {name!r} must be lowercase letters, digits and '-'")
        for key, where in (("deployments", "model"), ("kind", "provider"), ("base_url", "provider")):
            if key in getattr(self, where):
                raise ValueError(f"{where}.{key}: set by the fleet itself; leave it out")
        deployments = [{"provider": "sim", "model": self.upstream_model}]
        for where, schema, extra in (
            ("model", ModelSpec, {"deployments": deployments}),
            ("provider", ProviderSpec, {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}),
        ):
            try:
                schema.model_validate({**getattr(self, where), **extra})
            except ValidationError as exc:
                first = exc.errors()[0]
                path = ".".join(str(p) for p in first["loc"])
                message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
                raise ValueError(f"{where}.{path}: {message}") from None
        return self


class MeasureSpec(_Strict):
    """How the numbers are taken."""

    warmup_s: Seconds = Field(1.0, ge=0)
    """Traffic before the baseline that no number counts (connections open, averages settle)."""
    p99_factor: float = Field(1.5, gt=1)
    """Recovered means p99 back within this multiple of the baseline p99."""
    window_s: Seconds = Field(1.0, gt=0)
    """The sliding window of the p99 (requests by completion time)."""
    step_s: Seconds = Field(0.05, gt=0)
    poll_s: Seconds = Field(0.05, gt=0)
    """How often ``/admin/deployments`` is read for breaker states."""
    quiet_s: Seconds = Field(1.0, gt=0)
    """Without the admin API: detected once client-visible errors and fallbacks pause this long."""


class Scenario(_Strict):
    """One chaos drill."""

    name: str = Field(min_length=1)
    description: str = ""
    model: str = "chat"
    rps: float = Field(gt=0, le=5000)
    stream: bool | Literal["mixed"] = False
    """Stream every request, none, or ``mixed``: every other request streams."""
    max_tokens: int | list[int] = Field(16)
    """Tokens to ask for; a list is used in rotation (short and long answers mixed)."""
    request_timeout_s: Seconds = Field(30.0, gt=0)
    phases: Phases
    actions: list[Action] = Field(default_factory=list)
    fleet: FleetSpec | None = None
    measure: MeasureSpec = Field(default_factory=MeasureSpec)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        problems = [p for i, action in enumerate(self.actions) for p in self._check(i, action)]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check(self, index: int, action: _Action) -> list[str]:
        where = f"actions[{index}]"
        try:
            at = action.when(self.phases)
        except ValueError as exc:
            return [f"{where}.at: {exc}"]
        problems = []
        if not 0 <= at < self.phases.total_s:
            problems.append(f"{where}.at: {at:g} s is outside the drill (0 to {self.phases.total_s:g} s)")
        fleet = sorted(self.fleet.simulators) if self.fleet else []
        sim = action.sim_ref
        if isinstance(action, KillAction | StopAction | ResumeAction | RestartAction) and sim not in fleet:
            problems.append(
                f"{where}.sim: '{action.do}' works on a simulator of the scenario's fleet; "
                + (f"'{sim}' is not one (known: {', '.join(fleet)})" if fleet else "there is no 'fleet'")
            )
        elif (
            sim is not None
            and not sim.startswith(("http://", "https://"))
            and self.fleet
            and sim not in fleet
        ):
            problems.append(
                f"{where}.sim: '{sim}' is neither a fleet simulator ({', '.join(fleet)}) nor a URL"
            )
        if isinstance(action, RestartAction) and not any(
            isinstance(a, KillAction) and a.sim == sim and a.when(self.phases) < at for a in self._timed()
        ):
            problems.append(f"{where}: restart of '{sim}' with no kill of it before")
        return problems

    def _timed(self) -> list[Action]:
        timed: list[Action] = []
        for action in self.actions:
            try:
                action.when(self.phases)
            except ValueError:
                continue
            timed.append(action)
        return timed

    def schedule(self) -> list[tuple[float, Action]]:
        """Every action with its time, in order of time (ties keep file order)."""
        return sorted(((a.when(self.phases), a) for a in self.actions), key=lambda pair: pair[0])

    def with_overrides(self, **changes: Any) -> Scenario:
        """A copy with some top-level settings replaced (``rps``, ``stream`` …), validated again."""
        return Scenario.model_validate({**self.model_dump(), **changes})
