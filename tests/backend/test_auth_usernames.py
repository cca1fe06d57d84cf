"""Usernames (``backend.auth.usernames``): one account per name as people read it."""

from __future__ import annotations

import pytest

from backend.auth.usernames import USERNAME_MAX, check_new_username, display_form, username_key


@pytest.mark.parametrize(
    "spelling",
    [
        "alice",
        "ALICE",
        "Alice",
        " alice ",
        "\uff41lice",  # fullwidth a
        "\uff41\uff4c\uff49\uff43\uff45",  # all fullwidth
        "\u0430\u04cf\u0456\u0441\u0435",  # all Cyrillic look-alikes: аӏісе
        "\u0430lice",  # Cyrillic а + Latin (refused at registration, same key at login)
    ],
)
def test_look_alike_spellings_share_one_key(spelling: str) -> None:
    assert username_key(spelling) == "alice"


def test_different_names_keep_different_keys() -> None:
    keys = {username_key(name) for name in ["alice", "alicia", "al1ce", "\u00e1lice", "bob"]}
    assert len(keys) == 5


def test_case_folding_is_full_folding() -> None:
    assert username_key("STRASSE") == username_key("stra\u00dfe")


def test_composed_and_decomposed_accents_are_one_name() -> None:
    assert username_key("\u00e9lan") == username_key("e\u0301lan")


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "Alice_Smith",
        "bob.jones-2",
        "\u00d3lafur",
        "\u0418\u0432\u0430\u043d",
        "\u5c71\u7530\u305f\u308d\u3046",
        "\uae40\ubbfc\uc900",
        "7of9",
        "\u00e9lan",
    ],
)
def test_good_names_are_accepted(name: str) -> None:
    assert check_new_username(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("\u0430lice", "mixes letters of different scripts (Cyrillic and Latin)"),
        ("\u03b1lice", "mixes letters of different scripts (Greek and Latin)"),
        ("alice smith", "not U+0020"),
        ("a\u200bb", "not U+200B"),
        ("al!ce", "not '!'"),
        ("-alice", "must start with a letter or a digit"),
        ("_alice", "must start with a letter or a digit"),
        ("x" * (USERNAME_MAX + 1), f"at most {USERNAME_MAX} characters"),
        ("\ufdfa" * 4, f"at most {USERNAME_MAX} characters"),  # NFKC makes it 72 characters
    ],
)
def test_bad_names_are_refused_with_the_reason(name: str, problem: str) -> None:
    found = check_new_username(name)
    assert found is not None and problem in found


def test_display_form_keeps_case_and_undoes_width() -> None:
    assert display_form(" \uff21lice ") == "Alice"
