"""kill -9 of the services (one at a time, several at once, all at once), of Kafka and of
Postgres, at random moments of a seeded scenario; after each, restart, settle, and the
outcome is exactly what a calm run gives: nothing lost, nothing duplicated.

The seed is printed (`failure seed=…`) and in every assertion message; `FAILURE_SEED=<n>`
replays the victims, the moments and the citizens of a run.
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from .scenario import (
    SERVICES,
    Scenario,
    SimKeeper,
    assert_outcome,
    assert_paid_once,
    check_invariants,
    end_offsets,
    failure_seed,
    kill9,
    restore,
    settle,
    wait_ready,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

SERVICE_KILL_POINTS_MIN = 20
OUTAGE_S = 5.0


def kill_plan(rng: random.Random) -> list[tuple[str, ...]]:
    """Which services die together at each kill: 8 alone, 3 pairs, 3 times all three
    (8 + 6 + 9 = 23 service kill points), in a seeded order."""
    plan: list[tuple[str, ...]] = [(rng.choice(SERVICES),) for _ in range(8)]
    plan += [tuple(rng.sample(SERVICES, 2)) for _ in range(3)]
    plan += [SERVICES for _ in range(3)]
    rng.shuffle(plan)
    return plan


async def _play(
    scenario: Scenario,
    chaos: asyncio.Task[object] | None,
    rounds_min: int,
) -> None:
    """Rounds until the chaos is over and at least `rounds_min` were played."""
    while len(scenario.rounds) < rounds_min or (chaos is not None and not chaos.done()):
        await scenario.run_round()


@pytest.mark.timeout(330)
async def test_kill_9_services_at_random_moments_loses_and_duplicates_nothing(
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    failure_http: httpx.AsyncClient,
    failure_sim_url: str,
    failure_sim: SimKeeper,
) -> None:
    """Rounds of post → apply ×4 → withdraw run while 14 seeded kill moments take down one
    service, two, or all three with SIGKILL (23 service kill points), each restarted at
    once; afterwards every application has exactly one decision everywhere, rosters,
    reservations and the ledger match, and no event or notification is doubled."""
    seed = failure_seed()
    rng = random.Random(seed)
    await wait_ready(failure_http, stack_env)
    since = await end_offsets(kafka_bootstrap, "matcher.bookings.v1")
    scenario = Scenario(stack_env, failure_http, random.Random(rng.getrandbits(64)), f"k{seed}")
    await scenario.setup()
    plan = kill_plan(rng)
    kills: list[str] = []
    began = time.monotonic()

    async def chaos() -> None:
        for victims in plan:
            await asyncio.sleep(rng.uniform(0.05, 1.5))
            for victim in victims:
                await kill9(victim, stack_env)
                kills.append(victim)
            print(
                f"failure seed={seed}: kill -9 {'+'.join(victims)} at round {len(scenario.rounds)}"
            )
            await restore(failure_http, stack_env)

    try:
        task = asyncio.create_task(chaos())
        await asyncio.gather(_play(scenario, task, rounds_min=3), task)
    finally:
        await restore(failure_http, stack_env)
    chaos_s = time.monotonic() - began
    settle_s = await settle(
        admin_dsn, kafka_bootstrap, scenario.posting_ids, seed=seed, sim=failure_sim
    )
    figures = await assert_outcome(
        scenario, admin_dsn, kafka_bootstrap, since, failure_sim_url, seed=seed
    )
    report = await check_invariants(admin_dsn, kafka_bootstrap, scenario.posting_ids)
    assert report.ok, f"invariants (seed={seed}): {report.render()}"
    print(
        f"failure seed={seed}: {len(kills)} service kill points {sorted(set(kills))},"
        f" chaos {chaos_s:.0f} s, settled in {settle_s:.1f} s, {figures}"
    )
    assert len(kills) >= SERVICE_KILL_POINTS_MIN, kills
    assert set(kills) == set(SERVICES), kills


@pytest.mark.parametrize("component", ["kafka", "postgres"])
@pytest.mark.timeout(240)
async def test_infrastructure_down_for_a_while_mid_scenario(
    component: str,
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    failure_http: httpx.AsyncClient,
    failure_sim_url: str,
    failure_sim: SimKeeper,
) -> None:
    """Kafka (or Postgres) is killed at a seeded moment of a round and stays down 5 s
    while the facility and the partner keep retrying; once it is back every service
    recovers by itself and the outcome equals a calm run's."""
    seed = failure_seed()
    rng = random.Random(seed)
    await wait_ready(failure_http, stack_env)
    since = await end_offsets(kafka_bootstrap, "matcher.bookings.v1")
    scenario = Scenario(
        stack_env, failure_http, random.Random(rng.getrandbits(64)), f"{component[0]}{seed}"
    )
    await scenario.setup()

    async def outage() -> None:
        await asyncio.sleep(rng.uniform(0.05, 1.0))
        await kill9(component, stack_env)
        print(f"failure seed={seed}: kill -9 {component} at round {len(scenario.rounds)}")
        await asyncio.sleep(OUTAGE_S)
        await restore(failure_http, stack_env)

    try:
        task = asyncio.create_task(outage())
        await asyncio.gather(_play(scenario, task, rounds_min=2), task)
    finally:
        await restore(failure_http, stack_env)
    settle_s = await settle(
        admin_dsn, kafka_bootstrap, scenario.posting_ids, seed=seed, sim=failure_sim
    )
    figures = await assert_outcome(
        scenario, admin_dsn, kafka_bootstrap, since, failure_sim_url, seed=seed
    )
    report = await check_invariants(admin_dsn, kafka_bootstrap, scenario.posting_ids)
    assert report.ok, f"invariants (seed={seed}): {report.render()}"
    print(
        f"failure seed={seed}: {component} down {OUTAGE_S} s; settled in {settle_s:.1f} s, {figures}"
    )


