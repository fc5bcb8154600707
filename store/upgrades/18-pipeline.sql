-- v17 -> v18: PostgreSQL checks leases inside statement pipelines, under an advisory lock, and orders outbox lanes without a commit lock
-- A replica checks its lease in each transaction that acts for an
-- instance (store.CheckLease). Sent with the transaction's other
-- statements in one pipeline, the check must stop them itself: this
-- function fails the statement, and so the transaction, when the lease
-- does not hold. When it holds, the instance's lease lock is held shared
-- until the commit, and a replica taking the instance over takes it
-- exclusively (wagate_take_lease), so it waits for every transaction
-- that checked the old lease: what one records is recorded under a lease
-- that held until its commit. The lock is an advisory lock rather than
-- the lease row's FOR SHARE lock, which wrote the row (and a multixact of
-- its lockers) at every check of a busy instance, all of them queueing on
-- the row's page. The first key is "wgls" in ASCII. SQLite has no leases.
-- only: postgres until "end only"
CREATE FUNCTION wagate_check_lease(p_instance TEXT, p_replica TEXT, p_epoch BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(2003266675, hashtext(p_instance));
    PERFORM 1 FROM instance_owners WHERE instance_id = p_instance AND replica_id = p_replica AND epoch = p_epoch
        AND lease_until > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the instance is owned by another replica' USING ERRCODE = 'WG001';
    END IF;
    RETURN TRUE;
END
$$;

-- wagate_take_lease waits for the transactions acting under the
-- instance's current lease (see above) and keeps new ones waiting until
-- the taking transaction ends.
CREATE FUNCTION wagate_take_lease(p_instance TEXT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(2003266675, hashtext(p_instance));
    RETURN TRUE;
END
$$;

-- wagate_found fails a statement that had to find a row and found none
-- (n = 0): an update whose "not found" must undo its transaction, sent in
-- a pipeline with the COMMIT.
CREATE FUNCTION wagate_found(n BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF n = 0 THEN
        RAISE EXCEPTION 'no row found' USING ERRCODE = 'WG002';
    END IF;
    RETURN n;
END
$$;
-- end only postgres

-- Outbox lanes no longer draw their seqs at commit under a lane lock: a
-- busy instance's commits queued on that lock (most of the pool's
-- connections were seen waiting on it). A lane's reader starts every read
-- at the lane's head instead (gateway/webhook), where an event committed
-- late shows up before any event of a transaction that began after it.
-- only: postgres until "end only"
DROP TRIGGER webhook_events_order ON webhook_events;
DROP FUNCTION wagate_event_order();
-- end only postgres
