-- v13 -> v14: Fewer index entries written per message: only messages that need them
-- Every message wrote seven index entries, and an inbound message two more
-- when the engine decided on it. These three indexes now hold only the rows
-- their queries can ask for.
--
-- A chat is found by the JID the channel named (chatKeyOf, for a send
-- through the API) among messages kept under another key, a LID chat under
-- its phone number; where the JID is the key, messages_conversation_idx
-- finds it.
DROP INDEX messages_chat_idx;
CREATE INDEX messages_remote_jid_idx ON messages (instance_id, remote_jid, seq) WHERE remote_jid <> chat_key;
-- An inbound message has no bot or session until the engine decides on
-- it, and one it ignores never has: the NULL entries were written and
-- deleted again for nothing. Every query of these indexes (a bot's or a
-- session's messages, the foreign keys' ON DELETE SET NULL) names a value.
DROP INDEX messages_bot_idx;
CREATE INDEX messages_bot_idx ON messages (bot_id, instance_id, chat_key) WHERE bot_id IS NOT NULL;
DROP INDEX messages_session_idx;
CREATE INDEX messages_session_idx ON messages (session_id) WHERE session_id IS NOT NULL;
