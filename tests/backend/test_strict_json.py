"""backend.api.strict_json: the bounds, and that the depth scan reads strings as JSON does."""

from __future__ import annotations

import json

import pytest

from backend.api.strict_json import MAX_DEPTH, MAX_NUMBER_CHARS, JsonRejected, loads


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_parses() -> None:
    assert loads(_nested(MAX_DEPTH).encode()) == json.loads(_nested(MAX_DEPTH))


def test_one_level_past_the_limit_is_refused() -> None:
    with pytest.raises(JsonRejected) as caught:
        loads(_nested(MAX_DEPTH + 1).encode())
    assert caught.value.code == "json_too_complex"
    assert str(MAX_DEPTH) in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "' + "[" * 100 + '"}',  # brackets inside a string are text, not nesting
        '{"a": "\\"' + "[" * 100 + '"}',  # an escaped quote does not end the string
        '{"a": "\\\\", "b": "' + "{" * 100 + '"}',  # an escaped backslash does not escape "
    ],
)
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    assert loads(text.encode()) == json.loads(text)


def test_brackets_after_a_string_ending_in_an_escaped_backslash_count() -> None:
    text = '["\\\\", ' + _nested(MAX_DEPTH) + "]"
    with pytest.raises(JsonRejected):
        loads(text.encode())


def test_number_literals_up_to_the_limit_parse() -> None:
    assert loads(b"1" * MAX_NUMBER_CHARS) == int("1" * MAX_NUMBER_CHARS)
    assert loads(b"0." + b"5" * (MAX_NUMBER_CHARS - 2)) == pytest.approx(0.5555555)


@pytest.mark.parametrize("literal", [b"1" * (MAX_NUMBER_CHARS + 1), b"-" + b"1" * MAX_NUMBER_CHARS])
def test_longer_number_literals_are_refused(literal: bytes) -> None:
    with pytest.raises(JsonRejected) as caught:
        loads(literal)
    assert caught.value.code == "json_too_complex"


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_what_is_no_finite_number_is_refused(text: bytes) -> None:
    with pytest.raises(JsonRejected) as caught:
        loads(text)
    assert caught.value.code == "malformed_json"


def test_a_surrogate_pair_is_text_and_a_lone_surrogate_value_is_left_to_field_checks() -> None:
    assert loads(b'{"\\ud83d\\ude00": "\\ud800"}') == {"\U0001f600": "\ud800"}


def test_a_name_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(JsonRejected):
        loads(b'{"a": [{"\\udc00": 1}]}')


def test_syntax_errors_say_where() -> None:
    with pytest.raises(JsonRejected) as caught:
        loads(b'{"a": 1,\n }')
    assert "line 2" in caught.value.message
