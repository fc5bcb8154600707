-- v2 -> v3: Bot engine: message processing state, token usage and conversation history
-- Inbound messages wait in state 'received' until the engine decides on them:
-- the table is the engine's queue and debounce buffer, so nothing accepted
-- is lost across a restart.
ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT 'received';
ALTER TABLE messages ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN ignore_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN mentions_me BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE messages ADD COLUMN quoted_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN bot_id TEXT REFERENCES openai_bots (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN session_id TEXT REFERENCES openai_sessions (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;
-- Messages stored before the engine existed are not answered now.
UPDATE messages SET state = CASE WHEN direction = 'out' THEN 'sent' ELSE 'ignored' END,
    state_reason = CASE WHEN direction = 'out' THEN '' ELSE 'received before the bot engine' END;
CREATE INDEX messages_pending_idx ON messages (instance_id, remote_jid, seq) WHERE state = 'received';
CREATE INDEX messages_session_idx ON messages (session_id);
CREATE INDEX messages_bot_idx ON messages (bot_id);

-- One row per turn of a session's conversation, as sent to the model.
CREATE TABLE openai_history (
    -- only: postgres
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- only: sqlite (line commented)
--  seq        INTEGER PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES openai_sessions (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    tokens     INTEGER NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX openai_history_session_idx ON openai_history (session_id, seq);