@pytest.mark.timeout(240)
async def test_attendance_through_kills_is_paid_exactly_once(
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    failure_http: httpx.AsyncClient,
    failure_sim_url: str,
    failure_sim: SimKeeper,
) -> None:
    """A shift about to start gets two confirmed citizens, the shared clock moves past its
    end, and the facility records each attendance; right after each record (after a seeded
    pause of up to 0.3 s) the allowance, then the registry with it, is killed -9 and
    restarted: each attended booking ends with exactly one payout line of the full rate,
    in balanced ledger transactions, and the invariant checker agrees."""
    seed = failure_seed()
    rng = random.Random(seed)
    await wait_ready(failure_http, stack_env)
    scenario = Scenario(stack_env, failure_http, random.Random(rng.getrandbits(64)), f"a{seed}")
    await scenario.setup()
    victims = [("allowance",), ("registry", "allowance")]
    kills: list[str] = []

    async def kill(step: str) -> None:
        await asyncio.sleep(rng.uniform(0.0, 0.3))
        for victim in victims[0] if not kills else victims[1]:
            await kill9(victim, stack_env)
            kills.append(victim)
        print(f"failure seed={seed}: kill -9 after {step}")
        await restore(failure_http, stack_env)

    try:
        await scenario.run_attended_round(kill)
    finally:
        await restore(failure_http, stack_env)
    ids = [r.posting_id for r in scenario.attended]
    await settle(admin_dsn, kafka_bootstrap, ids, seed=seed, sim=failure_sim)
    figures = await assert_paid_once(scenario, admin_dsn, seed=seed)
    report = await check_invariants(admin_dsn, kafka_bootstrap, ids)
    assert report.ok, f"invariants (seed={seed}): {report.render()}"
    assert kills == ["allowance", "registry", "allowance"], kills
    print(f"failure seed={seed}: attendance through {len(kills)} kills: {figures}")
