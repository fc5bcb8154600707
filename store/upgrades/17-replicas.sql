-- v16 -> v17: Replicas and the leases by which each owns its instances
-- Used on PostgreSQL only, where several gateways share the database; a
-- SQLite file belongs to one gateway, which owns every instance. Times are
-- the database's clock in unix milliseconds: replicas never compare their
-- own clocks.
CREATE TABLE replicas (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    -- where the other replicas reach its API, to pass it the requests
    -- that need a WhatsApp connection it holds
    address      TEXT   NOT NULL DEFAULT '',
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

-- epoch grows at every change of owner: a replica's side effects check the
-- epoch it acquired, so one that lost an instance cannot act for it. The
-- lease outlives its instance until the instance's last webhook events
-- (instance.delete) are delivered, by the owner of their lane.
CREATE TABLE instance_owners (
    instance_id TEXT   PRIMARY KEY,
    replica_id  TEXT   NOT NULL,
    epoch       BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE INDEX instance_owners_replica ON instance_owners (replica_id);
