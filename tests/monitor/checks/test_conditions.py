"""The condition language of ``[[checks]]``: what parses (and what each refusal says), how a
run's values are judged, what a failed condition records, and that neither a hostile condition
nor a hostile body makes it raise."""

from __future__ import annotations

import json

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.checks.conditions import (
    GAVE_UP,
    PATTERNS_SPENT,
    Condition,
    ConditionError,
    Observation,
    evaluate,
    failed_text,
    parse_condition,
)
from monitor.checks.spec import ERROR_CHARS, OBSERVED_CHARS, CheckKind, ConditionResult

HTTP, TCP, DNS, TLS, PG = (
    CheckKind.HTTP,
    CheckKind.TCP,
    CheckKind.DNS,
    CheckKind.TLS,
    CheckKind.POSTGRES,
)
SETTINGS = hypothesis.settings(max_examples=300, derandomize=True, deadline=None, database=None)


def judge(text: str, kind: CheckKind = HTTP, **seen: object) -> ConditionResult:
    (result,) = evaluate([parse_condition(text, kind)], Observation(**seen))  # type: ignore[arg-type]
    return result


def holds(text: str, kind: CheckKind = HTTP, **seen: object) -> bool:
    return judge(text, kind, **seen).ok


# -- parsing ----------------------------------------------------------------------------------


