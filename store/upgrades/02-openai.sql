-- v1 -> v2: OpenAI credentials, bots, settings and sessions
-- api_key is sealed with the master key. Bots reference credentials with
-- NO ACTION: a credential in use cannot be deleted, but deleting the
-- instance removes both in one statement.
CREATE TABLE openai_creds (
    id          TEXT   PRIMARY KEY,
    instance_id TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    name        TEXT   NOT NULL,
    api_key     TEXT   NOT NULL,
    key_hint    TEXT   NOT NULL,
    base_url    TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX openai_creds_name_idx ON openai_creds (instance_id, name);

-- Inheritable behaviour (expire, debounceTime, …) is a JSON object whose
-- null fields take the instance settings' values at the time of each message.
CREATE TABLE openai_bots (
    id               TEXT    PRIMARY KEY,
    instance_id      TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    enabled          BOOLEAN NOT NULL,
    description      TEXT    NOT NULL,
    creds_id         TEXT    REFERENCES openai_creds (id),
    bot_type         TEXT    NOT NULL,
    assistant_id     TEXT    NOT NULL,
    function_url     TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    prompts          TEXT    NOT NULL,
    max_tokens       INTEGER,
    trigger_type     TEXT    NOT NULL,
    trigger_operator TEXT    NOT NULL,
    trigger_value    TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    tools            TEXT    NOT NULL,
    behaviour        TEXT    NOT NULL,
    ignore_jids      TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX openai_bots_instance_idx ON openai_bots (instance_id, created_at);
CREATE INDEX openai_bots_creds_idx ON openai_bots (creds_id);

CREATE TABLE openai_settings (
    instance_id  TEXT   PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    creds_id     TEXT   REFERENCES openai_creds (id),
    fallback_id  TEXT   REFERENCES openai_bots (id) ON DELETE SET NULL,
    behaviour    TEXT   NOT NULL,
    ignore_jids  TEXT   NOT NULL,
    transcription_error_message TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX openai_settings_creds_idx ON openai_settings (creds_id);

-- At most one live (opened or paused) session per chat, enforced here so
-- concurrent first messages cannot open two.
CREATE TABLE openai_sessions (
    id                   TEXT   PRIMARY KEY,
    instance_id          TEXT   NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    bot_id               TEXT   NOT NULL REFERENCES openai_bots (id) ON DELETE CASCADE,
    remote_jid           TEXT   NOT NULL,
    push_name            TEXT   NOT NULL,
    status               TEXT   NOT NULL CHECK (status IN ('opened', 'paused', 'closed')),
    paused_until         BIGINT,
    previous_response_id TEXT   NOT NULL,
    close_reason         TEXT   NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    closed_at            BIGINT
);
CREATE UNIQUE INDEX openai_sessions_live_idx ON openai_sessions (instance_id, remote_jid) WHERE status <> 'closed';
CREATE INDEX openai_sessions_chat_idx ON openai_sessions (instance_id, remote_jid, created_at);
CREATE INDEX openai_sessions_bot_idx ON openai_sessions (bot_id, created_at);
