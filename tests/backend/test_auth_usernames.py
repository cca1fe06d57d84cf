"""Usernames (``backend.auth.usernames``): one account per name as people read it."""

from __future__ import annotations

import pytest

from backend.auth.usernames import (
    MAX_MARKS,
    USERNAME_MAX,
    check_new_username,
    display_form,
    username_key,
)


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
        "Nguy\u1ec5n",  # Vietnamese: two marks on one letter once decomposed
        "Nguye\u0302\u0303n",
        "\u0939\u093f\u0928\u094d\u0926\u0940",  # Hindi: vowel signs and a virama
        "\u0e2a\u0e21\u0e0a\u0e32\u0e22",  # Thai
        "a" + "\u0316" * MAX_MARKS,
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
        ("a\u200bb", "invisible characters (U+200B)"),
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


@pytest.mark.parametrize(
    "name",
    [
        "al\u034fice",  # COMBINING GRAPHEME JOINER (Mn)
        "alice\ufe0f",  # VARIATION SELECTOR-16 (Mn)
        "alice\U000e0100",  # VARIATION SELECTOR-17 (Mn)
        "alice\u180b",  # MONGOLIAN FREE VARIATION SELECTOR ONE (Mn)
        "alice\u180f",  # MONGOLIAN FREE VARIATION SELECTOR FOUR (Mn)
        "alice\u3164",  # HANGUL FILLER (Lo)
        "alice\uffa0",  # HALFWIDTH HANGUL FILLER (Lo)
        "alice\u115f",  # HANGUL CHOSEONG FILLER (Lo)
        "al\u200dice",  # ZERO WIDTH JOINER
        "al\u200cice",  # ZERO WIDTH NON-JOINER
        "al\u00adice",  # SOFT HYPHEN
        "\u202ealice",  # RIGHT-TO-LEFT OVERRIDE
        "alice\u2066",  # LEFT-TO-RIGHT ISOLATE
        "ali\u2064ce",  # INVISIBLE PLUS
        "alice\U000e0041",  # TAG LATIN CAPITAL LETTER A
        "alice\u17b4",  # KHMER VOWEL INHERENT AQ (Mn)
        "\u0dc1\u0dca\u200d\u0dbb\u0dd3",  # even where a script uses ZWJ: invisible
    ],
)
def test_invisible_characters_are_refused(name: str) -> None:
    found = check_new_username(name)
    assert found is not None and "invisible" in found, found


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("7\u0301", "combining mark (U+0301) only right after a letter"),
        ("al.\u0301ice", "combining mark (U+0301) only right after a letter"),
        ("a" + "\u0316" * (MAX_MARKS + 1), f"at most {MAX_MARKS} combining marks"),
        ("zalgo" + "\u0336\u0337\u0338\u0335\u0334\u0333", f"at most {MAX_MARKS}"),
    ],
)
def test_combining_marks_only_on_a_letter_and_few(name: str, problem: str) -> None:
    found = check_new_username(name)
    assert found is not None and problem in found, found


@pytest.mark.parametrize(
    "name",
    [
        "\u6771\u4eac\u30bf\u30ef\u30fc",  # 東京タワー: ー, the prolonged sound mark (Common)
        "\u30e9\u30fc\u30e1\u30f3",  # ラーメン: ー among Katakana
        "\u3089\u30fc\u3081\u3093",  # らーめん: ー among Hiragana
        "\uff97\uff70\uff92\uff9d",  # ﾗｰﾒﾝ: halfwidth, ｰ becomes ー
        "\u4f50\u3005\u6728",  # 佐々木: 々, the ideographic iteration mark
        "\u3006\u5207",  # 〆切: 〆, the ideographic closing mark
        "\u3053\u309d\u308d",  # こゝろ: ゝ, the Hiragana iteration mark
        "\u3044\u3059\u309e",  # いすゞ: ゞ, its voiced form
        "\u30b5\u30fd\u30ad",  # サヽキ: ヽ, the Katakana iteration mark
        "\u30df\u30b9\u30fe",  # ミスヾ: ヾ, its voiced form
        "\u6642\u3005\u30e9\u30fc\u30e1\u30f3",  # 時々ラーメン: Han, 々, Katakana, ー
        "\u3072\u3068\u3031",  # ひと〱: a vertical kana repeat mark
        "\u4eba\u303b",  # 人〻: the vertical ideographic iteration mark
        "tokyo_\u6771\u4eac\u30bf\u30ef\u30fc",  # beside Latin, as the family may be
    ],
)
def test_japanese_names_with_the_prolonged_sound_and_iteration_marks_are_one_script(
    name: str,
) -> None:
    assert check_new_username(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        # The Japanese marks count with the Japanese scripts only, not with any script.
        ("\u0418\u0432\u0430\u043d\u30fc", "(Cyrillic and Katakana)"),  # Иванー
        ("\u0418\u0432\u0430\u043d\u3005", "(Cjk and Cyrillic)"),  # Иван々
        ("\u03b1\u03b2\u30fd", "(Greek and Katakana)"),
        # and do not make a Cyrillic-and-Latin name acceptable.
        ("\u0430lice\u30fc", "Cyrillic"),
        ("\u0430lice\u3005", "Cyrillic"),
        ("\u0456van\u4f50\u3005\u6728", "Cyrillic"),
    ],
)
def test_the_japanese_marks_do_not_let_other_scripts_mix(name: str, problem: str) -> None:
    found = check_new_username(name)
    assert found is not None and "mixes letters of different scripts" in found, found
    assert problem in found, found


def test_display_form_keeps_case_and_undoes_width() -> None:
    assert display_form(" \uff21lice ") == "Alice"
