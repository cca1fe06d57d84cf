"""The aggregate rule: a target's record from its replicas' records of one round."""

from __future__ import annotations

import pytest

from monitor.aggregate import aggregate, judge, worst_breaker
from monitor.store.models import CheckRecord, Instance, ReplicaCheck, ServiceSample, Status

H, D, U, X, K = (
    Status.HEALTHY,
    Status.DEGRADED,
    Status.UNHEALTHY,
    Status.UNREACHABLE,
    Status.UNKNOWN,
)
AT = 1_800_000_000.0


def replica(
    n: int,
    status: Status,
    *,
    latency: float | None = 10.0,
    error: str | None = None,
    http: int | None = 200,
    services: tuple[ServiceSample, ...] = (),
) -> ReplicaCheck:
    if status is X:
        http = None if http == 200 else http
        error = error or "connection refused"
    record = CheckRecord("api", AT + n, status, latency, http, error, services)
    return ReplicaCheck(f"10.0.0.{n}:8000", record, Instance(f"pod-{n}", AT - 100))


def fleet(*statuses: Status) -> list[ReplicaCheck]:
    return [replica(n, s) for n, s in enumerate(statuses, start=1)]


def sample(
    service: str,
    status: Status = H,
    *,
    ms: float | None = 5.0,
    failures: int | None = 0,
    breaker: str | None = "closed",
) -> ServiceSample:
    return ServiceSample(service, status, ms, failures, breaker, {"circuit_breaker": {"x": 1}})


def test_no_replicas_is_unreachable_with_a_plain_error() -> None:
    record = aggregate("api", AT, [])
    assert (record.target, record.at, record.status, record.error) == ("api", AT, X, "no replicas")
    assert (record.latency_ms, record.http_status, record.services) == (None, None, ())


@pytest.mark.parametrize("status", [H, D, U, X, K])
def test_one_replica_is_its_own_record_exactly(status: Status) -> None:
    only = replica(1, status, services=(sample("s3", D, breaker="open"),))
    assert aggregate("api", AT, [only]) is only.record


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        # two replicas: one down is not a majority (1·2 = 2, not > 2)
        ((H, H), H),
        ((H, D), D),
        ((H, K), D),
        ((H, U), D),
        ((H, X), D),
        ((U, X), U),
        ((X, X), X),
        ((U, U), U),
        ((D, D), D),
        # three: two down is a majority
        ((H, H, H), H),
        ((H, H, D), D),
        ((H, H, X), D),
        ((H, U, X), U),
        ((H, X, X), U),
        ((X, X, X), X),
        ((D, U, U), U),
        ((K, K, K), D),
        # five: three down is a majority, two is not
        ((H, H, H, H, H), H),
        ((H, H, H, U, X), D),
        ((H, H, X, X, X), U),
        ((D, D, U, U, U), U),
        ((X, X, X, X, X), X),
        ((H, H, H, H, K), D),
    ],
)
def test_the_targets_status_follows_the_majority_rule(
    statuses: tuple[Status, ...], expected: Status
) -> None:
    assert aggregate("api", AT, fleet(*statuses)).status is expected
    assert judge(statuses) is expected


def test_the_aggregate_carries_the_round_time_and_the_median_of_those_that_answered() -> None:
    replicas = [
        replica(1, H, latency=10.0),
        replica(2, H, latency=30.0),
        replica(3, D, latency=20.0),
        replica(4, X, latency=5000.0),  # a timeout's elapsed time is not a latency
    ]
    record = aggregate("api", AT, replicas)
    assert (record.target, record.at, record.latency_ms) == ("api", AT, 20.0)
    even = aggregate("api", AT, [replica(1, H, latency=10.0), replica(2, H, latency=30.0)])
    assert even.latency_ms == 20.0
    assert aggregate("api", AT, fleet(X, X)).latency_ms is None


def test_errors_say_how_many_replicas_did_not_answer() -> None:
    assert aggregate("api", AT, fleet(H, H, H)).error is None
    assert aggregate("api", AT, fleet(H, D, H)).error is None
    assert aggregate("api", AT, fleet(H, H, X)).error == "1/3 replicas unreachable"
    assert aggregate("api", AT, fleet(H, X, X)).error == "2/3 replicas unreachable"
    assert aggregate("api", AT, fleet(X, X, X)).error == "connection refused"
    mixed = [replica(1, X, error="timeout"), replica(2, X, error="connection refused")]
    assert aggregate("api", AT, mixed).error == "unreachable on 2/2 replicas"


