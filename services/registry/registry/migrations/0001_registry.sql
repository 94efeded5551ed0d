-- The registry's own tables: facilities and their keys, postings (with their state machine
-- as a trigger and their invariants as constraints), the pending changes of postings, the
-- roster read model (from matcher.bookings.v1), attendance, and idempotency keys.

CREATE TABLE facilities (
    id                           text PRIMARY KEY CHECK (id LIKE 'fac\_%'),
    name                         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                         text NOT NULL CHECK (kind IN ('children_centre', 'small_library',
                                     'welfare_centre', 'senior_centre', 'park', 'other')),
    dong                         text NOT NULL,
    address                      text,
    contact_phone                text,
    requires_child_safety_check  boolean NOT NULL,
    status                       text NOT NULL DEFAULT 'active'
                                     CHECK (status IN ('active', 'suspended')),
    created_at                   timestamptz NOT NULL,
    suspended_at                 timestamptz,
    CHECK ((status = 'suspended') = (suspended_at IS NOT NULL))
);
CREATE INDEX facilities_page ON facilities (created_at, id);

-- Keys are stored as SHA-256 hashes only; a request finds its row by the key id inside the
-- key and compares one hash in constant time. `expires_at` is set when a key is rotated out.
CREATE TABLE facility_keys (
    key_id       text PRIMARY KEY,
    facility_id  text NOT NULL REFERENCES facilities (id),
    secret_hash  text NOT NULL CHECK (length(secret_hash) = 64),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz
);
CREATE INDEX facility_keys_facility ON facility_keys (facility_id);

CREATE TABLE postings (
    id                           text PRIMARY KEY CHECK (id LIKE 'pst\_%'),
    facility_id                  text NOT NULL REFERENCES facilities (id),
    title                        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description                  text NOT NULL DEFAULT '',
    starts_at                    timestamptz NOT NULL,
    ends_at                      timestamptz NOT NULL,
    capacity                     integer NOT NULL CHECK (capacity >= 1),
    selection                    text NOT NULL CHECK (selection IN ('first_come', 'draw')),
    applications_close_at        timestamptz,
    requires_child_safety_check  boolean NOT NULL,
    tags                         text[] NOT NULL DEFAULT '{}',
    status                       text NOT NULL DEFAULT 'pending_budget' CHECK (status IN
                                     ('pending_budget', 'open', 'rejected', 'cancelled', 'closed')),
    -- revision of the terms: 0 as submitted, n after the n-th accepted change (PostingUpdated)
    revision                     integer NOT NULL DEFAULT 0 CHECK (revision >= 0),
    reservation_id               text,
    reserved_amount_won          bigint CHECK (reserved_amount_won >= 0),
    budget_revision              integer NOT NULL DEFAULT 0 CHECK (budget_revision >= 0),
    rejection_reason             text,
    rejection_detail             text,
    last_update_rejected         jsonb,
    cancel_reason                text CHECK (cancel_reason IN
                                     ('facility', 'facility_suspended', 'admin')),
    created_at                   timestamptz NOT NULL,
    updated_at                   timestamptz NOT NULL,
    published_at                 timestamptz,
    rejected_at                  timestamptz,
    cancelled_at                 timestamptz,
    closed_at                    timestamptz,
    budget_released_at           timestamptz,
    CHECK (ends_at > starts_at),
    CHECK (selection <> 'draw' OR applications_close_at IS NOT NULL),
    CHECK (applications_close_at IS NULL OR applications_close_at <= starts_at),
    -- no open (or later closed) posting without the reservation that funds it
    CHECK (status NOT IN ('open', 'closed') OR reservation_id IS NOT NULL),
    CHECK (status <> 'rejected' OR (rejection_reason IS NOT NULL AND rejected_at IS NOT NULL)),
    CHECK (status <> 'cancelled' OR (cancel_reason IS NOT NULL AND cancelled_at IS NOT NULL)),
    CHECK (status <> 'closed' OR closed_at IS NOT NULL)
);
CREATE INDEX postings_facility_page ON postings (facility_id, created_at, id);
CREATE INDEX postings_open_by_end ON postings (ends_at) WHERE status = 'open';
CREATE INDEX postings_pending ON postings (created_at) WHERE status = 'pending_budget';

