-- v12 -> v13: Console users with their roles in organizations, sign-in sessions, invites and sign-in throttling
-- A user signs in to the console with an email and a password; the email
-- is kept lower-cased, so it is unique whatever case it was typed in. The
-- password is kept as an argon2id hash in PHC string form.
CREATE TABLE users (
    id            TEXT   PRIMARY KEY,
    email         TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_idx ON users (email);

-- A user's role in an organization: owner, admin or agent.
CREATE TABLE memberships (
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role            TEXT   NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, organization_id)
);
CREATE INDEX memberships_org_idx ON memberships (organization_id, created_at);

-- A signed-in browser: only the SHA-256 of its cookie's token is kept.
-- The session acts in the organization chosen at sign-in; its role is read
-- from the membership at each request, so a changed role or a removed
-- member takes effect at once. csrf_token is what state-changing requests
-- must echo; alone it authenticates nothing.
CREATE TABLE console_sessions (
    id              TEXT   PRIMARY KEY,
    token_hash      TEXT   NOT NULL,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    csrf_token      TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX console_sessions_token_idx ON console_sessions (token_hash);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

-- A one-time link to join an organization with a role; only the SHA-256
-- of its token is kept. used_at is set once, by the acceptance.
CREATE TABLE invites (
    id              TEXT   PRIMARY KEY,
    token_hash      TEXT   NOT NULL,
    organization_id TEXT   NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role            TEXT   NOT NULL CHECK (role IN ('owner', 'admin', 'agent')),
    email           TEXT   NOT NULL,
    invited_by      TEXT   REFERENCES users (id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE UNIQUE INDEX invites_token_idx ON invites (token_hash);
CREATE INDEX invites_org_idx ON invites (organization_id, created_at);

-- Failed sign-ins counted per key ("email:…" or "ip:…") in a fixed window,
-- in the database so that the limit holds across replicas.
CREATE TABLE signin_failures (
    key          TEXT    PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start BIGINT  NOT NULL
);