def test_the_design_example_parses() -> None:
    parsed = [
        parse_condition(text, HTTP)
        for text in ["[STATUS] == 200", "[BODY].status == alive", "[RESPONSE_TIME] < 500"]
    ]
    assert [(c.placeholder, c.op, c.path) for c in parsed] == [
        ("STATUS", "==", ()),
        ("BODY", "==", ("status",)),
        ("RESPONSE_TIME", "<", ()),
    ]
    assert parsed[1].text == "[BODY].status == alive"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (HTTP, "[STATUS] == any(200, 204)"),
        (HTTP, "[STATUS] == pat(2*)"),
        (HTTP, "[STATUS]<400"),
        (HTTP, "[BODY] == pat(*alive*)"),
        (HTTP, "[BODY] != re(^error)"),
        (HTTP, "[BODY][0].data.items[12].id >= 3"),
        (HTTP, "len([BODY].items) > 0"),
        (HTTP, "len([BODY]) < 100000"),
        (HTTP, "[CERTIFICATE_EXPIRATION] > 48h"),
        (HTTP, "[CONNECTED] == true"),
        (HTTP, '[BODY].name == "  two words "'),
        (HTTP, "[status] == 200"),
        (TCP, "[CONNECTED] == false"),
        (TCP, "[BODY] == pat(+OK*)"),
        (TCP, "len([BODY]) > 2"),
        (DNS, "[DNS_RCODE] == nxdomain"),
        (DNS, "[DNS_RCODE] != any(SERVFAIL, REFUSED)"),
        (DNS, "[BODY] == pat(*10.0.0.5*)"),
        (TLS, "[CERTIFICATE_EXPIRATION] >= 14d"),
        (TLS, "[RESPONSE_TIME] < 2s"),
        (PG, "[CONNECTED] == true"),
        (PG, "[RESPONSE_TIME] <= 250"),
    ],
)
def test_what_each_kind_takes(kind: CheckKind, text: str) -> None:
    assert parse_condition(text, kind).text == text


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (HTTP, "", "a condition is empty; write LEFT OP RIGHT, e.g. [STATUS] == 200"),
        (HTTP, "x" * 501, "a condition is at most 500 characters; this one has 501"),
        (HTTP, "[STATUS] ==\t200", "a condition is one line of printable characters (no tabs)"),
        (
            HTTP,
            "[STATUS] 200",
            "no operator; write LEFT OP RIGHT with OP one of == != < <= > >=, e.g. [STATUS] == 200",
        ),
        (
            HTTP,
            "[STATUS] = 200",
            "'=' is not an operator; use one of == != < <= > >= (to compare, == not =)",
        ),
        (
            DNS,
            "[FOO] == 1",
            "[FOO] is not a placeholder of a dns check; use one of [DNS_RCODE], [BODY], "
            "[RESPONSE_TIME]",
        ),
        (
            PG,
            "[STATUS] == 200",
            "[STATUS] is not a placeholder of a postgres check; use one of [CONNECTED], "
            "[RESPONSE_TIME]",
        ),
        (
            HTTP,
            "status == 200",
            "the left side 'status' is not a placeholder; use one of [STATUS], [BODY], "
            "[RESPONSE_TIME], [CONNECTED], [CERTIFICATE_EXPIRATION]",
        ),
        (HTTP, "len([BODY] > 1", "len([BODY]: len( has no closing ); e.g. len([BODY].items)"),
        (
            HTTP,
            "len([STATUS]) > 1",
            "len([STATUS]): len() takes [BODY] or a path into it, e.g. len([BODY].items)",
        ),
        (
            HTTP,
            "[STATUS].code == 1",
            "[STATUS].code: [STATUS] has no fields; a JSON path such as [BODY].status is only "
            "for [BODY]",
        ),
        (
            TCP,
            "[BODY].a == 1",
            "[BODY].a: a JSON path is only for an http check's body; a tcp check's [BODY] is "
            "compared whole (with pat(), re() or len([BODY]))",
        ),
        (
            HTTP,
            "[BODY].a..b == 1",
            "[BODY].a..b: a JSON path is .key and [N] steps, e.g. [BODY].data[0].id",
        ),
        (HTTP, "[BODY]" + ".a" * 33 + " == 1", "a JSON path has at most 32 steps"),
        (HTTP, "[BODY].status ==", "nothing after ==; write the value to compare [BODY] with"),
        (HTTP, "[BODY] < pat(*x*)", "pat() goes with == or != only, not <"),
        (HTTP, "[STATUS] >= any(200, 300)", "any() goes with == or != only, not >="),
        (HTTP, "[BODY] == pat(*x*", "pat( has no closing ); e.g. pat(*alive*)"),
        (HTTP, "[BODY] == any()", "any() needs at least one value, e.g. any(200, 204)"),
        (HTTP, "[BODY] == any(a,,b)", "any() has an empty value; separate values with one comma"),
        (HTTP, "[BODY] == any(a, b,)", "any() ends with a comma; remove it or add a value"),
        (HTTP, '[BODY] == any("a, b)', "any() has a value with no closing quote"),
        (HTTP, '[BODY] == any("a" b)', 'any(): a comma comes after a "quoted" value'),
        (HTTP, "[BODY] == re()", r"re() needs a pattern, e.g. re(^ok\b)"),
        (
            HTTP,
            "[BODY] == re([a-)",
            "re([a-) is not a valid regular expression: unterminated character set at position 3",
        ),
        (HTTP, '[BODY] == "open', '"open: a quoted value needs its closing quote'),
        (
            HTTP,
            "[STATUS] == ok",
            "[STATUS] is compared with a number, e.g. [STATUS] == 200; got ok",
        ),
        (
            HTTP,
            '[STATUS] == any(200, "204")',
            "[STATUS] is compared with a number, e.g. [STATUS] == 200",
        ),
        (
            HTTP,
            "len([BODY].items) > some",
            "len([BODY]) is compared with a number, e.g. len([BODY]) > 0; got some",
        ),
        (
            TCP,
            "[CONNECTED] == yes",
            "[CONNECTED] is true or false, compared with == or !=, e.g. [CONNECTED] == true",
        ),
        (
            TCP,
            "[CONNECTED] < true",
            "[CONNECTED] is true or false, compared with == or !=, e.g. [CONNECTED] == true",
        ),
        (
            DNS,
            "[DNS_RCODE] > NOERROR",
            "[DNS_RCODE] is compared with == or !=, e.g. [DNS_RCODE] == NOERROR or "
            "[DNS_RCODE] == any(NOERROR, NXDOMAIN)",
        ),
        (
            DNS,
            "[DNS_RCODE] == pat(NO*)",
            "[DNS_RCODE] takes a response code or any() of them, e.g. [DNS_RCODE] == NOERROR",
        ),
        (
            DNS,
            "[DNS_RCODE] == any(NOERROR, GONE)",
            "any(NOERROR, GONE) is not a DNS response code; use one of NOERROR, FORMERR, "
            "SERVFAIL, NXDOMAIN, NOTIMP, REFUSED…",
        ),
        (
            TLS,
            "[CERTIFICATE_EXPIRATION] > 14",
            "[CERTIFICATE_EXPIRATION] is compared with a duration (a number and one of ms, s, m, "
            "h, d), e.g. [CERTIFICATE_EXPIRATION] > 14d; got 14",
        ),
        (
            TLS,
            "[RESPONSE_TIME] < fast",
            "[RESPONSE_TIME] is compared with milliseconds or a duration, e.g. "
            "[RESPONSE_TIME] < 500 or [RESPONSE_TIME] < 2s; got fast",
        ),
    ],
)
def test_each_refusal_says_what_to_write(kind: CheckKind, text: str, message: str) -> None:
    with pytest.raises(ConditionError) as raised:
        parse_condition(text, kind)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


