"""Usernames: one account per name as people read it, and no names made to look like another's.

Three forms of a name:

- as typed (trimmed): what the account shows as its ``username``;
- **canonical**: NFKC, case-folded, NFKC again (Unicode's NFKC_Casefold in spirit), so that
  ``alice``, ``ALICE`` and ``ａｌｉｃｅ`` (fullwidth) are one name;
- **key**: the canonical form with the Cyrillic and Greek letters that look like Latin ones
  replaced by those Latin letters (a skeleton, after UTS #39). The key is what is unique in the
  database and what a login looks up, so an all-Cyrillic ``аӏісе`` is refused as taken when
  ``alice`` exists, and a guesser cannot dodge the per-account throttle by spelling a name with
  look-alikes.

New names (:func:`check_new_username`) must also be made of letters, digits and ``_ - .``, start
with a letter or digit, and write their letters in one script (Latin with Cyrillic, as in
``аlice`` with a Cyrillic ``а``, is the classic spoof). Han, Hiragana, Katakana, Hangul and
Bopomofo count as one family, as Japanese and Korean names mix them, and may be written beside
Latin, which none of them resembles.

The standard library has no Script property; a letter's Unicode name begins with its script
(``LATIN SMALL LETTER A``, ``CYRILLIC SMALL LETTER A``, ``CJK UNIFIED IDEOGRAPH-4E00``), which
is exact for the letters of every script in use but a few marks of Japanese writing (ー, 々),
which :data:`_SCRIPT_ALIASES` places in the Han family. Changing :func:`username_key` changes
what is stored in ``users.username_key``: it then needs a migration that recomputes the column.
"""

from __future__ import annotations

import sys
import unicodedata

USERNAME_MAX = 64
"""Characters, both as typed (trimmed) and in canonical form (NFKC may lengthen a name)."""
SEPARATORS = frozenset("_-.")

# Lower-case Cyrillic and Greek letters whose upper or lower case is drawn like a Latin letter,
# as they are after case folding. Whole-script look-alikes of Latin names are made of these.
_LOOKALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "ԁ": "d",
        "е": "e",
        "һ": "h",
        "н": "h",
        "і": "i",
        "ј": "j",
        "к": "k",
        "ӏ": "l",
        "м": "m",
        "п": "n",
        "о": "o",
        "р": "p",
        "ԛ": "q",
        "с": "c",
        "г": "r",
        "ѕ": "s",
        "т": "t",
        "у": "y",
        "ԝ": "w",
        "х": "x",
        "ь": "b",
        "ү": "y",
        "ѵ": "v",
        # Greek
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "μ": "m",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "γ": "y",
        "ζ": "z",
        "ϲ": "c",
    }
)

# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt, Unicode 15.1): code
# points drawn as nothing, so a name with one looks exactly like the name without it. Several are
# marks or letters by category (U+034F COMBINING GRAPHEME JOINER and the variation selectors are
# Mn, the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 are Lo) and would pass a category test.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
MAX_MARKS = 4
"""Combining marks one letter may carry (UTS #39 §5.4 suggests refusing more than 4): enough for
every script's written words, too few to stack marks over a neighbour (Zalgo text)."""

_HAN_FAMILY = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"})
_SCRIPT_ALIASES = {
    "HALFWIDTH": "KATAKANA",  # e.g. HALFWIDTH KATAKANA LETTER A before NFKC
    # Letters of Japanese text whose names do not begin with a script. Unicode's Script for them
    # is Han or Common (ー: Common, with Script_Extensions Hiragana and Katakana): each counts
    # with the Han family, not as a script of its own, nor as one that goes with any script
    # (Иванー stays refused).
    "KATAKANA-HIRAGANA": "KATAKANA",  # ー U+30FC PROLONGED SOUND MARK
    "IDEOGRAPHIC": "CJK",  # 々 U+3005 ITERATION MARK, 〆 U+3006 CLOSING MARK
    "VERTICAL IDEOGRAPHIC": "CJK",  # 〻 U+303B ITERATION MARK
    "VERTICAL KANA": "HIRAGANA",  # 〱 to 〵 U+3031-3035 REPEAT MARKs
    "MASU": "CJK",  # 〼 U+303C MASU MARK
}
"""The script a letter's name begins with (one word, or two where one would also name
letters of other scripts: VERTICAL TILDE is no Japanese mark) -> the script it counts as."""


