-- v8 -> v9: Web chat: visitors' leads, answers cut short, public lookup of chatbots by slug
-- A chatbot's web chat is an internal WEBCHAT instance of its organization
-- (named webchat-<chatbotId>) with one bot answering as the chatbot, so its
-- conversations are stored, decided and reported like any other channel's.
-- What only the web chat has lives here.

-- A lead: the email a visitor gave when the chatbot asks for one before
-- chatting (settings.isRequestUserInfoEnabled). One per visitor.
CREATE TABLE webchat_leads (
    id          TEXT   PRIMARY KEY,
    chatbot_id  TEXT   NOT NULL REFERENCES chatbots (id) ON DELETE CASCADE,
    session_id  TEXT   NOT NULL,
    platform    TEXT   NOT NULL,
    sns_user_id TEXT   NOT NULL,
    email       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX webchat_leads_visitor_idx ON webchat_leads (chatbot_id, platform, sns_user_id);
CREATE INDEX webchat_leads_chatbot_idx ON webchat_leads (chatbot_id, created_at, id);

-- Bot replies whose streaming stopped because the visitor went away: what
-- the model had produced was kept, and is shown as partial.
CREATE TABLE webchat_partials (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    message_id  TEXT NOT NULL,
    PRIMARY KEY (instance_id, message_id)
);

-- The hosted page /c/<slug> finds a public chatbot by slug across
-- organizations: the oldest one holding it.
CREATE INDEX chatbots_public_slug_idx ON chatbots (slug, created_at) WHERE is_public;
