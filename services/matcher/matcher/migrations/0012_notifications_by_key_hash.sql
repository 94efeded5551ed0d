-- The partner-notification sender is sharded by the hash of the ordering key
-- (shared/shards.py): each process sends the due notifications of its shards, a range of
-- `hashtext(ordering_key)`, in `seq` order. This index gives the pending rows in `seq`
-- order with that range checked on the index entries, so rows of other shards cost no
-- table reads (`store.DUE_SQL`). It replaces `partner_notifications_pending_seq (seq)`
-- (migration 0002), which served the one-sender query over every key.
CREATE INDEX partner_notifications_pending_seq_hash
    ON partner_notifications (seq, hashtext(ordering_key)) WHERE status = 'pending';
DROP INDEX partner_notifications_pending_seq;
