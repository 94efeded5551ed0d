-- Lock a batch's postings and read which of its applications are recorded already, in one
-- round trip (`matcher.store.lock_postings_known`; issue 20). The known applications must
-- be read after the locks are held, with a snapshot of their own (a posting's applications
-- released from the hold by the transaction that held its lock must be seen), which is
-- why this is a function: each statement of a VOLATILE PL/pgSQL function takes a new
-- snapshot (READ COMMITTED), as two statements from the client would.
CREATE FUNCTION lock_postings_known(ids text[], application_ids text[])
    RETURNS TABLE (posting postings, known_application_id text)
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY SELECT p, NULL::text FROM lock_postings(ids) AS p;
    RETURN QUERY
        SELECT NULL::postings, a.application_id FROM applications a
         WHERE a.application_id = ANY(application_ids)
        UNION ALL
        SELECT NULL::postings, h.application_id FROM held_applications h
         WHERE h.application_id = ANY(application_ids);
END $$;