-- The state machine, enforced below the code: the same table as domain.TRANSITIONS.
CREATE FUNCTION postings_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'pending_budget' AND NEW.status IN ('open', 'rejected', 'cancelled'))
        OR (OLD.status = 'open' AND NEW.status IN ('cancelled', 'closed'))
    ) THEN
        RAISE EXCEPTION 'posting % cannot go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.facility_id IS DISTINCT FROM OLD.facility_id THEN
        RAISE EXCEPTION 'posting % cannot change facility', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER postings_transition BEFORE UPDATE ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_guard_transition();

-- Each accepted change of a posting, with the terms before it, so that a budget refusal
-- of change n can put the capacity and times back.
CREATE TABLE posting_revisions (
    posting_id                      text NOT NULL REFERENCES postings (id),
    revision                        integer NOT NULL CHECK (revision >= 1),
    changed                         text[] NOT NULL,
    previous_capacity               integer NOT NULL,
    previous_starts_at              timestamptz NOT NULL,
    previous_ends_at                timestamptz NOT NULL,
    previous_applications_close_at  timestamptz,
    capacity                        integer NOT NULL,
    starts_at                       timestamptz NOT NULL,
    ends_at                         timestamptz NOT NULL,
    applications_close_at           timestamptz,
    cause                           text NOT NULL CHECK (cause IN ('facility', 'budget_refused')),
    created_at                      timestamptz NOT NULL,
    PRIMARY KEY (posting_id, revision)
);

-- The roster read model, kept from matcher.bookings.v1. Only what a facility needs to run
-- the shift: a masked display id, never birth dates (the events do not carry them).
CREATE TABLE bookings (
    booking_id         text PRIMARY KEY,
    posting_id         text NOT NULL REFERENCES postings (id),
    application_id     text NOT NULL,
    citizen_id         text NOT NULL,
    citizen_display    text NOT NULL,
    status             text NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled')),
    waitlist_position  integer CHECK (waitlist_position >= 1),
    confirmed_at       timestamptz,
    promoted_at        timestamptz,
    waitlisted_at      timestamptz,
    cancelled_at       timestamptz,
    cancelled_by       text,
    updated_at         timestamptz NOT NULL,
    UNIQUE (booking_id, posting_id),
    CHECK (status <> 'waitlisted' OR waitlist_position IS NOT NULL),
    CHECK (status <> 'confirmed' OR confirmed_at IS NOT NULL)
);
CREATE INDEX bookings_posting ON bookings (posting_id, status);

-- One attendance record per booking, only for a booking of the roster of that posting.
CREATE TABLE attendance (
    attendance_id    text PRIMARY KEY CHECK (attendance_id LIKE 'att\_%'),
    booking_id       text NOT NULL UNIQUE,
    posting_id       text NOT NULL,
    citizen_id       text NOT NULL,
    status           text NOT NULL CHECK (status IN ('attended', 'no_show')),
    minutes          integer NOT NULL CHECK (minutes >= 0),
    checked_in_at    timestamptz,
    checked_out_at   timestamptz,
    revision         integer NOT NULL CHECK (revision >= 1),
    recorded_at      timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    FOREIGN KEY (booking_id, posting_id) REFERENCES bookings (booking_id, posting_id),
    CHECK (status <> 'no_show' OR (minutes = 0 AND checked_in_at IS NULL
                                   AND checked_out_at IS NULL)),
    CHECK (checked_in_at IS NULL OR checked_out_at IS NULL OR checked_out_at >= checked_in_at)
);
CREATE INDEX attendance_posting ON attendance (posting_id);

-- Attendance is recorded only for a booking that holds a seat (confirmed or promoted).
CREATE FUNCTION attendance_guard_booking() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    booking_status text;
BEGIN
    SELECT status INTO booking_status FROM bookings WHERE booking_id = NEW.booking_id;
    IF booking_status IS DISTINCT FROM 'confirmed' THEN
        RAISE EXCEPTION 'booking % is not confirmed (%): no attendance', NEW.booking_id,
            coalesce(booking_status, 'absent') USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER attendance_booking BEFORE INSERT OR UPDATE ON attendance
    FOR EACH ROW EXECUTE FUNCTION attendance_guard_booking();

-- Idempotency-Key answers: unique per (facility, key), written in the transaction of the
-- effect, kept at least the configured retention (by wall-clock time: client retries happen
-- in real time, whatever the shared business clock says).
CREATE TABLE idempotency_keys (
    facility_id       text NOT NULL REFERENCES facilities (id),
    idempotency_key   text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash      text NOT NULL,
    response_status   integer NOT NULL,
    response_body     bytea NOT NULL,  -- the exact bytes first sent, replayed as they were
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (facility_id, idempotency_key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
