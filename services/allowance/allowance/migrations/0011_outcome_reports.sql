-- Issue 19 item 3: what the outcome reports need besides the ledger's payout lines and the
-- attendance the allowance already keeps. Facts taken from consumed events, never money
-- (money is read from payout_lines and ledger_entries); each insert is idempotent.

-- Where each posting is, from PostingSubmitted/PostingUpdated: reports group by facility
-- and dong. Postings consumed before this migration have no row (reported as unknown).
CREATE TABLE posting_places (
    posting_id     text PRIMARY KEY,
    facility_id    text NOT NULL,
    facility_name  text NOT NULL,
    facility_dong  text NOT NULL,
    selection      text NOT NULL
);

-- Who applied for what (BookingConfirmed/Waitlisted/Rejected): the citizens a report's
-- spread counts, including those who got nothing.
CREATE TABLE posting_applicants (
    posting_id  text NOT NULL,
    citizen_id  text NOT NULL,
    PRIMARY KEY (posting_id, citizen_id)
);

-- One row per DrawCompleted: its entrants and winners (internal citizen ids) and each
-- entrant's selection probability under the draw's weights, summarised as min and max
-- (domain/outcomes.py; `probability_method` says exact or Monte Carlo with its rounds).
CREATE TABLE draw_outcomes (
    posting_id            text PRIMARY KEY,
    algorithm             text NOT NULL,
    seats                 integer NOT NULL CHECK (seats >= 0),
    entrants              text[] NOT NULL,
    winners               text[] NOT NULL,
    probability_min       double precision CHECK (probability_min BETWEEN 0 AND 1),
    probability_max       double precision CHECK (probability_max BETWEEN 0 AND 1),
    probability_method    text NOT NULL,
    drawn_at              timestamptz NOT NULL,
    source_event_id       uuid NOT NULL UNIQUE
);
