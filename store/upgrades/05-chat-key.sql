-- v4 -> v5: Conversation key of messages
-- One person may write from a phone-number JID or a LID; the channel names
-- the conversation with one key so both are one conversation, while replies
-- still go to remote_jid exactly as received.
ALTER TABLE messages ADD COLUMN chat_key TEXT NOT NULL DEFAULT '';
UPDATE messages SET chat_key = remote_jid;
DROP INDEX messages_pending_idx;
CREATE INDEX messages_pending_idx ON messages (instance_id, chat_key, seq) WHERE state = 'received';
