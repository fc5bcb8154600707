-- v6 -> v7: Reply parts: a bot's answer is stored, split into its messages, before the first goes out
-- Once the model has answered, every message of the reply is stored here in
-- the transaction that records the turn; each row is deleted in the
-- transaction that records its message as sent (messages, send.message).
-- A restart sends the rows left, in seq order, without asking the model
-- again, so no part goes out twice and none is lost. sending is set right
-- before a part leaves on a channel whose send is more than that record
-- (WhatsApp): such a row left by a crash may have gone out, and is not sent
-- again. turn_seq is the first inbound message of the turn answered.
CREATE TABLE reply_parts (
    -- only: postgres
    seq               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- only: sqlite (line commented)
--  seq               INTEGER PRIMARY KEY,
    instance_id       TEXT    NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    chat_key          TEXT    NOT NULL,
    remote_jid        TEXT    NOT NULL,
    turn_seq          BIGINT  NOT NULL,
    text              TEXT    NOT NULL,
    delay_ms          INTEGER NOT NULL,
    bot_id            TEXT    REFERENCES openai_bots (id) ON DELETE SET NULL,
    session_id        TEXT    REFERENCES openai_sessions (id) ON DELETE SET NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms        INTEGER NOT NULL,
    sending           BOOLEAN NOT NULL DEFAULT false,
    created_at        BIGINT  NOT NULL
);
CREATE INDEX reply_parts_chat_idx ON reply_parts (instance_id, chat_key, seq);
