-- v3 -> v4: The WhatsApp device each instance is paired with
-- device_jid is the full device JID (user:device@s.whatsapp.net) under which
-- whatsmeow's device store (its own whatsmeow_* tables, versioned apart in
-- whatsmeow_version) keeps the session; NULL while the instance is not paired.
ALTER TABLE instances ADD COLUMN device_jid TEXT;
