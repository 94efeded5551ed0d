-- The sender's due query (matcher.notify) reads pending notifications in `seq` order
-- (ORDER BY seq LIMIT n). Without this index it walks the primary key from the oldest row
-- and filters out every delivered one, so its cost grew with the table (issue 8: 13,646
-- rows read and dropped for 1,000 due at 20,000 notifications); with it, only pending
-- rows are read, in order.
CREATE INDEX partner_notifications_pending_seq ON partner_notifications (seq)
    WHERE status = 'pending';
