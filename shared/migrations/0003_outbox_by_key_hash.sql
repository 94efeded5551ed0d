-- The outbox relay is sharded by the hash of the row's key (shared/shards.py): each process
-- publishes the unpublished rows of its shards, a range of `hashtext(key)`, in id order.
-- This index answers that query in id order with the range checked on the index entries,
-- so rows of other shards cost no table reads (`shared.outbox.DUE_SQL`). It replaces
-- `outbox_unpublished (id)`, which served the one-relay query over every key.
CREATE INDEX outbox_unpublished_by_key_hash ON outbox (id, hashtext(key))
    WHERE published_at IS NULL;
DROP INDEX outbox_unpublished;
