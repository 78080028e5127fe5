"""What a request may cost at most, before it runs: the amount budgets reserve and limits count.

- **Prompt tokens**: the prompt's characters / 2, plus 4 per message and 16 for the chat template —
  about twice what tokenizers give for English (about 4 characters a token), so that the reservation
  is not short: a budget holds exactly only when reservations cover what requests really cost
  (scripts with many tokens per character, such as CJK, can still exceed it; the settlement then
  records the real cost, and the budget passes its limit by the difference).
- **Output tokens**: what the request asks for at most (``max_completion_tokens``, ``max_tokens``
  or ``max_output_tokens``, times ``n``); when it asks for no bound, what the model's context window
  leaves after the prompt, else ``default_output_tokens``.
- **Prices**: the highest input and output prices among the model's deployments (the router has
  not chosen yet).

The settlement replaces the estimate by the real cost, at the prices of the deployment that
answered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from interlock.governance.money import usd_to_micros
from interlock.routing.balancers.base import prompt_chars
from interlock.routing.snapshot import ModelRoute

__all__ = ["MaxCost", "max_cost"]

_CHARS_PER_TOKEN = 2
_TOKENS_PER_MESSAGE = 4
_TEMPLATE_TOKENS = 16


@dataclass(frozen=True, slots=True)
class MaxCost:
    prompt_tokens: int
    output_tokens: int
    micros: int
    """The most the request may cost, in micro-dollars."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def max_cost(route: ModelRoute | None, body: Mapping[str, Any], default_output_tokens: int) -> MaxCost:
    messages = body.get("messages")
    count = len(messages) if isinstance(messages, list) else 1
    prompt = math.ceil(prompt_chars(body) / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE * count + _TEMPLATE_TOKENS
    if route is not None and route.kind == "embeddings":
        output = 0
    else:
        output = _output_bound(body, route, prompt, default_output_tokens)
    if route is None or not route.deployments:
        return MaxCost(prompt, output, 0)
    price_in = max(d.price_input for d in route.deployments)
    price_out = max(d.price_output for d in route.deployments)
    usd = (prompt * price_in + output * price_out) / 1_000_000
    return MaxCost(prompt, output, usd_to_micros(usd))


def _output_bound(body: Mapping[str, Any], route: ModelRoute | None, prompt: int, default: int) -> int:
    asked = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    choices = body.get("n")
    n = choices if isinstance(choices, int) and not isinstance(choices, bool) and choices > 0 else 1
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return asked * n
    window = route.context_window if route is not None else None
    if window:
        return max(0, window - prompt) * n
    return default * n
