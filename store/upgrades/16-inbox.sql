-- v15 -> v16: The console user who sent a message from the inbox
-- An agent's reply is an outbound message without a bot; the name of the
-- console user who wrote it is kept with it, as it was when they sent it,
-- so the conversation shows who answered even after the user is gone.
ALTER TABLE messages ADD COLUMN agent_name TEXT NOT NULL DEFAULT '';