def display_form(username: str) -> str:
    """``username`` trimmed and NFKC-normalised, case kept: what a new account shows as its name
    (``ａｌｉｃｅ`` typed on a fullwidth keyboard shows as ``alice``)."""
    return unicodedata.normalize("NFKC", username.strip())


def canonical(username: str) -> str:
    """``username`` trimmed, NFKC-normalised and case-folded: the name as the system compares it."""
    folded = unicodedata.normalize("NFKC", username.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def username_key(username: str) -> str:
    """The unique key of ``username``: its canonical form with look-alikes of Latin made Latin."""
    return canonical(username).translate(_LOOKALIKES)


def check_new_username(username: str) -> str | None:
    """What is wrong with ``username`` (already trimmed) as a new account's name, or None.

    The answer is a sentence for the person choosing the name.
    """
    name = canonical(username)
    if not name:
        return "must not be empty"
    if len(name) > USERNAME_MAX:
        return f"must be at most {USERNAME_MAX} characters"
    for char in name:
        if _invisible(char) or unicodedata.category(char) == "Cf":
            return (
                f"must not contain invisible characters (U+{ord(char):04X}), which make a name "
                "look like another; choose a name without it"
            )
    if not _allowed_start(name[0]):
        return "must start with a letter or a digit"
    for char in name:
        if not _allowed(char):
            visible = char.isprintable() and not char.isspace()
            shown = repr(char) if visible else f"U+{ord(char):04X}"
            return (
                f"may contain only letters, digits, '_', '-' and '.', not {shown}; "
                "choose a name without it"
            )
    marks_problem = _misplaced_marks(name)
    if marks_problem is not None:
        return marks_problem
    scripts = _letter_scripts(name)
    if len(scripts) > 1 and not scripts <= _HAN_FAMILY | {"LATIN"}:
        named = " and ".join(sorted(script.title() for script in scripts))
        return (
            f"mixes letters of different scripts ({named}), which is how names are made to "
            "look like someone else's; write it in one script"
        )
    return None


_NAME_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Nd"})


def _allowed_start(char: str) -> bool:
    return unicodedata.category(char) in _NAME_CATEGORIES - {"Mn", "Mc"}


def _allowed(char: str) -> bool:
    return char in SEPARATORS or unicodedata.category(char) in _NAME_CATEGORIES


def _invisible(char: str) -> bool:
    code = ord(char)
    return any(first <= code <= last for first, last in _DEFAULT_IGNORABLE)


def _misplaced_marks(name: str) -> str | None:
    """Why the combining marks in ``name`` are refused, or None: each run of marks must follow a
    letter directly and be at most :data:`MAX_MARKS` long."""
    run = 0
    after_letter = False
    for char in name:
        category = unicodedata.category(char)
        if category[0] != "M":
            run = 0
            after_letter = category[0] == "L"
            continue
        run += 1
        shown = f"U+{ord(char):04X}"
        if not after_letter:
            return f"may have a combining mark ({shown}) only right after a letter"
        if run > MAX_MARKS:
            return (
                f"may have at most {MAX_MARKS} combining marks on one letter; "
                f"choose a name without the extra ones ({shown})"
            )
    return None


def _letter_scripts(name: str) -> set[str]:
    scripts: set[str] = set()
    for char in name:
        if unicodedata.category(char)[0] != "L":
            continue  # digits, marks and separators go with any script
        scripts.add(_script(char))
    return scripts


def _script(letter: str) -> str:
    words = unicodedata.name(letter, "").split(" ")
    for length in (2, 1):
        alias = _SCRIPT_ALIASES.get(" ".join(words[:length]))
        if alias is not None:
            return alias
    return words[0]


def name_characters() -> tuple[list[int], list[int]]:
    """The code points a new name may hold, and those it may start with, one at a time: each
    that stays letters, digits (and marks) or ``_ - .`` once canonical, without invisible ones.

    A projection of :func:`check_new_username` for the OpenAPI document's pattern (a name with
    any other character is refused); about half a second, so call it once.
    """
    allowed: list[int] = []
    starts: list[int] = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) in {"Cn", "Cs", "Co"}:
            continue
        name = canonical(char)
        if name and all(
            _allowed(c) and not _invisible(c) and unicodedata.category(c) != "Cf" for c in name
        ):
            allowed.append(code)
            if _allowed_start(name[0]):
                starts.append(code)
    return allowed, starts
