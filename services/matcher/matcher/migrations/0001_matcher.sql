-- The matcher's state: citizens (pseudonymous), postings as the matcher knows them,
-- applications with their bookings, held applications, draws, strikes and suspensions,
-- attendance minutes, and the partner notifications outbox.
--
-- The invariants of BRIEF §5 live here, not only in code:
--   * confirmed <= capacity per posting: counts kept by a trigger from the application
--     rows themselves, and CHECK (confirmed_count <= capacity);
--   * no overlapping confirmed bookings per citizen: an EXCLUDE constraint on the booked
--     tstzrange (with the citizen as a one-point int8range, so the core GiST range operator
--     class suffices and no extension such as btree_gist is needed);
--   * one live application per (citizen, posting): a partial unique index.

CREATE TABLE citizens (
    citizen_no                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    citizen_id                  text PRIMARY KEY CHECK (citizen_id ~ '^ctz_[a-z0-9]+$'),
    partner_user_id             text NOT NULL UNIQUE,
    display                     text NOT NULL,
    -- The partner's latest profile, kept only for the eligibility rules
    -- (services/matcher/README.md, "Citizen data").
    dong                        text NOT NULL,
    neighbourhood_verified_at   timestamptz NOT NULL,
    birth_date                  date NOT NULL,
    child_safety_check          boolean NOT NULL,
    profile_received_at         timestamptz NOT NULL,
    suspended_until             timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (citizen_id, citizen_no)
);

CREATE TABLE postings (
    posting_id                  text PRIMARY KEY,
    facility_id                 text NOT NULL,
    facility_name               text NOT NULL,
    facility_dong               text NOT NULL,
    title                       text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    tags                        jsonb NOT NULL DEFAULT '[]',
    starts_at                   timestamptz NOT NULL,
    ends_at                     timestamptz NOT NULL,
    capacity                    integer NOT NULL CHECK (capacity >= 1),
    selection                   text NOT NULL CHECK (selection IN ('first_come', 'draw')),
    applications_close_at       timestamptz,
    requires_child_safety_check boolean NOT NULL DEFAULT false,
    status                      text NOT NULL CHECK (status IN ('open', 'closed', 'cancelled')),
    revision                    integer NOT NULL DEFAULT 0,
    confirmed_count             integer NOT NULL DEFAULT 0,
    waitlisted_count            integer NOT NULL DEFAULT 0,
    waitlist_max                integer NOT NULL CHECK (waitlist_max >= 0),
    queue_next                  bigint NOT NULL DEFAULT 1,
    drawn_at                    timestamptz,
    published_at                timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK (confirmed_count >= 0 AND confirmed_count <= capacity),
    CHECK (waitlisted_count >= 0 AND waitlisted_count <= waitlist_max)
);
CREATE INDEX postings_draw_due ON postings ((coalesce(applications_close_at, starts_at)))
    WHERE selection = 'draw' AND drawn_at IS NULL AND status = 'open';

-- One row per application of a posting the matcher knows. A confirmed or waitlisted
-- application is a booking (booking_id); its times are the posting's, copied so the
-- exclusion constraint can see them.
CREATE TABLE applications (
    application_id              text PRIMARY KEY,
    posting_id                  text NOT NULL REFERENCES postings (posting_id),
    citizen_id                  text NOT NULL,
    citizen_no                  bigint NOT NULL,
    webhook_id                  text NOT NULL,
    received_at                 timestamptz NOT NULL,
    status                      text NOT NULL CHECK (status IN
                                    ('pending', 'confirmed', 'waitlisted', 'rejected',
                                     'withdrawn', 'cancelled')),
    reason                      text,
    booking_id                  text UNIQUE,
    queue_pos                   bigint,
    starts_at                   timestamptz NOT NULL,
    ends_at                     timestamptz NOT NULL,
    decided_at                  timestamptz,
    confirmed_at                timestamptz,
    cancelled_at                timestamptz,
    cancelled_by                text CHECK (cancelled_by IN ('citizen', 'facility', 'system')),
    strike                      boolean NOT NULL DEFAULT false,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (citizen_id, citizen_no) REFERENCES citizens (citizen_id, citizen_no),
    CHECK (status NOT IN ('confirmed', 'waitlisted') OR booking_id IS NOT NULL),
    CHECK (status <> 'waitlisted' OR queue_pos IS NOT NULL),
    CHECK (status <> 'rejected' OR reason IS NOT NULL),
    CHECK (ends_at > starts_at),
    CONSTRAINT applications_no_overlap EXCLUDE USING gist (
        int8range(citizen_no, citizen_no, '[]') WITH &&,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status = 'confirmed')
);
CREATE UNIQUE INDEX applications_one_live ON applications (citizen_id, posting_id)
    WHERE status IN ('pending', 'confirmed', 'waitlisted');
