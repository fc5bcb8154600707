-- v10 -> v11: Contacts and chats as the channel's network reports them
-- A contact is a person the instance knows of: the name they gave
-- themselves (push_name, from their messages or a history sync) and the
-- name in the account's address book (full_name, from app state). Chats
-- hold what the network says about a chat beyond its stored messages (a
-- history sync lists chats whose messages the gateway never received):
-- its name, unread count, archived flag and the time of its newest message.
-- The conversations table stays the summary of stored messages.
CREATE TABLE contacts (
    instance_id TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    jid         TEXT   NOT NULL,
    push_name   TEXT   NOT NULL,
    full_name   TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, jid)
);

CREATE TABLE chats (
    instance_id TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    jid         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    unread      INTEGER NOT NULL,
    archived    BOOLEAN NOT NULL,
    last_at     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (instance_id, jid)
);
CREATE INDEX chats_activity_idx ON chats (instance_id, last_at);
