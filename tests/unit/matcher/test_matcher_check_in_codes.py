"""Check-in codes (matcher.domain.checkin): six symbols of an alphabet without look-alikes,
every number of the code space a different code, and a batch of new codes distinct from each
other and from the posting's codes, even when the random source repeats itself."""

from __future__ import annotations

import random
import re

import pytest
from matcher.domain.checkin import CODE_ALPHABET, CODE_LENGTH, code_of, new_codes

from shared.events import CHECK_IN_CODE_PATTERN


def test_the_alphabet_has_no_look_alikes() -> None:
    """Nothing a person at the door could misread: 0/O, 1/I/L, 2/Z, 5/S, 8/B are left out."""
    assert not set("0O1IL2Z5S8B") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET)


def test_codes_are_the_numbers_digits_in_the_alphabet() -> None:
    """The first and last numbers of the space, and one past the end refused."""
    space = len(CODE_ALPHABET) ** CODE_LENGTH
    assert code_of(0) == CODE_ALPHABET[0] * CODE_LENGTH
    assert code_of(space - 1) == CODE_ALPHABET[-1] * CODE_LENGTH
    assert code_of(len(CODE_ALPHABET)) == CODE_ALPHABET[0] * (CODE_LENGTH - 2) + (
        CODE_ALPHABET[1] + CODE_ALPHABET[0]
    )
    with pytest.raises(ValueError):
        code_of(space)
    with pytest.raises(ValueError):
        code_of(-1)


def test_a_code_fits_the_events_pattern() -> None:
    """What the matcher makes is what BookingConfirmed accepts (and the registry stores)."""
    rng = random.Random(7)
    for code in new_codes(500, set(), rng.randrange):
        assert len(code) == CODE_LENGTH
        assert re.fullmatch(CHECK_IN_CODE_PATTERN, code)


def test_new_codes_differ_from_each_other_and_from_the_taken_ones() -> None:
    """A random source that gives the same few numbers again and again still yields
    distinct codes, none of the posting's existing ones."""
    numbers = iter([5, 5, 5, 9, 9, 5, 11, 12, 13])
    taken = {code_of(9)}
    codes = new_codes(3, taken, lambda _n: next(numbers))
    assert codes == [code_of(5), code_of(11), code_of(12)]


def test_a_broken_random_source_does_not_loop_forever() -> None:
    """A source stuck on one taken number is reported, after a bounded number of draws."""
    with pytest.raises(RuntimeError):
        new_codes(1, {code_of(3)}, lambda _n: 3)
