"""The routing policy over random coders and streams of cases, and its fairness.

The policy is a pure function (consultant/routing/policy.py), so these need no database:
what holds here holds for every batch the database routing hands it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consultant.codes.specialty import SPECIALTIES
from consultant.routing.policy import (
    GENERALIST,
    Candidate,
    Policy,
    choose,
    family,
    route_stream,
)

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
POLICY = Policy(
    tiers=("specialty", "generalist", "family"), prefer=("on_shift", "load", "last_assigned")
)
NAMES = [*SPECIALTIES, GENERALIST]


@st.composite
def coders(draw: st.DrawFn) -> list[Candidate]:
    count = draw(st.integers(min_value=0, max_value=12))
    pool = []
    for coder_id in draw(
        st.lists(st.integers(1, 500), min_size=count, max_size=count, unique=True)
    ):
        capacity = draw(st.integers(0, 8))
        pool.append(
            Candidate(
                id=coder_id,
                specialties=frozenset(draw(st.lists(st.sampled_from(NAMES), max_size=3))),
                capacity=capacity,
                load=draw(st.integers(0, capacity + 2)),  # above capacity: it was lowered
                on_shift=draw(st.booleans()),
                last_assigned_at=draw(
                    st.none() | st.integers(0, 10_000).map(lambda m: NOW - timedelta(minutes=m))
                ),
                active=draw(st.booleans()) or draw(st.booleans()),
                away=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return pool


cases = st.lists(st.sampled_from(SPECIALTIES), max_size=40)


def simulate(
    pool: list[Candidate], stream: list[str]
) -> list[tuple[str, dict[int, Candidate], int | None]]:
    """Each case with the coders as it found them and whom it went to."""
    chosen = route_stream(pool, stream, POLICY, at=NOW)
    steps = []
    state = {c.id: c for c in pool}
    for specialty, coder_id in zip(stream, chosen, strict=True):
        steps.append((specialty, dict(state), coder_id))
        if coder_id is not None:
            before = state[coder_id]
            state[coder_id] = replace(before, load=before.load + 1, last_assigned_at=NOW)
    return steps


@settings(max_examples=300, deadline=None)
@given(coders(), cases)
def test_no_coder_is_ever_given_a_case_beyond_their_capacity(
    pool: list[Candidate], stream: list[str]
) -> None:
    chosen = route_stream(pool, stream, POLICY, at=NOW)
    for coder in pool:
        given_now = chosen.count(coder.id)
        assert given_now == 0 or coder.load + given_now <= coder.capacity


@settings(max_examples=300, deadline=None)
@given(coders(), cases)
def test_no_case_goes_to_an_away_or_inactive_coder(
    pool: list[Candidate], stream: list[str]
) -> None:
    unavailable = {c.id for c in pool if c.away or not c.active}
    assert not unavailable & set(route_stream(pool, stream, POLICY, at=NOW))


@settings(max_examples=300, deadline=None)
@given(coders(), cases)
def test_a_specialist_gets_the_case_whenever_one_is_eligible(
    pool: list[Candidate], stream: list[str]
) -> None:
    for specialty, state, coder_id in simulate(pool, stream):
        eligible = [c for c in state.values() if c.eligible]
        specialists = [c for c in eligible if specialty in c.specialties]
        if specialists:
            assert coder_id is not None and specialty in state[coder_id].specialties
        elif any(GENERALIST in c.specialties for c in eligible):
            assert coder_id is not None and GENERALIST in state[coder_id].specialties
        elif any(family(s) == family(specialty) for c in eligible for s in c.specialties):
            assert coder_id is not None
        else:
            assert coder_id is None  # nobody fits: the case waits


@settings(max_examples=200, deadline=None)
@given(coders(), cases, st.randoms(use_true_random=False))
def test_the_same_state_always_gives_the_same_choice(
    pool: list[Candidate], stream: list[str], rnd: random.Random
) -> None:
    shuffled = list(pool)
    rnd.shuffle(shuffled)
    assert route_stream(pool, stream, POLICY, at=NOW) == route_stream(
        shuffled, stream, POLICY, at=NOW
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(0, 400))
def test_equal_coders_never_differ_by_more_than_one_case(count: int, cases_routed: int) -> None:
    pool = [
        Candidate(id=i, specialties=frozenset({"radiology"}), capacity=1000, load=0)
        for i in range(1, count + 1)
    ]
    chosen = route_stream(pool, ["radiology"] * cases_routed, POLICY, at=NOW)
    loads = [chosen.count(c.id) for c in pool]
    assert max(loads) - min(loads) <= 1


def test_an_on_shift_coder_comes_before_a_less_loaded_one_off_shift() -> None:
    off = Candidate(id=1, specialties=frozenset({"radiology"}), capacity=10, load=0, on_shift=False)
    on = Candidate(id=2, specialties=frozenset({"radiology"}), capacity=10, load=5, on_shift=True)
    assert choose([off, on], "radiology", POLICY) == on


def test_ties_go_to_the_coder_assigned_longest_ago_then_the_lowest_id() -> None:
    recent = Candidate(
        id=1, specialties=frozenset({"radiology"}), capacity=5, load=1, last_assigned_at=NOW
    )
    earlier = Candidate(
        id=2,
        specialties=frozenset({"radiology"}),
        capacity=5,
        load=1,
        last_assigned_at=NOW - timedelta(hours=1),
    )
    twin = Candidate(
        id=3,
        specialties=frozenset({"radiology"}),
        capacity=5,
        load=1,
        last_assigned_at=NOW - timedelta(hours=1),
    )
    assert choose([recent, twin, earlier], "radiology", POLICY) == earlier


def test_a_surgeon_of_another_kind_takes_a_surgery_case_when_no_specialist_or_generalist_can() -> (
    None
):
    digestive = Candidate(id=1, specialties=frozenset({"surgery-digestive"}), capacity=5, load=0)
    radiology = Candidate(id=2, specialties=frozenset({"radiology"}), capacity=5, load=0)
    assert choose([radiology, digestive], "surgery-musculoskeletal", POLICY) == digestive
    assert choose([radiology], "surgery-musculoskeletal", POLICY) is None
    anyone = Policy(tiers=("specialty", "anyone"), prefer=("load",))
    assert choose([radiology], "surgery-musculoskeletal", anyone) == radiology


def test_a_thousand_cases_among_twenty_equal_coders_leave_loads_within_one() -> None:
    pool = [
        Candidate(id=i, specialties=frozenset({"medicine"}), capacity=60, load=0)
        for i in range(1, 21)
    ]
    chosen = route_stream(pool, ["medicine"] * 1000, POLICY, at=NOW)
    loads = [chosen.count(c.id) for c in pool]
    assert (min(loads), max(loads), sum(loads)) == (50, 50, 1000)


def test_with_mixed_capacities_loads_follow_capacity_within_one_case() -> None:
    capacities = [40, 60, 80, 100] * 5  # 1,400 places among 20 coders
    pool = [
        Candidate(id=i, specialties=frozenset({"medicine"}), capacity=capacity, load=0)
        for i, capacity in enumerate(capacities, 1)
    ]
    chosen = route_stream(pool, ["medicine"] * 1000, POLICY, at=NOW)
    for coder in pool:
        share = 1000 * coder.capacity / sum(capacities)
        assert abs(chosen.count(coder.id) - share) <= 1, (coder.capacity, share)
