-- v9 -> v10: Knowledge bases: a chatbot's sources, their chunks with vectors and full text, and ingestion as durable jobs
-- A source is one file, web page, text or question-and-answer pair of a
-- chatbot's knowledge base. The row is also its ingestion job: status
-- pending or processing (with a lease, so that a job whose worker died is
-- taken up again), then ready or failed. claim names the worker's current
-- attempt: an edit that restarts the job changes it, so an older attempt
-- still running cannot store what it made of the old content. data keeps an uploaded file so that
-- a job resumed after a restart, or a re-run, has it; body is a text
-- source's text (or a Q&A pair's answer, question in title).
CREATE TABLE knowledge_sources (
    id              TEXT    PRIMARY KEY,
    chatbot_id      TEXT    NOT NULL REFERENCES chatbots (id) ON DELETE CASCADE,
    organization_id TEXT    NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    type            TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    url             TEXT    NOT NULL DEFAULT '',
    file_name       TEXT    NOT NULL DEFAULT '',
    content_type    TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL DEFAULT '',
-- only: postgres
    data            BYTEA,
-- only: sqlite
    data            BLOB,
    size            BIGINT  NOT NULL DEFAULT 0,
    status          TEXT    NOT NULL,
    error           TEXT    NOT NULL DEFAULT '',
    note            TEXT    NOT NULL DEFAULT '',
    chunks          INTEGER NOT NULL DEFAULT 0,
    characters      BIGINT  NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     BIGINT  NOT NULL DEFAULT 0,
    claim           TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX knowledge_sources_chatbot_idx ON knowledge_sources (chatbot_id, created_at);
CREATE INDEX knowledge_sources_org_idx ON knowledge_sources (organization_id);
CREATE INDEX knowledge_sources_job_idx ON knowledge_sources (lease_until, created_at) WHERE status IN ('pending', 'processing');

-- A chunk is a passage of a ready source, with its position in it and the
-- heading it sits under. embedding is a float32 little-endian vector (NULL
-- when no embedding model was available). seq is the row number the
-- full-text index refers to.
CREATE TABLE knowledge_chunks (
-- only: postgres
    seq        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
-- only: sqlite
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    source_id  TEXT    NOT NULL REFERENCES knowledge_sources (id) ON DELETE CASCADE,
    chatbot_id TEXT    NOT NULL REFERENCES chatbots (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    heading    TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    tokens     INTEGER NOT NULL,
-- only: postgres
    embedding  BYTEA,
-- only: sqlite
    embedding  BLOB,
-- only: postgres
    tsv        tsvector GENERATED ALWAYS AS (to_tsvector('simple', heading || ' ' || content)) STORED,
    created_at BIGINT  NOT NULL
);
CREATE INDEX knowledge_chunks_source_idx ON knowledge_chunks (source_id, position);
CREATE INDEX knowledge_chunks_chatbot_idx ON knowledge_chunks (chatbot_id, seq);
-- only: postgres
CREATE INDEX knowledge_chunks_tsv_idx ON knowledge_chunks USING GIN (tsv);

-- SQLite's full text is an FTS5 table over the chunks (external content),
-- kept in step by triggers, which also fire on cascading deletes.
-- only: sqlite until "end only"
CREATE VIRTUAL TABLE knowledge_fts USING fts5(heading, content, content='knowledge_chunks', content_rowid='seq',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER knowledge_chunks_ai AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, heading, content) VALUES (new.seq, new.heading, new.content);
END;
CREATE TRIGGER knowledge_chunks_ad AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, heading, content) VALUES ('delete', old.seq, old.heading, old.content);
END;
-- end only sqlite

-- The version of a chatbot's searchable chunks, moved on by every change:
-- a replica's in-memory vector index is current while its version is.
CREATE TABLE knowledge_versions (
    chatbot_id TEXT   PRIMARY KEY REFERENCES chatbots (id) ON DELETE CASCADE,
    version    BIGINT NOT NULL
);

-- The chunks a bot message was grounded on: a JSON array of
-- {chunkId, sourceId, title, similarity}.
ALTER TABLE messages ADD COLUMN sources TEXT;
ALTER TABLE reply_parts ADD COLUMN sources TEXT;