CREATE INDEX applications_waitlist ON applications (posting_id, queue_pos)
    WHERE status = 'waitlisted';
CREATE INDEX applications_by_posting ON applications (posting_id, status);
CREATE INDEX applications_confirmed_by_citizen ON applications (citizen_id, starts_at)
    WHERE status = 'confirmed';

-- Posting counts follow the application rows (statement-level: one update per posting per
-- statement, so a bulk insert of thousands of decisions costs one row update).
CREATE FUNCTION applications_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE postings p
       SET confirmed_count = p.confirmed_count + d.confirmed,
           waitlisted_count = p.waitlisted_count + d.waitlisted
      FROM (SELECT posting_id,
                   count(*) FILTER (WHERE status = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE status = 'waitlisted') AS waitlisted
              FROM new_rows GROUP BY posting_id) d
     WHERE p.posting_id = d.posting_id AND (d.confirmed <> 0 OR d.waitlisted <> 0);
    RETURN NULL;
END $$;

CREATE FUNCTION applications_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE postings p
       SET confirmed_count = p.confirmed_count + d.confirmed,
           waitlisted_count = p.waitlisted_count + d.waitlisted
      FROM (SELECT posting_id, sum(c) AS confirmed, sum(w) AS waitlisted
              FROM (SELECT posting_id, (status = 'confirmed')::int AS c,
                           (status = 'waitlisted')::int AS w FROM new_rows
                    UNION ALL
                    SELECT posting_id, -(status = 'confirmed')::int,
                           -(status = 'waitlisted')::int FROM old_rows) x
             GROUP BY posting_id) d
     WHERE p.posting_id = d.posting_id AND (d.confirmed <> 0 OR d.waitlisted <> 0);
    RETURN NULL;
END $$;

CREATE FUNCTION applications_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'applications are history: cancel or withdraw, never delete';
END $$;

CREATE TRIGGER applications_counts_insert AFTER INSERT ON applications
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION applications_counts_on_insert();
CREATE TRIGGER applications_counts_update AFTER UPDATE ON applications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION applications_counts_on_update();
CREATE TRIGGER applications_no_delete BEFORE DELETE ON applications
    FOR EACH ROW EXECUTE FUNCTION applications_refuse_delete();
-- The confirmed count can only change through the application rows: at commit it must equal
-- the number of confirmed rows (so CHECK (confirmed_count <= capacity) is about real rows).
-- (Deferred: NEW is the row as that update left it, so compare the row as it is at commit.)
CREATE FUNCTION postings_confirmed_count_matches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    confirmed integer;
    counted integer;
BEGIN
    SELECT confirmed_count INTO counted FROM postings WHERE posting_id = NEW.posting_id;
    SELECT count(*) INTO confirmed FROM applications
     WHERE posting_id = NEW.posting_id AND status = 'confirmed';
    IF confirmed <> counted THEN
        RAISE EXCEPTION 'posting % says % confirmed but has % confirmed applications',
            NEW.posting_id, counted, confirmed;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER postings_confirmed_count_matches AFTER UPDATE OF confirmed_count
    ON postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION postings_confirmed_count_matches();

-- Applications for a posting the matcher has not seen yet wait here (bounded time) for its
-- PostingPublished; then they are decided, or rejected `unknown_posting`.
CREATE TABLE held_applications (
    seq                         bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    application_id              text PRIMARY KEY,
    posting_id                  text NOT NULL,
    citizen_id                  text NOT NULL REFERENCES citizens (citizen_id),
    webhook_id                  text NOT NULL,
    received_at                 timestamptz NOT NULL,
    held_until                  timestamptz NOT NULL,
    status                      text NOT NULL DEFAULT 'held'
                                    CHECK (status IN ('held', 'released', 'rejected', 'withdrawn')),
    reason                      text,
    resolved_at                 timestamptz
);
CREATE INDEX held_applications_waiting ON held_applications (posting_id, seq)
    WHERE status = 'held';
