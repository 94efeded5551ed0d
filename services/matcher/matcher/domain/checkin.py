"""Check-in codes: the short code a citizen shows at the door so staff can find the booking.

Six symbols from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B), so a
code read aloud or typed from a phone screen is typed right; 25 symbols give
25**6 ≈ 244 million codes, so random codes rarely meet within one posting, and when they
would, `new_codes` draws again (the database's unique index is the last word).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 6
# Draws per code before giving up: with a posting's few hundred codes out of ~244 million
# a second draw is already rare; this bound only keeps a broken random source from looping.
CODE_DRAWS_MAX = 100


def code_of(number: int) -> str:
    """The code of a number in [0, len(CODE_ALPHABET) ** CODE_LENGTH): its digits in the
    alphabet, most significant first."""
    base = len(CODE_ALPHABET)
    if not 0 <= number < base**CODE_LENGTH:
        raise ValueError("number out of the code space")
    symbols = []
    for _ in range(CODE_LENGTH):
        number, digit = divmod(number, base)
        symbols.append(CODE_ALPHABET[digit])
    return "".join(reversed(symbols))


def new_codes(count: int, taken: Collection[str], randbelow: Callable[[int], int]) -> list[str]:
    """`count` codes, distinct from each other and from `taken` (the posting's codes so
    far). `randbelow(n)` is the random source (`secrets.randbelow` in the service, a seeded
    one in tests)."""
    space = len(CODE_ALPHABET) ** CODE_LENGTH
    chosen: list[str] = []
    seen = set(taken)
    for _ in range(count):
        for _ in range(CODE_DRAWS_MAX):
            code = code_of(randbelow(space))
            if code not in seen:
                break
        else:
            raise RuntimeError("no free check-in code found; is the random source broken?")
        seen.add(code)
        chosen.append(code)
    return chosen
