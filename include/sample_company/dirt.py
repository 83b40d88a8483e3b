"""How real exports spoil clean values: each function takes the clean value and returns
the text an export would carry. The caller records both in the truth."""

from __future__ import annotations

import datetime as dt
import random

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

#: money as text, by variant; each needs the clean value in the shape it can show
MONEY_VARIANTS = ("dollar_grouped", "thousands_k", "currency_suffix", "euro_decimal")

#: dates as text that no reader can mistake; named by format
DATE_FORMATS = ("dmy_dotted", "month_name", "day_month_name", "compact")


def money_clean(variant: str, value: float) -> tuple[float, str]:
    """The clean amount a variant can show exactly, and the currency it implies."""
    if variant == "thousands_k":
        return float(max(1, round(value / 1000)) * 1000), "USD"
    if variant in ("dollar_grouped", "currency_suffix"):
        return float(round(value)), "USD"
    return round(value, 2), "EUR"


def money_text(variant: str, value: float) -> str:
    if variant == "dollar_grouped":
        return f"${value:,.0f} "  # the trailing space is part of the dirt
    if variant == "thousands_k":
        return f"{int(value) // 1000}k"
    if variant == "currency_suffix":
        return f"{value:.0f} USD"
    # European grouping: dot for thousands, comma for decimals, symbol after
    grouped = f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{grouped} €"


def date_text(fmt: str, day: dt.date) -> str:
    if fmt == "dmy_dotted":
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    if fmt == "month_name":
        return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"
    if fmt == "day_month_name":
        return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"
    if fmt == "compact":
        return day.strftime("%Y%m%d")
    if fmt == "us_slash":
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if fmt == "eu_slash":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    raise ValueError(fmt)


def ambiguous_day(day: dt.date) -> dt.date:
    """A nearby date whose day and month could swap (both 1..12 and different)."""
    d = min(max(day.day, 1), 12)
    if d == day.month:
        d = d % 12 + 1
    return day.replace(day=d)


_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words for 0 <= n < 1000 (``forty-two``, ``three hundred and five``)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))


def typo(rng: random.Random, word: str, vocabulary: tuple[str, ...]) -> str:
    """One substitution of a letter: one edit away, and not another valid category."""
    letters = [i for i, c in enumerate(word) if c.isalpha() and c.islower()]
    while True:
        i = rng.choice(letters)
        c = rng.choice("abcdefghijklmnopqrstuvwxyz".replace(word[i], ""))
        spoiled = word[:i] + c + word[i + 1 :]
        if spoiled not in vocabulary:
            return spoiled


def leading_zeros(n: int) -> str:
    return f"{n:010d}"