CREATE INDEX held_applications_expiry ON held_applications (held_until) WHERE status = 'held';

-- The record of every draw: seed, inputs and outcome, enough for an auditor to re-run it.
CREATE TABLE draws (
    posting_id                  text PRIMARY KEY REFERENCES postings (posting_id),
    algorithm                   text NOT NULL,
    salt                        text NOT NULL,
    seed                        text NOT NULL,
    month                       text NOT NULL,
    half_weight_minutes         integer NOT NULL,
    seats                       integer NOT NULL,
    waitlist_room               integer NOT NULL,
    inputs                      jsonb NOT NULL,
    excluded                    jsonb NOT NULL,
    outcome                     jsonb NOT NULL,
    drawn_at                    timestamptz NOT NULL
);

CREATE TABLE strikes (
    strike_id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_id                  text NOT NULL REFERENCES citizens (citizen_id),
    booking_id                  text NOT NULL,
    kind                        text NOT NULL CHECK (kind IN ('no_show', 'late_cancellation')),
    occurred_at                 timestamptz NOT NULL,
    voided_at                   timestamptz,
    UNIQUE (booking_id, kind)
);
CREATE INDEX strikes_by_citizen ON strikes (citizen_id, occurred_at) WHERE voided_at IS NULL;

CREATE TABLE suspensions (
    suspension_id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_id                  text NOT NULL REFERENCES citizens (citizen_id),
    starts_at                   timestamptz NOT NULL,
    ends_at                     timestamptz NOT NULL,
    strike_ids                  bigint[] NOT NULL,
    lifted_at                   timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX suspensions_by_citizen ON suspensions (citizen_id, starts_at);

-- Attendance as the registry recorded it (latest revision): no-shows become strikes;
-- attended minutes per Seoul month weigh the draw.
CREATE TABLE attendance (
    attendance_id               text PRIMARY KEY,
    booking_id                  text NOT NULL,
    posting_id                  text NOT NULL,
    citizen_id                  text NOT NULL,
    status                      text NOT NULL CHECK (status IN ('attended', 'no_show')),
    minutes                     integer NOT NULL CHECK (minutes >= 0),
    month                       text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
    revision                    integer NOT NULL,
    recorded_at                 timestamptz NOT NULL
);
CREATE INDEX attendance_by_citizen_month ON attendance (citizen_id, month);

-- The outbox of HTTP notifications to the partner, written in the decision's transaction.
-- `notification_id` is the `webhook-id` of every attempt, so the partner can deduplicate;
-- notifications of one ordering key (an application/booking, or a posting) are sent in
-- `seq` order, a later one waiting until the earlier is delivered.
CREATE TABLE partner_notifications (
    seq                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id             text NOT NULL UNIQUE,
    type                        text NOT NULL,
    ordering_key                text NOT NULL,
    posting_id                  text,
    application_id              text,
    booking_id                  text,
    payload                     bytea NOT NULL,
    status                      text NOT NULL DEFAULT 'pending'
                                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts                    integer NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    next_attempt_at             timestamptz NOT NULL DEFAULT now(),
    first_attempt_at            timestamptz,
    last_attempt_at             timestamptz,
    last_status_code            integer,
    last_error                  text,
    delivered_at                timestamptz,
    failed_at                   timestamptz
);
CREATE INDEX partner_notifications_due ON partner_notifications (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX partner_notifications_undelivered ON partner_notifications (ordering_key, seq)
    WHERE status <> 'delivered';
CREATE INDEX partner_notifications_failed ON partner_notifications (seq) WHERE status = 'failed';
CREATE INDEX partner_notifications_by_application ON partner_notifications (application_id, seq);
CREATE INDEX partner_notifications_by_posting ON partner_notifications (posting_id, seq);
CREATE INDEX partner_notifications_delivered_at ON partner_notifications (delivered_at)
    WHERE status = 'delivered';
