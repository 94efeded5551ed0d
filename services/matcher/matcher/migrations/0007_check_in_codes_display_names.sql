-- Check-in codes and display names (issue 15).
--
-- Each booking gets a short check-in code when it is made (confirmed or waitlisted); the
-- citizen is told it when the booking holds a seat (booking.confirmed / booking.promoted)
-- and shows it at the door. Unique per posting, so the facility finds one booking by it.
ALTER TABLE applications ADD COLUMN check_in_code text
    CHECK (check_in_code ~ '^[A-Z0-9]{4,12}$');
CREATE UNIQUE INDEX applications_check_in_code ON applications (posting_id, check_in_code)
    WHERE check_in_code IS NOT NULL;

-- The display name the partner sent with the citizen's latest application, if any: part
-- of the profile (cleared with it after the retention, services/matcher/README.md).
ALTER TABLE citizens ADD COLUMN display_name text CHECK (length(display_name) <= 40);
