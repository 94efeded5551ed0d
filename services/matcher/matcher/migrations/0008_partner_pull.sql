-- The partner pull API (issue 18): what the partner reads of a posting, a per-posting
-- `version` the partner reconciles by, and the partner's hashed API tokens.

-- What the registry's posting events now carry (optional in the events: NULL for postings
-- published before): the facility's address and contact, and the reserved hourly rate.
ALTER TABLE postings
    ADD COLUMN facility_address text,
    ADD COLUMN facility_contact text,
    ADD COLUMN hourly_rate_won  integer CHECK (hourly_rate_won >= 1),
    ADD COLUMN version          bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN changed_at       timestamptz;

-- The service clock as the services read it (shared/clock.py): the shared test/demo clock
-- when one was set, else the machine's. `clock.shared_clock` exists on every stack (the
-- provisioning creates it) and stays empty in production, where the clock is not moved.
CREATE FUNCTION service_now() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(
        (SELECT now_at + (clock_timestamp() - set_at) FROM clock.shared_clock WHERE id),
        clock_timestamp())
$$;

UPDATE postings SET changed_at = updated_at;
ALTER TABLE postings
    ALTER COLUMN changed_at SET DEFAULT service_now(),
    ALTER COLUMN changed_at SET NOT NULL;

-- `version` grows by one and `changed_at` moves with every change the partner can see:
-- the terms, the status, and the booking counts (which the application triggers of 0001
-- keep) — whatever statement made it, so no write path can forget to bump it. Nothing
-- else sets the two columns.
CREATE FUNCTION postings_partner_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.title, NEW.description, NEW.tags, NEW.facility_name, NEW.facility_dong,
        NEW.facility_address, NEW.facility_contact, NEW.hourly_rate_won, NEW.starts_at,
        NEW.ends_at, NEW.capacity, NEW.selection, NEW.applications_close_at,
        NEW.requires_child_safety_check, NEW.status, NEW.confirmed_count,
        NEW.waitlisted_count)
       IS DISTINCT FROM
       (OLD.title, OLD.description, OLD.tags, OLD.facility_name, OLD.facility_dong,
        OLD.facility_address, OLD.facility_contact, OLD.hourly_rate_won, OLD.starts_at,
        OLD.ends_at, OLD.capacity, OLD.selection, OLD.applications_close_at,
        OLD.requires_child_safety_check, OLD.status, OLD.confirmed_count,
        OLD.waitlisted_count) THEN
        NEW.version := OLD.version + 1;
        -- service_now()'s expression, written out: a trigger runs with the session's
        -- search_path, which need not name this schema (an operator's session).
        NEW.changed_at := greatest(
            coalesce((SELECT now_at + (clock_timestamp() - set_at)
                        FROM clock.shared_clock WHERE id), clock_timestamp()),
            OLD.changed_at);
    ELSE
        NEW.version := OLD.version;
        NEW.changed_at := OLD.changed_at;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER postings_partner_version BEFORE UPDATE ON postings
    FOR EACH ROW EXECUTE FUNCTION postings_partner_version();
-- The partner's list: by last change (then id), optionally one status.
CREATE INDEX postings_changes ON postings (changed_at, posting_id);

-- A citizen's bookings ("my shifts"), soonest first.
CREATE INDEX applications_bookings_by_citizen ON applications (citizen_id, starts_at, booking_id)
    WHERE booking_id IS NOT NULL;

-- The partner's API tokens (`pk_<key id>_<secret>`), stored as SHA-256 hashes only, found
-- by the key id inside the token (shared/auth.py, as the registry's facility keys). A
-- rotation sets `expires_at` of the partner's earlier tokens (the overlap window). The
-- partner id column lets a second partner be added without a new table.
CREATE TABLE partner_tokens (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    partner_id   text NOT NULL CHECK (length(partner_id) BETWEEN 1 AND 100),
    secret_hash  text NOT NULL CHECK (length(secret_hash) = 64),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz
);
CREATE INDEX partner_tokens_partner ON partner_tokens (partner_id);

-- Who issued which token when (append-only): `configured` from PARTNER_API_TOKEN at start,
-- `rotated` by an admin (the admin's label, request id and address).
CREATE TABLE partner_token_audit (
    seq                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                      timestamptz NOT NULL,
    action                  text NOT NULL CHECK (action IN ('configured', 'rotated')),
    partner_id              text NOT NULL,
    key_id                  text NOT NULL,
    previous_valid_until    timestamptz,
    staff                   text,
    staff_id_authenticated  boolean,
    request_id              text,
    client_address          text
);
CREATE FUNCTION partner_token_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the partner token audit is append-only';
END $$;
CREATE TRIGGER partner_token_audit_append_only BEFORE UPDATE OR DELETE ON partner_token_audit
    FOR EACH ROW EXECUTE FUNCTION partner_token_audit_append_only();
