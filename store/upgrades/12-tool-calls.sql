-- v11 -> v12: What a bot reply's tools did: the calls the model made and what the functions answered
-- Both are JSON arrays kept with the reply (on each of its parts until they
-- are sent, then on each message) so the conversation shows them beside its
-- sources; NULL for a reply that called no tool.
ALTER TABLE messages ADD COLUMN tool_calls TEXT;
ALTER TABLE messages ADD COLUMN tool_results TEXT;
ALTER TABLE reply_parts ADD COLUMN tool_calls TEXT;
ALTER TABLE reply_parts ADD COLUMN tool_results TEXT;
