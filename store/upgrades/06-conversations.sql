-- v5 -> v6: Conversations: a summary row per chat, indexes for reading history and for retention
-- One row per conversation (instance, chat key), kept up to date in the
-- transaction that stores each message, so listing chats by latest activity
-- reads one small row per chat instead of aggregating every message.
-- last_seq is the seq of the newest message: the listing's order and cursor.
-- unread counts inbound customer messages since the last outbound or
-- operator message. bot_id is the bot of the newest message a bot handled.
CREATE TABLE conversations (
    instance_id       TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    chat_key          TEXT    NOT NULL,
    push_name         TEXT    NOT NULL,
    bot_id            TEXT,
    last_seq          BIGINT  NOT NULL,
    last_at           BIGINT  NOT NULL,
    messages_in       INTEGER NOT NULL,
    messages_out      INTEGER NOT NULL,
    unread            INTEGER NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    PRIMARY KEY (instance_id, chat_key)
);
CREATE INDEX conversations_activity_idx ON conversations (instance_id, last_seq);

INSERT INTO conversations (instance_id, chat_key, push_name, bot_id, last_seq, last_at, messages_in, messages_out,
        unread, prompt_tokens, completion_tokens, created_at)
    SELECT instance_id, chat_key, '', NULL, MAX(seq), MAX(created_at),
        SUM(CASE WHEN direction = 'in' THEN 1 ELSE 0 END), SUM(CASE WHEN direction = 'out' THEN 1 ELSE 0 END),
        0, SUM(prompt_tokens), SUM(completion_tokens), MIN(created_at)
    FROM messages GROUP BY instance_id, chat_key;

-- A chat's messages in order: the messages view and the summary's upkeep.
CREATE INDEX messages_conversation_idx ON messages (instance_id, chat_key, seq);
-- An instance's messages in order: retention takes the oldest, findMessages
-- pages through the newest. It also serves statements that name messages by
-- seq within an instance (the engine marking decided messages): without it
-- SQLite, which keeps no statistics here, reads them through another index
-- on instance_id, that is every message of the instance.
CREATE INDEX messages_seq_idx ON messages (instance_id, seq);
-- Deleting a bot's history finds its chats without reading their messages.
DROP INDEX messages_bot_idx;
CREATE INDEX messages_bot_idx ON messages (bot_id, instance_id, chat_key);

UPDATE conversations SET
    push_name = COALESCE((SELECT m.push_name FROM messages m
        WHERE m.instance_id = conversations.instance_id AND m.chat_key = conversations.chat_key
            AND m.direction = 'in' AND NOT m.from_me AND m.push_name <> '' ORDER BY m.seq DESC LIMIT 1), ''),
    bot_id = (SELECT m.bot_id FROM messages m
        WHERE m.instance_id = conversations.instance_id AND m.chat_key = conversations.chat_key
            AND m.bot_id IS NOT NULL ORDER BY m.seq DESC LIMIT 1),
    unread = (SELECT COUNT(*) FROM messages m
        WHERE m.instance_id = conversations.instance_id AND m.chat_key = conversations.chat_key
            AND m.direction = 'in' AND NOT m.from_me AND m.seq > COALESCE((SELECT MAX(o.seq) FROM messages o
                WHERE o.instance_id = conversations.instance_id AND o.chat_key = conversations.chat_key
                    AND (o.direction = 'out' OR o.from_me)), 0));

-- Why a session has its status: trigger, fallback or api (opened),
-- operator or api (paused), keyword, expire or api (closed), pause expired.
ALTER TABLE openai_sessions ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
UPDATE openai_sessions SET status_reason = close_reason WHERE status = 'closed';
-- Retention deletes closed sessions by age.
CREATE INDEX openai_sessions_closed_idx ON openai_sessions (instance_id, closed_at) WHERE status = 'closed';
