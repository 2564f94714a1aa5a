-- Sessions, conversations and messages: PostgreSQL's version of ../0001_init.sql, the same
-- tables, columns, constraints and indexes. Timestamps are unix milliseconds (BIGINT).
--
-- Two differences, both kept out of sight by the store:
-- * conversations.seq stands in for SQLite's rowid: the list's tie-break between conversations
--   changed in the same millisecond (the later created first).
-- * title and content are UTF-8 bytes (BYTEA): a message may hold U+0000, which PostgreSQL's
--   TEXT refuses and SQLite's keeps; both stores give back exactly what was stored. Read them
--   in psql with convert_from(content, 'UTF8').
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    title      BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX conversations_by_session ON conversations(session_id, updated_at DESC);
CREATE INDEX conversations_by_age ON conversations(updated_at);

CREATE TABLE messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content         BYTEA NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('complete', 'stopped', 'failed')),
    created_at      BIGINT NOT NULL
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
