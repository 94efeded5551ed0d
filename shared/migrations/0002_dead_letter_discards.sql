-- Dead letters an operator looked at and decided not to replay (`gwangsan dlq discard`),
-- with who, when and why: a triaged dead letter stops failing the invariant checker, and
-- the decision stays on record. One row per DLQ message, never updated or deleted.
CREATE TABLE dead_letter_discards (
    dlq_topic         text        NOT NULL,
    dlq_partition     integer     NOT NULL,
    dlq_offset        bigint      NOT NULL,
    source_topic      text        NOT NULL,
    source_partition  integer,
    source_offset     bigint,
    reason            text        NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 1000),
    discarded_by      text        NOT NULL CHECK (length(btrim(discarded_by)) BETWEEN 1 AND 200),
    discarded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);

CREATE FUNCTION dead_letter_discards_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'dead_letter_discards is append-only';
END $$;

CREATE TRIGGER dead_letter_discards_append_only
    BEFORE UPDATE OR DELETE ON dead_letter_discards
    FOR EACH ROW EXECUTE FUNCTION dead_letter_discards_append_only();
