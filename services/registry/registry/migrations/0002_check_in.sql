-- Check-in at the door (issue 15): the roster read model keeps each booking's check-in code
-- and the partner's display name (from matcher.bookings.v1), and `check_ins` keeps when a
-- citizen checked in and out by code. Attendance stays in `attendance`: a check-out records
-- it through the same rules as PUT /attendance; staff still correct it there.
ALTER TABLE bookings
    ADD COLUMN check_in_code text,
    ADD COLUMN display_name text;
CREATE INDEX bookings_check_in_code ON bookings (posting_id, check_in_code)
    WHERE check_in_code IS NOT NULL;

CREATE TABLE check_ins (
    booking_id      text PRIMARY KEY,
    posting_id      text NOT NULL,
    checked_in_at   timestamptz NOT NULL,
    checked_out_at  timestamptz,
    updated_at      timestamptz NOT NULL,
    FOREIGN KEY (booking_id, posting_id) REFERENCES bookings (booking_id, posting_id),
    CHECK (checked_out_at IS NULL OR checked_out_at >= checked_in_at)
);
CREATE INDEX check_ins_posting ON check_ins (posting_id);