def test_the_http_status_is_the_one_most_replicas_answered() -> None:
    replicas = [replica(1, H), replica(2, U, http=503), replica(3, H), replica(4, X)]
    assert aggregate("api", AT, replicas).http_status == 200
    assert aggregate("api", AT, fleet(X, X)).http_status is None
    assert aggregate("api", AT, [replica(1, U, http=503), replica(2, H)]).http_status == 200


def test_each_service_is_judged_over_the_replicas_that_reported_it() -> None:
    replicas = [
        replica(1, H, services=(sample("database"), sample("s3"))),
        replica(2, D, services=(sample("database"), sample("s3", U))),
        replica(3, D, services=(sample("database", D), sample("s3", U), sample("cache", U))),
        replica(4, X),
    ]
    services = {s.service: s for s in aggregate("api", AT, replicas).services}
    assert list(services) == ["cache", "database", "s3"]
    assert services["database"].status is D  # 1 of 3 not healthy
    assert services["s3"].status is U  # 2 of 3 down: a majority of those that reported it
    assert services["cache"].status is U  # reported by one replica alone: its own status
    assert all(s.details == {} for s in services.values())


def test_a_service_on_two_of_four_replicas_with_one_down_is_degraded() -> None:
    replicas = [
        replica(1, H, services=(sample("s3"),)),
        replica(2, H, services=(sample("s3", U),)),
        replica(3, H),
        replica(4, H),
    ]
    (s3,) = aggregate("api", AT, replicas).services
    assert s3.status is D


def test_service_figures_are_worst_breaker_most_failures_and_median_time() -> None:
    replicas = [
        replica(1, H, services=(sample("s3", ms=5.0, failures=0, breaker="closed"),)),
        replica(2, D, services=(sample("s3", ms=50.0, failures=7, breaker="open"),)),
        replica(3, H, services=(sample("s3", ms=9.0, failures=2, breaker="half_open"),)),
    ]
    (s3,) = aggregate("api", AT, replicas).services
    assert (s3.breaker_state, s3.consecutive_failures, s3.response_ms) == ("open", 7, 9.0)
    none = [
        replica(1, H, services=(sample("s3", ms=None, failures=None, breaker=None),)),
        replica(2, H, services=(sample("s3", ms=None, failures=None, breaker=None),)),
    ]
    (bare,) = aggregate("api", AT, none).services
    assert (bare.breaker_state, bare.consecutive_failures, bare.response_ms) == (None, None, None)


@pytest.mark.parametrize(
    ("states", "worst"),
    [
        ((), None),
        ((None, None), None),
        (("closed", None), "closed"),
        (("closed", "half_open"), "half_open"),
        (("half_open", "open", "closed"), "open"),
        (("closed", "forced_open"), "forced_open"),  # unknown words are not known to be fine
        (("forced_open", "open"), "open"),
        (("half-open", "closed"), "half-open"),
    ],
)
def test_the_worst_breaker(states: tuple[str | None, ...], worst: str | None) -> None:
    assert worst_breaker(states) == worst


@pytest.mark.parametrize(
    ("statuses", "expected", "status", "error"),
    [
        ((H,), 3, U, "2/3 replicas missing"),  # 2 of 3 pods crash-looping: an outage
        ((H, H), 3, D, "1/3 replicas missing"),
        ((H, H, H), 3, H, None),
        ((H, H, H, H), 3, H, None),  # more than expected (a rolling update): nothing missing
        ((H, X), 3, U, "1/3 replicas missing; 1/3 replicas unreachable"),
        ((X,), 2, X, "1/2 replicas missing; 1/2 replicas unreachable"),
        ((), 3, X, "3/3 replicas missing"),
        ((H,), 1, H, None),
    ],
)
def test_replicas_short_of_the_expected_count_are_down(
    statuses: tuple[Status, ...], expected: int, status: Status, error: str | None
) -> None:
    record = aggregate("api", AT, fleet(*statuses), expected=expected)
    assert (record.status, record.error) == (status, error)


def test_a_missing_replica_adds_no_figures() -> None:
    found = [replica(1, H, latency=10.0, services=(sample("s3"),))]
    record = aggregate("api", AT, found, expected=3)
    assert (record.target, record.at, record.latency_ms, record.http_status) == (
        "api",
        AT,
        10.0,
        200,
    )
    assert [(s.service, s.status) for s in record.services] == [("s3", H)]
    assert aggregate("api", AT, found) is found[0].record  # without expected: as before
