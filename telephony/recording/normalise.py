"""Tidy recognised speech into text a supervisor can read and search.

Supervisors use transcripts to find the moment in a call where the resident gave an
address or a phone number and jump there. Vosk's Mandarin models put a space between
every word and spell numbers out (三 栋 二 零 一), so nobody can search for "201室" or
paste a phone number. We write Han text solid, as Chinese is written, and turn the
numbers people use for buildings, rooms and phones into digits. Anything else is left as
said: a wrong digit in a transcript is worse than a spelled-out one, so the rules are
few and conservative, and text in other scripts (our test model is Korean) only has its
whitespace tidied.

Vosk times each word, so `normalise_words` keeps one item per word; `join_words` then
applies the spacing, and `normalise_text` is the two together.
"""

from __future__ import annotations

import re

DIGITS = {
    "零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3,
    "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
PLACES = {"十": 10, "百": 100, "千": 1000}

NUMERAL_RUN = re.compile(f"[{''.join(DIGITS)}{''.join(PLACES)}]+")
ADDRESS_UNIT = re.compile("号楼|栋|幢|楼|单元|层|室|号|座|期|区")
# Next to 万 or 亿 a numeral is part of a large number, or of 万一 ("in case"): not ours.
LARGE = frozenset("万亿")
# "这三栋" is "these three buildings", "同一层" "the same floor": not building numbers.
QUANTIFIER = frozenset("这那哪每同唯统任某")
# Two digits that are not a number: an estimate (两三个, 三四天) or 一一 ("one by one").
NOT_NUMBERS = frozenset(
    {"一一", "一二", "一两", "两三", "二三", "三四", "四五", "五六", "六七", "七八", "八九"}
)

HAN = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")


def normalise_text(text: str) -> str:
    """`text` as display text: Han written solid, address and phone numbers as digits."""
    return join_words(normalise_words(text.split()))


def normalise_words(words: list[str]) -> list[str]:
    """The same words with numbers as digits, one item per word so times still line up.

    A number may span words: read digit by digit each word keeps its own digits
    (["二", "零", "一"] → ["2", "0", "1"]); otherwise the whole number goes to the word
    it starts in and the rest of it leaves the words after (["二十", "三", "层"] →
    ["23", "", "层"]).
    """
    text = "".join(words)
    owner = [index for index, word in enumerate(words) for _ in word]
    out = list(text)
    for start, end, digits in _numbers(text):
        if len(digits) == end - start:
            out[start:end] = digits
        else:
            out[start:end] = [digits] + [""] * (end - start - 1)
    parts: list[list[str]] = [[] for _ in words]
    for index, piece in zip(owner, out, strict=True):
        parts[index].append(piece)
    return ["".join(part) for part in parts]


def join_words(words: list[str]) -> str:
    """Words as display text: no space where Han meets Han or a digit, one space elsewhere.

    Vosk's vocabularies have no Arabic digits, so any digit here is one we made from Han.
    """
    text = ""
    for word in " ".join(words).split():
        if text and _solid(text[-1]) and _solid(word[0]):
            text += word
        elif text:
            text += " " + word
        else:
            text = word
    return text


def _solid(char: str) -> bool:
    return "0" <= char <= "9" or HAN.match(char) is not None


def _numbers(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) for each spoken number in `text` that we write as digits."""
    found: list[tuple[int, int, str]] = []
    for run in NUMERAL_RUN.finditer(text):
        start, end, said = run.start(), run.end(), run.group()
        before = text[start - 1 : start]
        if before in LARGE or text[end : end + 1] in LARGE:
            continue
        unit = ADDRESS_UNIT.match(text, end) is not None
        if any(place in said for place in PLACES):
            value = _place_value(said) if unit else None
            if value is not None:
                found.append((start, end, str(value)))
        elif len(said) > 1 and said not in NOT_NUMBERS:
            found.append((start, end, "".join(str(DIGITS[char]) for char in said)))
        elif len(said) == 1 and unit and before not in QUANTIFIER:
            found.append((start, end, str(DIGITS[said])))
    return found


def _place_value(said: str) -> int | None:
    """The value of a number written with 十/百/千 (二十三, 一百零五, 三千二), or None."""
    total, digit, place, zero = 0, None, 10_000, False
    for char in said:
        if char in PLACES:
            value = PLACES[char]
            if digit is None and not (char == "十" and total == 0):
                return None  # 百 or 千 needs a digit before it; only a leading 十 stands alone
            if value >= place:
                return None
            total += (1 if digit is None else digit) * value
            digit, place, zero = None, value, False
        elif digit is not None:
            return None  # two digits in a row: 三四十 is an estimate
        elif DIGITS[char] == 0:
            if total == 0 or zero or place == 10:
                return None
            zero = True
        else:
            digit = DIGITS[char]
    if zero and digit is None:
        return None
    if digit is not None:
        # 三千二 is 3200 and 一百五 is 150: a digit right after a place is the next place down.
        total += digit * (place // 10 if place > 10 and not zero else 1)
    return total