# -- judging ----------------------------------------------------------------------------------


def test_status_and_response_time_compare_as_numbers() -> None:
    assert holds("[STATUS] == 200", status=200)
    assert not holds("[STATUS] == 200", status=503)
    assert holds("[STATUS] < 400", status=399)
    assert holds("[STATUS] == any(200, 204)", status=204)
    assert holds("[STATUS] == pat(2*)", status=201)
    assert not holds("[STATUS] != pat(2*)", status=201)
    assert holds("[RESPONSE_TIME] < 500", response_ms=499.9)
    assert holds("[RESPONSE_TIME] < 2s", response_ms=1999.0)
    assert not holds("[RESPONSE_TIME] < 2s", response_ms=2000.0)
    assert judge("[RESPONSE_TIME] < 500", response_ms=734.4).observed == "734 ms"


def test_body_paths_into_json() -> None:
    body = json.dumps({"status": "alive", "data": [{"id": 7}, {"id": "12"}], "ok": True})
    assert holds("[BODY].status == alive", body=body)
    assert holds("[BODY].data[0].id == 7", body=body)
    # A number written as text compares numerically with a number: "12" > 9, not "12" < "9".
    assert holds("[BODY].data[1].id > 9", body=body)
    assert holds("[BODY].ok == true", body=body)
    assert holds('[BODY].status == "alive"', body=body)
    assert holds("[BODY][0] == 1", body="[1, 2]")
    assert holds("[BODY].version < b", body='{"version": "a"}')  # text, by code point
    result = judge("[BODY].status == alive", body='{"status": "dead"}')
    assert (result.ok, result.observed) == (False, '"dead"')
    assert judge("[BODY].data == x", body=body).observed == '[{"id":7},{"id":"12"}]'
    assert judge("[BODY].missing == x", body='{"null": null}').observed is None
    assert holds("[BODY].null != x", body='{"null": null}')  # null is a value: "null"
    assert holds("[BODY].null == null", body='{"null": null}')


@pytest.mark.parametrize(
    ("text", "body"),
    [
        ("[BODY].status != alive", '{"other": 1}'),  # the path is not there
        ("[BODY].status != alive", "not json"),
        ("[BODY][5] != 1", "[1, 2]"),
        ("[BODY].a[0] != 1", '{"a": {"0": 1}}'),  # an index needs an array
        ("[BODY].a.b != 1", '{"a": [1]}'),  # a key needs an object
        ("len([BODY].n) > -1", '{"n": 5}'),  # a number has no length
    ],
)
def test_a_value_the_body_does_not_have_fails_whatever_the_operator(text: str, body: str) -> None:
    result = judge(text, body=body)
    assert (result.ok, result.observed) == (False, None)


def test_len_counts_items_or_characters() -> None:
    assert holds("len([BODY].items) == 3", body='{"items": [1, 2, 3]}')
    assert holds("len([BODY].name) == 5", body='{"name": "alice"}')
    assert holds("len([BODY]) == 2", body='{"a": 1, "b": 2}')
    assert holds("len([BODY]) == 8", body="not json")
    assert holds("len([BODY]) == 7", body='"alice"')  # a JSON string body: its characters
    assert holds("len([BODY]) == 0", TCP, body="")


def test_pat_is_a_whole_value_glob_with_star_only() -> None:
    assert holds("[BODY] == pat(*alive*)", body="i am alive today")
    assert holds("[BODY] == pat(alive)", body="alive")
    assert not holds("[BODY] == pat(alive)", body="alive!")
    assert holds("[BODY] == pat(a*c*e)", body="abcde")
    assert not holds("[BODY] == pat(ab*ba)", body="aba")  # prefix and suffix may not overlap
    assert holds("[BODY] == pat(*)", body="")
    assert holds("[BODY] == pat([a-z]?)", body="[a-z]?")  # nothing else is special
    assert holds("[BODY] != pat(*dead*)", body="alive")


def test_any_and_quoted_values() -> None:
    assert holds('[BODY].s == any(up, "a, b", 3)', body='{"s": "a, b"}')
    assert holds('[BODY].s == any(up, "a, b", 3)', body='{"s": 3.0}')
    assert holds("[BODY].s != any(up, down)", body='{"s": "gone"}')
    assert holds('[BODY] == "  spaced "', body="  spaced ")


def test_re_finds_a_pattern_in_the_first_64_kib() -> None:
    assert holds(r"[BODY] == re(\bok\b)", body="all ok here")
    assert holds("[BODY] != re(^ok$)", body="all ok here")
    far = "x" * (64 * 1024) + "needle"
    assert not holds("[BODY] == re(needle)", body=far)
    assert holds("[BODY] == pat(*needle)", body=far)  # pat() reads the whole value


