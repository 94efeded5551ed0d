-- What a cancellation leaves behind (issue 15), so every device and every staff member sees
-- it, not only the browser tab that cancelled:
-- * the note the facility gave with `POST /v1/postings/{id}/cancel` (NULL when none, and for
--   a cancellation by suspension, which takes no note);
-- * for each booking of the roster read model, what it was before it was cancelled
--   (`was_status`), and whether its cancellation arrived once its posting was already
--   cancelled (`ended_with_posting`): the bookings the posting's cancellation ended, which
--   its roster keeps listing. A withdrawal while the posting was open stays out of it.
ALTER TABLE postings ADD COLUMN cancel_note text
    CHECK (cancel_note IS NULL OR length(cancel_note) BETWEEN 1 AND 500);

ALTER TABLE bookings
    ADD COLUMN was_status text CHECK (was_status IN ('confirmed', 'waitlisted')),
    ADD COLUMN ended_with_posting boolean NOT NULL DEFAULT false;

-- Bookings cancelled before this migration: those whose cancellation came at or after their
-- posting's are taken as ended by it (what they were before is not known: NULL).
UPDATE bookings b SET ended_with_posting = true
    FROM postings p
    WHERE p.id = b.posting_id AND p.status = 'cancelled' AND b.status = 'cancelled'
      AND b.cancelled_at >= p.cancelled_at;
