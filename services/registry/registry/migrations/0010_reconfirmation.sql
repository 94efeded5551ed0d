-- The facility's opt-in to reconfirmation (issue 18): the matcher asks citizens booked on
-- this posting to reconfirm before the shift and releases those who do not. Default off:
-- a partner that has not implemented `booking.reconfirmed` never loses bookings.
ALTER TABLE postings ADD COLUMN reconfirmation_required boolean NOT NULL DEFAULT false;