def test_a_pattern_that_takes_too_long_fails_with_what_happened() -> None:
    result = judge(r"[BODY] == re((\w+\s?)*$)", body="a " * 5000 + "!")
    assert (result.ok, result.observed) == (False, GAVE_UP)
    assert failed_text([result]) == r"[BODY] == re((\w+\s?)*$) failed: pattern gave up after 50 ms"


SLOW = r"[BODY] == re((\w+\s?)*$)"
"""Backtracks for far longer than 50 ms on :data:`HOSTILE`."""
HOSTILE = "a " * 5000 + "!"


def test_a_runs_patterns_share_one_50_ms_budget() -> None:
    """20 backtracking patterns hold the monitor's loop for 50 ms in all, not 20 × 50 ms: the
    first gives up, the others are not tried."""
    conditions = [parse_condition(SLOW, HTTP)] * 20
    results = evaluate(conditions, Observation(body=HOSTILE))
    # (what each says proves the one budget; how long it took is a benchmark's to say)
    assert [r.observed for r in results] == [GAVE_UP] + [PATTERNS_SPENT] * 19
    assert not any(r.ok for r in results)
    assert failed_text(results[1:2]) == (
        f"{conditions[1].text} failed: pattern gave up: the run's 50 ms for patterns was spent"
    )


def test_a_pattern_left_without_time_fails_however_quick_and_a_new_run_starts_afresh() -> None:
    quick = parse_condition(r"[BODY] == re(^a )", HTTP)
    slow = parse_condition(SLOW, HTTP)
    first = evaluate([quick, slow, quick], Observation(body=HOSTILE))
    assert [r.ok for r in first] == [True, False, False]
    assert [r.observed for r in first[1:]] == [PATTERNS_SPENT, PATTERNS_SPENT]
    again = evaluate([quick] * 20, Observation(body=HOSTILE))
    assert all(r.ok for r in again), "quick patterns leave the budget for the others"


def test_connected_rcode_and_certificate() -> None:
    assert holds("[CONNECTED] == false", TCP, connected=False)
    assert not holds("[CONNECTED] == true", TCP, connected=False)
    assert holds("[DNS_RCODE] == NXDOMAIN", DNS, dns_rcode="nxdomain")
    assert holds("[DNS_RCODE] != any(SERVFAIL, REFUSED)", DNS, dns_rcode="NOERROR")
    day = 86400.0
    assert holds("[CERTIFICATE_EXPIRATION] > 14d", TLS, certificate_seconds=15 * day)
    assert not holds("[CERTIFICATE_EXPIRATION] > 14d", TLS, certificate_seconds=14 * day)
    assert holds("[CERTIFICATE_EXPIRATION] > 48h", TLS, certificate_seconds=48 * 3600 + 1)
    result = judge("[CERTIFICATE_EXPIRATION] > 14d", TLS, certificate_seconds=3 * day + 7200)
    assert result.observed == "3d 2h"
    expired = judge("[CERTIFICATE_EXPIRATION] > 0s", TLS, certificate_seconds=-(day + 60))
    assert (expired.ok, expired.observed) == (False, "expired 1d 0h ago")


def test_a_placeholder_with_no_value_fails_whatever_the_operator() -> None:
    for text in ["[STATUS] == 200", "[STATUS] != 200", "[CERTIFICATE_EXPIRATION] < 1d"]:
        result = judge(text)
        assert (result.ok, result.observed) == (False, None)
    assert failed_text([judge("[STATUS] == 200")]) == "[STATUS] == 200 failed: no value"


def test_observed_values_are_one_short_printable_line() -> None:
    hostile = "line one\r\nline\ttwo\x1b[31m red " + "z" * 500
    result = judge("[BODY] == pat(*alive*)", body=hostile)
    assert result.observed is not None
    assert len(result.observed) <= OBSERVED_CHARS
    assert result.observed.isprintable()
    assert result.observed.startswith('"line one line two')


def test_failed_text_names_each_failed_condition_with_what_it_saw() -> None:
    results = evaluate(
        [parse_condition(t, HTTP) for t in ["[STATUS] == 200", "[BODY].status == alive"]],
        Observation(status=503, body='{"status": "dead"}'),
    )
    assert failed_text(results) == (
        '[STATUS] == 200 failed: got 503; [BODY].status == alive failed: got "dead"'
    )
    assert (
        failed_text(evaluate([parse_condition("[STATUS] == 200", HTTP)], Observation(200))) is None
    )
    assert failed_text([]) is None
    many = [ConditionResult(f"[BODY] == {n}" + "x" * 50, False, '"y"') for n in range(10)]
    text = failed_text(many)
    assert text is not None and len(text) == ERROR_CHARS and text.endswith("…")


