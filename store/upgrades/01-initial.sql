-- v0 -> v1: Instances, webhooks, messages and the webhook outbox
-- Timestamps are unix milliseconds (BIGINT) on both dialects.
CREATE TABLE instances (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    integration  TEXT    NOT NULL,
    number       TEXT,
    token_hash   TEXT    NOT NULL,
    token_prefix TEXT    NOT NULL,
    settings     TEXT    NOT NULL DEFAULT '{}',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX instances_name_idx ON instances (name);
CREATE UNIQUE INDEX instances_number_idx ON instances (number);
CREATE UNIQUE INDEX instances_token_idx ON instances (token_hash);

-- headers and secret are sealed with the master key (AES-256-GCM, base64).
CREATE TABLE webhooks (
    instance_id TEXT    PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    url         TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL,
    by_events   BOOLEAN NOT NULL,
    base64      BOOLEAN NOT NULL,
    events      TEXT    NOT NULL,
    headers     TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE messages (
    -- only: postgres
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- only: sqlite (line commented)
--  seq          INTEGER PRIMARY KEY,
    instance_id  TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    message_id   TEXT    NOT NULL,
    direction    TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    remote_jid   TEXT    NOT NULL,
    participant  TEXT    NOT NULL,
    from_me      BOOLEAN NOT NULL,
    push_name    TEXT    NOT NULL,
    message_type TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    text         TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    sent_at      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX messages_key_idx ON messages (instance_id, message_id, direction);
CREATE INDEX messages_chat_idx ON messages (instance_id, remote_jid, seq);

-- The outbox. lane orders deliveries (the instance id when the event
-- happened); instance_id cascades, except for events that must outlive their
-- instance (instance.delete), which carry a sealed snapshot of their target.
CREATE TABLE webhook_events (
    -- only: postgres
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- only: sqlite (line commented)
--  seq             INTEGER PRIMARY KEY,
    delivery_id     TEXT    NOT NULL,
    instance_id     TEXT    REFERENCES instances (id) ON DELETE CASCADE,
    lane            TEXT    NOT NULL,
    instance_name   TEXT    NOT NULL,
    sender          TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    target          TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    finished_at     BIGINT
);
CREATE UNIQUE INDEX webhook_events_delivery_idx ON webhook_events (delivery_id);
CREATE INDEX webhook_events_pending_idx ON webhook_events (lane, seq) WHERE status = 'pending';
CREATE INDEX webhook_events_instance_idx ON webhook_events (instance_id, seq);
CREATE INDEX webhook_events_finished_idx ON webhook_events (finished_at) WHERE status <> 'pending';
