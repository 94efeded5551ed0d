-- Commit, then reveal (issue 19, docs/fairness.md): a `draw` posting's seed is drawn when
-- it opens and only its SHA-256 (the commitment) is published; at `applications_close_at`
-- the entry list is frozen and stored, with its hash, before anything is published; then
-- the draw (a pure function of the seed and the frozen list) is written with the revealed
-- record. A matcher that dies between freeze and publication redraws the same outcome.

-- The secret seed of a draw posting: never on a topic, in a log or in an admin view before
-- its draw (`store.draw_commitment` reads only the commitment).
CREATE TABLE draw_seeds (
    posting_id      text PRIMARY KEY REFERENCES postings (posting_id),
    seed            bytea NOT NULL CHECK (length(seed) = 32),
    commitment      text NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$'),
    committed_at    timestamptz NOT NULL
);

-- The frozen entry list and parameters (what `entry_list_hash` fixes), the applicants kept
-- out by their standing at close, and, once drawn, the outcome (entry ids in rank order).
CREATE TABLE draw_freezes (
    posting_id              text PRIMARY KEY REFERENCES postings (posting_id),
    algorithm               text NOT NULL,
    seats                   integer NOT NULL CHECK (seats >= 0),
    waitlist_room           integer NOT NULL CHECK (waitlist_room >= 0),
    half_weight_minutes     integer NOT NULL CHECK (half_weight_minutes >= 1),
    window_months           integer NOT NULL CHECK (window_months >= 1),
    months                  text[] NOT NULL,
    entries                 jsonb NOT NULL,
    excluded                jsonb NOT NULL,
    entry_list_hash         text NOT NULL CHECK (entry_list_hash ~ '^[0-9a-f]{64}$'),
    applications_close_at   timestamptz NOT NULL,
    frozen_at               timestamptz NOT NULL,
    outcome                 jsonb,
    drawn_at                timestamptz,
    CHECK ((outcome IS NULL) = (drawn_at IS NULL))
);

-- Set with the freeze: a later application is refused `applications_closed` (it was not
-- in the list the draw is run on).
ALTER TABLE postings ADD COLUMN draw_frozen_at timestamptz;
