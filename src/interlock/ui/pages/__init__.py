"""The dashboard's built-in sections: overview, models and deployments, spend, requests, audit."""

from __future__ import annotations

from interlock.ui.pages.audit import audit_section
from interlock.ui.pages.deployments import deployments_section
from interlock.ui.pages.overview import overview_section
from interlock.ui.pages.requests import requests_section
from interlock.ui.pages.spend import spend_section
from interlock.ui.sections import Section

__all__ = ["BUILTIN_SECTIONS"]

BUILTIN_SECTIONS: tuple[Section, ...] = (
    overview_section,
    deployments_section,
    spend_section,
    requests_section,
    audit_section,
)
