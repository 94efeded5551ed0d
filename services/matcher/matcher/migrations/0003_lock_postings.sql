-- Lock a batch of postings in one round trip (`matcher.store.lock_postings`), exactly as
-- locking them one at a time would: for each id in the given order (callers sort them, so
-- two transactions never wait for each other in a cycle), the posting's advisory lock,
-- which covers a posting whose row does not exist yet, then `FOR UPDATE` on its row,
-- against writers that do not take the advisory lock. Returns the rows of the known ones.
--
-- A function, not one plain statement: a statement's snapshot is taken before it waits
-- for a lock, so a posting inserted by the transaction that held the advisory lock would
-- be invisible to it (its applications would then be held for a posting that is open).
-- Each statement of a VOLATILE PL/pgSQL function takes a new snapshot (READ COMMITTED),
-- so the row is read after its advisory lock is held, as with two separate statements.
CREATE FUNCTION lock_postings(ids text[]) RETURNS SETOF postings
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    wanted text;
    found_row postings;
BEGIN
    FOREACH wanted IN ARRAY ids LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('matcher.posting:' || wanted, 0));
        SELECT * INTO found_row FROM postings WHERE posting_id = wanted FOR UPDATE;
        IF FOUND THEN
            RETURN NEXT found_row;
        END IF;
    END LOOP;
END $$;
