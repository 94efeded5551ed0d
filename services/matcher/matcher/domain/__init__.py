"""The matcher's rules as pure code: eligibility, first-come decisions and promotion, the
weighted draw, strikes, and when to retry a partner notification. No I/O here."""