def test_the_body_is_parsed_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = json.loads

    def counting(text: str) -> object:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(json, "loads", counting)
    written = ["[BODY].a == 1", "[BODY].b == 2", "len([BODY]) == 2", "[BODY] == pat(*)"]
    results = evaluate(
        [parse_condition(t, HTTP) for t in written], Observation(body='{"a":1,"b":2}')
    )
    assert all(r.ok for r in results)
    assert len(calls) == 1
    evaluate([parse_condition("[STATUS] == 200", HTTP)], Observation(200, body="{}"))
    assert len(calls) == 1  # no path: not parsed at all


@pytest.mark.parametrize(
    "body",
    [
        "[" * 200_000 + "]" * 200_000,  # deeper than the parser's recursion
        '{"n": ' + "9" * 5000 + "}",  # beyond int's digit limit
        '{"n": ' + "1" * (1024 * 1024) + "}",  # over the 1 MiB it parses
    ],
)
def test_a_body_too_deep_long_or_large_has_no_paths_and_raises_nothing(body: str) -> None:
    result = judge("[BODY].n != 1", body=body)
    assert (result.ok, result.observed) == (False, None)


def test_nan_infinity_and_huge_numbers_compare_without_raising() -> None:
    assert not holds("[BODY].n == 1", body='{"n": NaN}')
    assert holds("[BODY].n != 1", body='{"n": NaN}')
    assert judge("[BODY].n == 1", body='{"n": NaN}').observed == "NaN"
    assert holds("[BODY].n > 1e308", body='{"n": Infinity}')
    assert holds("[BODY].n > 1", body='{"n": ' + "9" * 4000 + "}")
    assert holds("[BODY].n < 1e999", body='{"n": 1e308}')


# -- never raising ----------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "[STATUS]", "[BODY]", "[BODY].a", "[BODY][0]", "len(", ")", "[CONNECTED]", "[DNS_RCODE]",
        "[CERTIFICATE_EXPIRATION]", "[RESPONSE_TIME]", "==", "!=", "<", ">=", "=", " ", "pat(",
        "any(", "re(", '"', ",", "*", "14d", "2s", "200", "true", "1e999", "NOERROR", "(", "[",
        "]", ".", "\\", "?", "+", "{", "}",
    ]
)  # fmt: skip
_TEXT = st.one_of(st.text(max_size=600), st.lists(_PIECES, max_size=12).map("".join))


@SETTINGS
@given(text=_TEXT, kind=st.sampled_from(list(CheckKind)))
def test_parsing_raises_nothing_but_a_condition_error(text: str, kind: CheckKind) -> None:
    problem = ""
    try:
        condition = parse_condition(text, kind)
    except ConditionError as error:
        problem = str(error)
    else:
        assert isinstance(condition, Condition)
    assert "\n" not in problem


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)
_BODIES = st.one_of(
    _JSON.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
    st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 5000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.none(),
)
_ALL = [
    parse_condition(text, HTTP)
    for text in [
        "[STATUS] == 200", "[BODY] == pat(*a*)", "[BODY] != re(a|b)", "[BODY].a == 1",
        "[BODY].a.a.a < x", "[BODY][0] >= 2", "[BODY][0][0] == any(1, x)", "len([BODY]) > 1",
        "len([BODY].a) <= 3", "[BODY] > 1e308", "[BODY].a != true", "[BODY] == \"\"",
        "[RESPONSE_TIME] < 1s", "[CERTIFICATE_EXPIRATION] > 1d", "[CONNECTED] == true",
    ]
]  # fmt: skip


@SETTINGS
@given(
    body=_BODIES,
    status=st.none() | st.integers(),
    ms=st.none() | st.floats(allow_nan=True),
    seconds=st.none() | st.floats(allow_nan=True),
)
def test_judging_raises_nothing_whatever_the_body(
    body: str | None, status: int | None, ms: float | None, seconds: float | None
) -> None:
    seen = Observation(status, ms, body, connected=True, certificate_seconds=seconds)
    results = evaluate(_ALL, seen)
    assert len(results) == len(_ALL)
    for result in results:
        assert result.observed is None or (
            len(result.observed) <= OBSERVED_CHARS and result.observed.isprintable()
        )
    text = failed_text(results)
    assert text is None or len(text) <= ERROR_CHARS
