"""Transcripts read as written Chinese, with building, room and phone numbers as digits."""

from __future__ import annotations

import pytest

from telephony.recording.normalise import join_words, normalise_text, normalise_words

# Spacing


def test_han_words_are_written_solid() -> None:
    assert normalise_text("我 家 电梯 坏 了") == "我家电梯坏了"


def test_korean_passes_through_unchanged() -> None:
    assert normalise_text("안녕 하세요") == "안녕 하세요"
    assert normalise_text("엘리베이터 가 고장 났어요") == "엘리베이터 가 고장 났어요"


def test_repeated_whitespace_collapses_and_ends_are_stripped() -> None:
    assert normalise_text("  안녕   하세요\t\n") == "안녕 하세요"
    assert normalise_text(" 电梯 \u3000 坏 了 ") == "电梯坏了"


@pytest.mark.parametrize("text", ["", " ", "\n\t "])
def test_empty_input_gives_empty_text(text: str) -> None:
    assert normalise_text(text) == ""


def test_latin_keeps_its_space_next_to_han() -> None:
    assert normalise_text("WiFi 密码") == "WiFi 密码"
    assert normalise_text("密码 WiFi") == "密码 WiFi"
    assert normalise_text("WiFi 密码 是 多少") == "WiFi 密码是多少"


def test_latin_words_keep_their_spaces() -> None:
    assert normalise_text("hello  world") == "hello world"


def test_digits_from_han_join_the_han_around_them() -> None:
    assert normalise_text("我 家 在 三 栋 二 零 一 电梯 坏 了") == "我家在3栋201电梯坏了"


# Digit by digit


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("二零一", "201"),
        ("二 零 一", "201"),
        ("幺三八零零一三八零零零", "13800138000"),
        ("电话 是 幺 三 八 零 零 一 三 八 零 零 零", "电话是13800138000"),
        ("房间 号 是 〇 五", "房间号是05"),
        ("两零幺", "201"),
        ("二零二四 年", "2024年"),
    ],
)
def test_two_or_more_digits_read_one_by_one_become_digits(said: str, written: str) -> None:
    assert normalise_text(said) == written


@pytest.mark.parametrize("said", ["三四天", "两三个人", "一两个", "七八 个 师傅"])
def test_two_neighbouring_digits_are_an_estimate_and_stay(said: str) -> None:
    assert normalise_text(said) == said.replace(" ", "")


def test_one_by_one_stays() -> None:
    assert normalise_text("我们 会 一一 处理") == "我们会一一处理"


# Numbers with 十, 百, 千 before an address unit


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("十二栋", "12栋"),
        ("十二 栋", "12栋"),
        ("二十三层", "23层"),
        ("一百零五室", "105室"),
        ("三千二百号", "3200号"),
        ("三千零五十号", "3050号"),
        ("一百五室", "150室"),
        ("两百号楼", "200号楼"),
        ("十楼", "10楼"),
        ("十一幢", "11幢"),
        ("十五单元", "15单元"),
        ("二十座", "20座"),
        ("三十期", "30期"),
        ("十二区", "12区"),
    ],
)
def test_a_number_with_places_before_an_address_unit_becomes_digits(
    said: str, written: str
) -> None:
    assert normalise_text(said) == written


@pytest.mark.parametrize(
    "said",
    ["三十二岁", "一百零五", "十分 感谢", "三千二百块", "十一点", "一百分"],
)
def test_a_number_with_places_and_no_address_unit_stays(said: str) -> None:
    assert normalise_text(said) == said.replace(" ", "")


@pytest.mark.parametrize("said", ["三四十层", "一二十层", "一万二千三百号", "三千万"])
def test_estimates_and_large_numbers_stay(said: str) -> None:
    assert normalise_text(said) == said


# A single digit


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("三栋", "3栋"),
        ("五单元", "5单元"),
        ("两号楼", "2号楼"),
        ("住 一楼", "住1楼"),
        ("九层", "9层"),
        ("六室", "6室"),
        ("二期", "2期"),
        ("一 区", "1区"),
        ("八 幢", "8幢"),
    ],
)
def test_a_single_digit_before_an_address_unit_becomes_a_digit(said: str, written: str) -> None:
    assert normalise_text(said) == written


@pytest.mark.parametrize(
    "said", ["一个", "一下", "三天", "两个人", "一样", "一直", "十分", "万一", "一单"]
)
def test_a_single_digit_without_an_address_unit_stays(said: str) -> None:
    assert normalise_text(said) == said


@pytest.mark.parametrize("said", ["万一楼上漏水", "这三栋", "同一层", "每一层", "那两栋"])
def test_a_digit_that_counts_or_follows_wan_stays(said: str) -> None:
    assert normalise_text(said) == said


# Words with times


def test_normalise_words_keeps_one_item_per_word() -> None:
    words = ["我", "家", "在", "三", "栋", "二", "零", "一", "电梯", "坏", "了"]
    normalised = normalise_words(words)
    assert len(normalised) == len(words)
    assert normalised == ["我", "家", "在", "3", "栋", "2", "0", "1", "电梯", "坏", "了"]


def test_digits_read_one_by_one_stay_with_their_words() -> None:
    assert normalise_words(["二", "零", "一"]) == ["2", "0", "1"]


def test_a_number_in_one_word_stays_in_it() -> None:
    assert normalise_words(["十二", "栋"]) == ["12", "栋"]


def test_a_number_split_over_words_goes_to_the_word_it_starts_in() -> None:
    words = ["二十", "三", "层"]
    assert normalise_words(words) == ["23", "", "层"]
    assert join_words(normalise_words(words)) == "23层"


def test_normalise_words_of_no_words_is_no_words() -> None:
    assert normalise_words([]) == []


def test_words_without_numbers_are_unchanged() -> None:
    words = ["안녕", "하세요", "WiFi", "密码", "一样"]
    assert normalise_words(words) == words


@pytest.mark.parametrize(
    "words",
    [
        ["我", "家", "在", "三", "栋", "二", "零", "一", "电梯", "坏", "了"],
        ["电话", "是", "幺", "三", "八", "零", "零", "一", "三", "八", "零", "零", "零"],
        ["十二", "栋", "一百零五", "室"],
        ["二十", "三", "层", "有", "两三个", "人"],
        ["WiFi", "密码", "是", "二", "零"],
        ["万一", "楼上", "漏水", "一样", "一直"],
        ["안녕", "하세요"],
        [],
    ],
)
def test_joining_normalised_words_gives_the_normalised_text(words: list[str]) -> None:
    normalised = normalise_words(words)
    assert len(normalised) == len(words)
    assert join_words(normalised) == normalise_text(" ".join(words))


def test_join_words_spaces_only_between_words_that_are_not_han() -> None:
    assert join_words(["物业", "WiFi", "密码", "3", "栋", "", "안녕", "하세요"]) == (
        "物业 WiFi 密码3栋 안녕 하세요"
    )
