"""Chaos drills: drive traffic at a gateway, break its backends on a schedule, and measure what the
clients saw — error rate, fallback rate, latency before, during and after, time to detect and time
to recover.

Run them with ``interlock chaos SCENARIO``; scenarios are YAML files (:func:`load_scenario`), and
the shipped ones are listed by :func:`shipped_scenarios`. ``--fleet`` (:func:`run_fleet_drill`)
starts simulators and a gateway from the scenario itself, so a drill needs nothing else running.
"""

from __future__ import annotations

from interlock.chaos.drill import DrillError, DrillTarget, run_drill, run_drill_sync, run_fleet_drill
from interlock.chaos.fleet import Fleet, FleetError
from interlock.chaos.loading import ScenarioError, load_scenario, parse_scenario, shipped_scenarios
from interlock.chaos.measure import PhaseStats, percentile, settle_after
from interlock.chaos.report import DrillReport, render
from interlock.chaos.scenario import Scenario
from interlock.chaos.traffic import RequestRecord, TrafficPlan, drive

__all__ = [
    "DrillError",
    "DrillReport",
    "DrillTarget",
    "Fleet",
    "FleetError",
    "PhaseStats",
    "RequestRecord",
    "Scenario",
    "ScenarioError",
    "TrafficPlan",
    "drive",
    "load_scenario",
    "parse_scenario",
    "percentile",
    "render",
    "run_drill",
    "run_drill_sync",
    "run_fleet_drill",
    "settle_after",
    "shipped_scenarios",
]
