-- Tables every service has in its own schema: the transactional outbox (events waiting to be
-- published, written in the same transaction as the state change that caused them) and the
-- idempotent-consumer record (events already applied, written with their effects).

CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    key           text        NOT NULL,
    event_type    text        NOT NULL,
    payload       bytea       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE processed_events (
    event_id      uuid        PRIMARY KEY,
    topic         text        NOT NULL,
    event_type    text        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now()
);

-- Messages this service sent to a DLQ, so an operator (and the invariant checker) can see
-- what was dead-lettered and whether it was replayed, without reading the DLQ topic.
CREATE TABLE dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         text        NOT NULL,
    partition     integer     NOT NULL,
    "offset"      bigint      NOT NULL,
    event_id      uuid,
    error         text        NOT NULL,
    attempts      integer     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);
