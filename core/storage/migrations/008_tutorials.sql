-- Musubi engine schema v8: tutorial progress (issue 18, docs/tutorials.md).
--
-- tutorial_progress: one row per user and tutorial: the tutorial version the progress refers to,
-- its state, and the user's current sandbox (a throw-away tenant and folder the engine made).
-- `generation` counts the sandboxes made so far, so a fresh one never reuses a cleaned tenant's name.
-- tutorial_steps: the steps a user finished or skipped, with the step's fingerprint at the time
-- (a changed tutorial restarts only the steps whose fingerprint changed).
CREATE TABLE tutorial_progress (
    user_name       VARCHAR NOT NULL,
    tutorial_id     VARCHAR NOT NULL,
    version         INTEGER NOT NULL,
    state           VARCHAR NOT NULL,         -- in_progress | done
    generation      INTEGER NOT NULL,         -- sandboxes made so far (0: none yet)
    sandbox_tenant  VARCHAR,                  -- NULL: no sandbox now (before start, after reset or finish)
    sandbox_project VARCHAR,
    sandbox_path    VARCHAR,
    sandbox_at      TIMESTAMP,
    restarted       VARCHAR NOT NULL,         -- JSON list of step ids a version change restarted
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (user_name, tutorial_id)
);
CREATE TABLE tutorial_steps (
    user_name       VARCHAR NOT NULL,
    tutorial_id     VARCHAR NOT NULL,
    step_id         VARCHAR NOT NULL,
    fingerprint     VARCHAR NOT NULL,         -- tutorials/model.py StepBase.fingerprint at the time
    state           VARCHAR NOT NULL,         -- done | skipped
    marked_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (user_name, tutorial_id, step_id)
);
