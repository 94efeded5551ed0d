-- Notices before a booking's start (issue 18): reminders, the opt-in reconfirmation and
-- its release (services/matcher/README.md, "Reminders and reconfirmation").

-- The facility's opt-in (PostingPublished/Updated `reconfirmation_required`); a posting
-- may also require it by a tag named in the matcher's settings.
ALTER TABLE postings ADD COLUMN reconfirmation_required boolean NOT NULL DEFAULT false;

-- When the citizen reconfirmed (the partner's `booking.reconfirmed` webhook).
ALTER TABLE applications ADD COLUMN reconfirmed_at timestamptz;

-- One row per booking and kind of notice sent, written in the transaction that writes the
-- notification: the primary key makes each notice sent once, however often a sweep is
-- interrupted (kill -9) and run again.
CREATE TABLE booking_reminders (
    booking_id   text NOT NULL,
    kind         text NOT NULL CHECK (kind ~ '^(reminder_[0-9]+m|reconfirm_requested)$'),
    sent_at      timestamptz NOT NULL,
    PRIMARY KEY (booking_id, kind)
);

-- The sweep looks for confirmed bookings starting within the next two days.
CREATE INDEX applications_confirmed_by_start ON applications (starts_at)
    WHERE status = 'confirmed';
