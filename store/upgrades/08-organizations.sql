-- v7 -> v8: Organizations own instances, credentials and chatbots; chatbots with their keys and avatars
-- transaction: off
-- An organization is a tenant: a business with its instances, provider
-- credentials and chatbots. The default organization is the one the global
-- key acts in when a request names none; everything that existed before
-- organizations moves into it. deleting marks an organization whose
-- deletion has begun: it is invisible at once and a background job removes
-- what it owns, resuming after a restart.
-- The upgrade runs its own transaction: SQLite must rebuild openai_creds
-- with foreign keys off, which cannot change inside a transaction, and the
-- version moves on inside it, so an upgrade interrupted after its commit is
-- not applied twice.
-- only: sqlite
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE organizations (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT false,
    deleting   BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE UNIQUE INDEX organizations_default_idx ON organizations (is_default) WHERE is_default;
CREATE INDEX organizations_deleting_idx ON organizations (id) WHERE deleting;

-- only: postgres for next 2 lines
INSERT INTO organizations (id, name, is_default, created_at, updated_at)
    VALUES (gen_random_uuid()::text, 'Default', true, (extract(epoch FROM now()) * 1000)::bigint, (extract(epoch FROM now()) * 1000)::bigint);
-- only: sqlite for next 5 lines
INSERT INTO organizations (id, name, is_default, created_at, updated_at)
    VALUES (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-'
        || substr('89ab', 1 + abs(random()) % 4, 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))),
        'Default', true, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));

-- Organization API keys: SHA-256 of the key, and a short prefix to tell
-- keys apart; the key itself is shown once.
CREATE TABLE organization_keys (
    id              TEXT   PRIMARY KEY,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_hash        TEXT   NOT NULL,
    key_prefix      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX organization_keys_hash_idx ON organization_keys (key_hash);
CREATE INDEX organization_keys_org_idx ON organization_keys (organization_id, created_at);

-- Every instance belongs to an organization.
-- only: postgres for next 3 lines
ALTER TABLE instances ADD COLUMN organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
UPDATE instances SET organization_id = (SELECT id FROM organizations WHERE is_default);
ALTER TABLE instances ALTER COLUMN organization_id SET NOT NULL;
-- only: sqlite for next 2 lines
ALTER TABLE instances ADD COLUMN organization_id TEXT NOT NULL DEFAULT '' REFERENCES organizations (id) ON DELETE CASCADE;
UPDATE instances SET organization_id = (SELECT id FROM organizations WHERE is_default);
CREATE INDEX instances_organization_idx ON instances (organization_id, created_at);

-- Credentials belong to an organization. Those created through an
-- instance's /openai/creds route keep their instance (names are unique in
-- it, and the instance's bots use them); those created for the whole
-- organization have none (names unique in the organization). is_default
-- marks the organization's default credentials for chatbots that name none.
-- only: postgres for next 5 lines
ALTER TABLE openai_creds ADD COLUMN organization_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE openai_creds ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT false;
UPDATE openai_creds SET organization_id = (SELECT organization_id FROM instances WHERE instances.id = openai_creds.instance_id);
ALTER TABLE openai_creds ALTER COLUMN organization_id SET NOT NULL;
ALTER TABLE openai_creds ALTER COLUMN instance_id DROP NOT NULL;
-- SQLite cannot drop a NOT NULL constraint: the table is rebuilt, with
-- foreign keys off so that the bots and settings that name credentials
-- keep them.
-- only: sqlite until "end only"
CREATE TABLE openai_creds_new (
    id              TEXT    PRIMARY KEY,
    instance_id     TEXT    REFERENCES instances (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    api_key         TEXT    NOT NULL,
    key_hint        TEXT    NOT NULL,
    base_url        TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    organization_id TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    is_default      BOOLEAN NOT NULL DEFAULT false
);
INSERT INTO openai_creds_new (id, instance_id, name, api_key, key_hint, base_url, created_at, updated_at, organization_id)
    SELECT c.id, c.instance_id, c.name, c.api_key, c.key_hint, c.base_url, c.created_at, c.updated_at, i.organization_id
    FROM openai_creds c JOIN instances i ON i.id = c.instance_id;
DROP TABLE openai_creds;
ALTER TABLE openai_creds_new RENAME TO openai_creds;
CREATE UNIQUE INDEX openai_creds_name_idx ON openai_creds (instance_id, name);
-- end only sqlite
CREATE UNIQUE INDEX openai_creds_org_name_idx ON openai_creds (organization_id, name) WHERE instance_id IS NULL;
CREATE UNIQUE INDEX openai_creds_default_idx ON openai_creds (organization_id) WHERE is_default;
CREATE INDEX openai_creds_organization_idx ON openai_creds (organization_id, created_at);

-- A chatbot is an organization's brain: persona, prompt, model, greeting,
-- branding. settings and personality_config are JSON objects kept as the
-- client sent them (deep-merged on update); creds_id is
-- settings.openaiCredsId, a column so that credentials in use cannot be
-- deleted. openai_api_key is a key for this chatbot alone, sealed. The
-- chatbot key authenticates its runtime routes and is stored hashed.
CREATE TABLE chatbots (
    id                  TEXT    PRIMARY KEY,
    organization_id     TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    slug                TEXT    NOT NULL,
    description         TEXT    NOT NULL,
    active              BOOLEAN NOT NULL,
    is_public           BOOLEAN NOT NULL,
    personality_config  TEXT    NOT NULL,
    settings            TEXT    NOT NULL,
    chat_widget_config  TEXT,
    voice_widget_config TEXT,
    creds_id            TEXT    REFERENCES openai_creds (id),
    openai_api_key      TEXT,
    openai_key_hint     TEXT    NOT NULL DEFAULT '',
    key_hash            TEXT    NOT NULL,
    key_prefix          TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE UNIQUE INDEX chatbots_slug_idx ON chatbots (organization_id, slug);
CREATE UNIQUE INDEX chatbots_key_idx ON chatbots (key_hash);
CREATE INDEX chatbots_organization_idx ON chatbots (organization_id, created_at);
CREATE INDEX chatbots_creds_idx ON chatbots (creds_id);

-- Avatar images, in the database so that every replica serves them. A new
-- upload is a new row (and URL); the old one is deleted with it.
CREATE TABLE chatbot_avatars (
    id           TEXT   PRIMARY KEY,
    chatbot_id   TEXT   NOT NULL REFERENCES chatbots (id) ON DELETE CASCADE,
    content_type TEXT   NOT NULL,
-- only: postgres
    data         BYTEA  NOT NULL,
-- only: sqlite
    data         BLOB   NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX chatbot_avatars_chatbot_idx ON chatbot_avatars (chatbot_id);

-- An instance bot may take its brain from a chatbot of the instance's
-- organization; a chatbot named by bots cannot be deleted.
ALTER TABLE openai_bots ADD COLUMN chatbot_id TEXT REFERENCES chatbots (id);
CREATE INDEX openai_bots_chatbot_idx ON openai_bots (chatbot_id);

UPDATE wagate_version SET version = 8, compat = 8;
COMMIT;
-- only: sqlite
PRAGMA foreign_keys = ON;
