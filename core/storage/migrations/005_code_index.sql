-- Musubi engine schema v5: the code index (issue 11, "Indexing").
--
-- Per tenant and project: the index's state (code_indexes), the files indexed with the hash of
-- their bytes (code_files: a re-index chunks only files whose hash changed), and their chunks
-- (code_chunks).  Chunk ids are never reused within a project: an id always names the same
-- chunk content, so a vector stored under it in the project's FAISS index is always its vector.
-- `dense` says whether the chunk's vector is in the saved FAISS index (set once per batch,
-- in the same commit as the job's checkpoint).  Chunk text is stored here (not in a side file)
-- so that the lexical index and a FAISS index found torn can be rebuilt from this table alone,
-- crash-consistently with the rows.  See docs/search.md#indexing and docs/schema.md.
CREATE TABLE code_indexes (
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,
    root            VARCHAR NOT NULL,         -- the project folder indexed
    model_id        VARCHAR,                  -- the embedding model the vectors were made with
    files           BIGINT NOT NULL,
    chunks          BIGINT NOT NULL,
    dense_chunks    BIGINT NOT NULL,          -- chunks whose vector is in the saved FAISS index
    next_id         BIGINT NOT NULL,          -- the next chunk id to hand out (ids are never reused)
    state           VARCHAR NOT NULL,         -- indexing | ready | failed
    job_id          VARCHAR,                  -- the last index job
    error           VARCHAR,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, project)
);
CREATE TABLE code_files (
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,
    path            VARCHAR NOT NULL,         -- POSIX, relative to the project root
    sha256          VARCHAR NOT NULL,         -- of the file's bytes
    size            BIGINT NOT NULL,
    chunks          INTEGER NOT NULL,
    indexed_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, project, path)
);
CREATE TABLE code_chunks (
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,
    chunk_id        BIGINT NOT NULL,
    path            VARCHAR NOT NULL,
    start_line      INTEGER NOT NULL,         -- 1-based, inclusive
    end_line        INTEGER NOT NULL,         -- 1-based, inclusive
    language        VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,         -- function | method | class | module | section | window
    symbol          VARCHAR NOT NULL,         -- qualified name or heading path; '' if none
    signature       VARCHAR NOT NULL,
    part            INTEGER NOT NULL,         -- 0 whole; 1..n parts of a long body
    hash            VARCHAR NOT NULL,         -- sha256 of (language, symbol, signature, text): path-free
    text            VARCHAR NOT NULL,         -- exactly lines start_line..end_line
    dense           BOOLEAN NOT NULL,         -- its vector is in the saved FAISS index
    PRIMARY KEY (tenant_id, project, chunk_id)
);
CREATE INDEX code_chunks_path ON code_chunks (tenant_id, project, path);
