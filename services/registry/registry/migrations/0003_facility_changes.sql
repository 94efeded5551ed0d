-- Administration without a developer (issue 15): every change an administrator makes to a
-- facility (registered, edited, suspended, resumed, key rotated) is recorded here with who
-- (role, staff id and whether the client only stated it, request id, address), when (the
-- service's clock and the wall clock) and what (before and after of each changed field).
-- Append-only: rows are never updated or deleted (enforced below the code).
CREATE TABLE facility_changes (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facility_id             text        NOT NULL REFERENCES facilities (id),
    action                  text        NOT NULL CHECK (action IN
                                ('registered', 'edited', 'suspended', 'resumed', 'key_rotated')),
    changes                 jsonb       NOT NULL DEFAULT '{}',
    actor_role              text        NOT NULL,
    actor_staff_id          text,
    staff_id_self_declared  boolean     NOT NULL DEFAULT false,
    request_id              text,
    client_address          text,
    at                      timestamptz NOT NULL,
    recorded_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX facility_changes_facility ON facility_changes (facility_id, id);

CREATE FUNCTION facility_changes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA,
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER facility_changes_append_only BEFORE UPDATE OR DELETE ON facility_changes
    FOR EACH ROW EXECUTE FUNCTION facility_changes_refuse_change();
CREATE TRIGGER facility_changes_no_truncate BEFORE TRUNCATE ON facility_changes
    FOR EACH STATEMENT EXECUTE FUNCTION facility_changes_refuse_change();

-- A refused submission's own cost, so the facility is told what it needs ("this shift needs
-- N won") without the programme's figures (available, shortfall), which stay in
-- `rejection_detail` and in PostingRejected for finance and administrators.
ALTER TABLE postings ADD COLUMN rejection_requested_won bigint
    CHECK (rejection_requested_won >= 0);
