"""The budget engine: which budgets a request draws on, reserve-then-settle, thresholds, periods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from interlock.core.context import Principal
from interlock.governance.budgets import Budget, BudgetEngine, Granted, Refused
from interlock.governance.counters import BudgetUsage, Counters
from interlock.governance.money import micros_to_usd, usd_to_micros
from interlock.governance.periods import period_window
from interlock.governance.scopes import Scope


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()


ALICE = Principal(key_id="k-alice", name="alice", user_id="alice", team_id="search", org_id="acme")
BOB = Principal(key_id="k-bob", name="bob", user_id="bob", team_id="ads", org_id="acme")
JUNE = datetime(2024, 6, 10, 12, tzinfo=UTC)

GLOBAL = Budget("all", Scope("global"), "month", usd_to_micros(1000))
ACME = Budget("acme", Scope("org", "acme"), "month", usd_to_micros(100), action="downgrade")
EVERY_TEAM = Budget("per-team", Scope("team"), "month", usd_to_micros(10))
SEARCH = Budget("search", Scope("team", "search"), "month", usd_to_micros(50))
GPT_SEARCH = Budget("search-gpt", Scope("team", "search", "gpt-4o"), "day", usd_to_micros(5))
EVERY_KEY_DAY = Budget("per-key", Scope("key"), "day", usd_to_micros(2), thresholds=(50, 100))


def engine(counters: Counters, budgets: list[Budget], clock: Clock, **kwargs: object) -> BudgetEngine:
    return BudgetEngine(budgets, counters, reservation_ttl_s=60, clock=clock, **kwargs)  # type: ignore[arg-type]


def names(engine_: BudgetEngine, principal: Principal, model: str) -> set[tuple[str, str]]:
    return {(level.budget.name, level.subject) for level in engine_.levels(principal, model)}


def test_levels_named_rules_replace_wildcards_and_models_narrow() -> None:
    rules = [GLOBAL, ACME, EVERY_TEAM, SEARCH, GPT_SEARCH, EVERY_KEY_DAY]
    e = BudgetEngine(rules, counters=None)  # type: ignore[arg-type]  # levels never count
    assert names(e, ALICE, "gpt-4o") == {
        ("all", "*"),
        ("acme", "acme"),
        ("search", "search"),  # the named rule replaces the * team rule for the search team
        ("search-gpt", "search"),
        ("per-key", "k-alice"),
    }
    assert names(e, BOB, "gpt-4o") == {
        ("all", "*"),
        ("acme", "acme"),
        ("per-team", "ads"),
        ("per-key", "k-bob"),
    }
    assert ("search-gpt", "search") not in names(e, ALICE, "mini")
    loner = Principal(key_id="k-x", name="x")
    assert names(e, loner, "gpt-4o") == {("all", "*"), ("per-key", "k-x")}


async def test_reserve_all_levels_or_none_and_name_the_refuser(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(counters, [GLOBAL, ACME, SEARCH], clock)
    levels = e.levels(ALICE, "gpt-4o")
    first = await e.reserve(levels, usd_to_micros(40))
    assert isinstance(first, Granted)
    refused = await e.reserve(levels, usd_to_micros(20))
    assert refused == Refused("exceeded", SEARCH, "search", usd_to_micros(10), "block")
    usage = await e.usage(levels)
    assert usage == tuple(BudgetUsage(0, usd_to_micros(40)) for _ in levels)


async def test_settle_and_release(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(counters, [SEARCH], clock)
    levels = e.levels(ALICE, "m")
    granted = await e.reserve(levels, usd_to_micros(30))
    assert isinstance(granted, Granted)
    assert await e.settle(granted.reservation, usd_to_micros(12.5)) == ()
    assert await e.usage(levels) == (BudgetUsage(usd_to_micros(12.5), 0),)
    again = await e.reserve(levels, usd_to_micros(30))
    assert isinstance(again, Granted)
    await e.release(again.reservation)
    assert await e.usage(levels) == (BudgetUsage(usd_to_micros(12.5), 0),)


async def test_a_request_that_can_never_fit_is_refused_up_front(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(counters, [ACME, SEARCH], clock)
    refused = await e.reserve(e.levels(ALICE, "m"), usd_to_micros(60))
    assert refused == Refused("never_fits", SEARCH, "search", usd_to_micros(50), "block")
    assert await e.usage(e.levels(ALICE, "m")) == (BudgetUsage(0, 0), BudgetUsage(0, 0))


async def test_per_key_cap_on_one_request(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(
        counters,
        [ACME],
        clock,
        max_request_cost=usd_to_micros(5),
        key_max_request_cost={"k-bob": usd_to_micros(1)},
    )
    levels = e.levels(BOB, "m")
    assert await e.reserve(levels, usd_to_micros(2), key_id="k-bob") == Refused(
        "request_cap", None, "k-bob", usd_to_micros(1), "block"
    )
    assert isinstance(await e.reserve(levels, usd_to_micros(2), key_id="k-alice"), Granted)
    assert isinstance(await e.reserve(levels, usd_to_micros(5), key_id="k-alice"), Granted)
    refused = await e.reserve(levels, usd_to_micros(5.01), key_id="k-alice")
    assert isinstance(refused, Refused) and refused.reason == "request_cap"


async def test_waived_budget_counts_but_does_not_refuse(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(counters, [ACME, GLOBAL], clock)
    levels = e.levels(ALICE, "m")
    assert isinstance(await e.reserve(levels, usd_to_micros(100)), Granted)
    refused = await e.reserve(levels, usd_to_micros(1))
    assert isinstance(refused, Refused) and refused.budget == ACME and refused.action == "downgrade"
    # the caller downgraded and goes on: acme's limit is waived, the global one still holds
    assert isinstance(await e.reserve(levels, usd_to_micros(1), waive={"acme"}), Granted)
    assert await e.usage(levels) == (BudgetUsage(0, usd_to_micros(101)), BudgetUsage(0, usd_to_micros(101)))


async def test_thresholds_fire_once_per_period_and_reset_with_it(counters: Counters) -> None:
    clock = Clock(datetime(2024, 6, 10, 23, 0, tzinfo=UTC))
    e = engine(counters, [EVERY_KEY_DAY], clock)
    levels = e.levels(ALICE, "m")

    async def spend(usd: float, waive: tuple[str, ...] = ()) -> list[int]:
        granted = await e.reserve(levels, usd_to_micros(usd), waive=waive)
        assert isinstance(granted, Granted)
        return [event.threshold for event in await e.settle(granted.reservation, usd_to_micros(usd))]

    assert await spend(0.9) == []
    assert await spend(0.2) == [50]
    assert await spend(0.5) == []
    assert await spend(0.4) == [100]  # exactly the limit
    assert isinstance(await e.reserve(levels, 1), Refused)
    assert await spend(0.3, waive=("per-key",)) == []  # past 100 % again: no second report
    clock.set(datetime(2024, 6, 11, 0, 0, tzinfo=UTC))  # midnight UTC: a new period
    assert await e.usage(levels) == (BudgetUsage(0, 0),)
    assert await spend(1.0) == [50]


async def test_threshold_event_carries_the_numbers(counters: Counters) -> None:
    clock = Clock(JUNE)
    e = engine(counters, [SEARCH], clock)
    granted = await e.reserve(e.levels(ALICE, "m"), usd_to_micros(40))
    assert isinstance(granted, Granted)
    (event,) = await e.settle(granted.reservation, usd_to_micros(36))
    assert (event.budget, event.subject, event.period, event.threshold) == ("search", "search", "2024-06", 70)
    assert micros_to_usd(event.spent) == 36.0 and micros_to_usd(event.limit) == 50.0


async def test_a_reservation_settles_in_the_period_it_was_made(counters: Counters) -> None:
    clock = Clock(datetime(2024, 6, 30, 23, 59, tzinfo=UTC))
    e = engine(counters, [SEARCH], clock)
    levels = e.levels(ALICE, "m")
    granted = await e.reserve(levels, usd_to_micros(10))
    assert isinstance(granted, Granted)
    clock.set(datetime(2024, 7, 1, 0, 0, 30, tzinfo=UTC))
    await e.settle(granted.reservation, usd_to_micros(10))
    assert await e.usage(levels) == (BudgetUsage(0, 0),)
    clock.set(datetime(2024, 6, 30, 23, 59, 30, tzinfo=UTC))
    assert await e.usage(levels) == (BudgetUsage(usd_to_micros(10), 0),)


async def test_settle_refuses_negative_spend(counters: Counters) -> None:
    e = engine(counters, [SEARCH], Clock(JUNE))
    granted = await e.reserve(e.levels(ALICE, "m"), 1)
    assert isinstance(granted, Granted)
    with pytest.raises(ValueError, match="negative"):
        await e.settle(granted.reservation, -1)


@pytest.mark.parametrize(
    ("period", "moment", "label", "start", "end"),
    [
        ("day", datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC), "2024-02-29", (2024, 2, 29), (2024, 3, 1)),
        ("week", datetime(2024, 12, 31, 8, tzinfo=UTC), "2025-W01", (2024, 12, 30), (2025, 1, 6)),
        ("week", datetime(2024, 6, 9, 23, 59, tzinfo=UTC), "2024-W23", (2024, 6, 3), (2024, 6, 10)),
        ("month", datetime(2024, 12, 31, 23, tzinfo=UTC), "2024-12", (2024, 12, 1), (2025, 1, 1)),
        ("month", datetime(2024, 2, 1, 0, tzinfo=UTC), "2024-02", (2024, 2, 1), (2024, 3, 1)),
    ],
)
def test_periods_are_calendar_aligned_in_utc(
    period: str, moment: datetime, label: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    window = period_window(period, moment.timestamp())  # type: ignore[arg-type]
    assert window.label == label
    assert window.start_ms == int(datetime(*start, tzinfo=UTC).timestamp() * 1000)
    assert window.end_ms == int(datetime(*end, tzinfo=UTC).timestamp() * 1000)


def test_total_never_resets() -> None:
    assert period_window("total", JUNE.timestamp()) == period_window("total", 4e9)
    assert period_window("total", 0).end_ms is None


@pytest.mark.parametrize(
    ("usd", "micros"),
    [(0.1, 100_000), (0.0000004, 1), (1e9, 10**15), (0, 0), (2.5e-6, 3), (19.99, 19_990_000)],
)
def test_money_is_integer_micro_dollars_rounded_up(usd: float, micros: int) -> None:
    assert usd_to_micros(usd) == micros


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("-inf")])
def test_money_refuses_nonsense(bad: float) -> None:
    with pytest.raises(ValueError, match="cannot be"):
        usd_to_micros(bad)
