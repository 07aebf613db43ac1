/**
 * Versioned schema. Each migration runs once, in its own transaction, in order; the applied
 * versions are recorded in schema_migrations. Never edit a migration that has shipped: add one.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE projects (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  root TEXT NOT NULL,
  config_json TEXT NOT NULL,
  created_at TEXT NOT NULL
);

-- Every policy the project has used: the starting model and one per successful training run.
CREATE TABLE models (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  backend TEXT NOT NULL,                      -- 'onnx' | 'openai'
  path TEXT NOT NULL,                         -- model folder (checkpoint + onnx/) or server model name
  parent_model_id INTEGER REFERENCES models(id),
  trained_in_round_id INTEGER REFERENCES rounds(id),
  training_run_id INTEGER REFERENCES training_runs(id),
  is_current INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX models_one_current ON models(is_current) WHERE is_current = 1;

CREATE TABLE rounds (
  id INTEGER PRIMARY KEY,
  idx INTEGER NOT NULL UNIQUE,                -- 1, 2, 3 ... as people count rounds
  policy_model_id INTEGER NOT NULL REFERENCES models(id),
  status TEXT NOT NULL,                       -- collecting | collected | scored | selected | exported | training | trained | failed
  config_json TEXT NOT NULL,
  timings_json TEXT NOT NULL DEFAULT '{}',   -- seconds spent per phase, summed over attempts
  error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);

CREATE TABLE prompts (
  id TEXT PRIMARY KEY,                        -- the file's id, or 'sha256:<first 16 hex>' of the content
  content_hash TEXT NOT NULL,               -- sha256 of prompt + reference: dedupes rows without an id
  prompt_json TEXT NOT NULL,                  -- a JSON string or a list of chat messages
  search_text TEXT NOT NULL,
  reference TEXT,
  split TEXT NOT NULL DEFAULT 'train',
  source TEXT NOT NULL,                       -- file:line it came from first
  seq INTEGER NOT NULL,                       -- import order, for stable sampling
  created_at TEXT NOT NULL
);
CREATE INDEX prompts_split ON prompts(split, seq);
CREATE INDEX prompts_hash ON prompts(content_hash);

CREATE TABLE evaluations (
  id INTEGER PRIMARY KEY,
  model_id INTEGER NOT NULL REFERENCES models(id),
  round_id INTEGER REFERENCES rounds(id),     -- the round whose training produced the model, if any
  split TEXT NOT NULL,
  config_json TEXT NOT NULL,
  status TEXT NOT NULL,                       -- running | complete
  results_json TEXT,
  created_at TEXT NOT NULL,
  finished_at TEXT
);

-- One question and the model's answer plus its self-refinements, for a round (collect) or an evaluation.
CREATE TABLE trajectories (
  id INTEGER PRIMARY KEY,
  round_id INTEGER REFERENCES rounds(id),
  evaluation_id INTEGER REFERENCES evaluations(id),
  prompt_id TEXT NOT NULL REFERENCES prompts(id),
  model_id INTEGER NOT NULL REFERENCES models(id),
  status TEXT NOT NULL,                       -- open | complete
  stop_reason TEXT,                           -- 'max_steps' | 'repeated'
  seq INTEGER NOT NULL,                       -- position in its round / evaluation
  created_at TEXT NOT NULL,
  CHECK ((round_id IS NULL) != (evaluation_id IS NULL))
);
CREATE UNIQUE INDEX trajectories_round_prompt ON trajectories(round_id, prompt_id) WHERE round_id IS NOT NULL;
CREATE UNIQUE INDEX trajectories_eval_prompt ON trajectories(evaluation_id, prompt_id) WHERE evaluation_id IS NOT NULL;
CREATE INDEX trajectories_round_seq ON trajectories(round_id, seq);

-- y0 (idx 0) and refinements y1..yK. Curator edits are extra rows (origin 'curator') that point at the original.
CREATE TABLE steps (
  id INTEGER PRIMARY KEY,
  trajectory_id INTEGER NOT NULL REFERENCES trajectories(id),
  idx INTEGER NOT NULL,
  origin TEXT NOT NULL DEFAULT 'model',       -- model | curator
  edited_from_step_id INTEGER REFERENCES steps(id),
  curator TEXT,
  text TEXT NOT NULL,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  finish_reason TEXT,
  model_id INTEGER REFERENCES models(id),
  sampling_json TEXT,
  seed INTEGER,
  duration_ms REAL,
  created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX steps_model_position ON steps(trajectory_id, idx) WHERE origin = 'model';
CREATE INDEX steps_trajectory ON steps(trajectory_id, idx);

CREATE TABLE scores (
  id INTEGER PRIMARY KEY,
  step_id INTEGER NOT NULL REFERENCES steps(id),
  scorer TEXT NOT NULL,
  value REAL,
  raw_json TEXT,
  created_at TEXT NOT NULL,
  UNIQUE(step_id, scorer)
);

-- What an automatic strategy picked from a trajectory (or why it skipped it).
CREATE TABLE selections (
  id INTEGER PRIMARY KEY,
  trajectory_id INTEGER NOT NULL REFERENCES trajectories(id),
  strategy TEXT NOT NULL,                     -- rm | rule | verifier
  status TEXT NOT NULL,                       -- pair | skip
  chosen_step_id INTEGER REFERENCES steps(id),
  rejected_step_id INTEGER REFERENCES steps(id),
  reason TEXT NOT NULL,
  margin REAL,
  created_at TEXT NOT NULL,
  UNIQUE(trajectory_id, strategy)
);

-- A curator's decision; the latest one that is not undone wins over every automatic selection.
CREATE TABLE overrides (
  id INTEGER PRIMARY KEY,
  trajectory_id INTEGER NOT NULL REFERENCES trajectories(id),
  curator TEXT NOT NULL,
  action TEXT NOT NULL,                       -- accept | pair | swap | tie | discard
  chosen_step_id INTEGER REFERENCES steps(id),
  rejected_step_id INTEGER REFERENCES steps(id),
  selection_id INTEGER REFERENCES selections(id),
  note TEXT,
  created_at TEXT NOT NULL,
  undone_at TEXT
);
CREATE INDEX overrides_trajectory ON overrides(trajectory_id, id);

CREATE TABLE exports (
  id INTEGER PRIMARY KEY,
  round_id INTEGER NOT NULL REFERENCES rounds(id),
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  counts_json TEXT NOT NULL,
  config_json TEXT NOT NULL,
  created_at TEXT NOT NULL
);

CREATE TABLE training_runs (
  id INTEGER PRIMARY KEY,
  round_id INTEGER NOT NULL REFERENCES rounds(id),
  export_id INTEGER NOT NULL REFERENCES exports(id),
  base_model_id INTEGER NOT NULL REFERENCES models(id),
  output_model_id INTEGER REFERENCES models(id),
  status TEXT NOT NULL,                       -- running | succeeded | failed | cancelled
  command_json TEXT NOT NULL,
  config_json TEXT NOT NULL,
  output_dir TEXT NOT NULL,
  log_path TEXT NOT NULL,
  pid INTEGER,
  exit_code INTEGER,
  error TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT
);

CREATE TABLE training_metrics (
  run_id INTEGER NOT NULL REFERENCES training_runs(id),
  step INTEGER NOT NULL,
  epoch REAL,
  metrics_json TEXT NOT NULL,
  PRIMARY KEY (run_id, step)
);
`,
  },
  {
    version: 2,
    name: 'review: per-trajectory flags and full-text search',
    sql: `
-- Denormalised review state, kept current by selection and override writes, so the review list
-- can filter and count a million-step project from one index.
ALTER TABLE trajectories ADD COLUMN auto_status TEXT;          -- the exported strategy's outcome: pair | skip
ALTER TABLE trajectories ADD COLUMN margin REAL;               -- that strategy's margin
ALTER TABLE trajectories ADD COLUMN disagreement INTEGER NOT NULL DEFAULT 0;  -- strategies picked differently
ALTER TABLE trajectories ADD COLUMN override_action TEXT;      -- the live override's action, if any
-- Covers the review list: rows of a round in seq order with every flag a filter reads, so a page
-- or a count never touches the table.
CREATE INDEX trajectories_review ON trajectories(round_id, status, seq, override_action, auto_status, disagreement, margin);

-- How many of a round's trajectories sit in each review bucket, kept by triggers, so the list's
-- counts ("n reviewed of N", each group's size) cost one small read at any project size.
CREATE TABLE review_counts (
  round_id INTEGER NOT NULL,
  status TEXT NOT NULL,
  overridden INTEGER NOT NULL,
  auto_status TEXT NOT NULL,                   -- '' when not selected
  disagreement INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (round_id, status, overridden, auto_status, disagreement)
) WITHOUT ROWID;
CREATE TRIGGER review_counts_insert AFTER INSERT ON trajectories WHEN new.round_id IS NOT NULL BEGIN
  INSERT INTO review_counts VALUES (new.round_id, new.status, new.override_action IS NOT NULL, IFNULL(new.auto_status, ''), new.disagreement, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER review_counts_update AFTER UPDATE OF status, override_action, auto_status, disagreement ON trajectories
  WHEN old.round_id IS NOT NULL AND (old.status IS NOT new.status OR (old.override_action IS NULL) != (new.override_action IS NULL)
    OR old.auto_status IS NOT new.auto_status OR old.disagreement != new.disagreement) BEGIN
  UPDATE review_counts SET n = n - 1 WHERE round_id = old.round_id AND status = old.status AND overridden = (old.override_action IS NOT NULL)
    AND auto_status = IFNULL(old.auto_status, '') AND disagreement = old.disagreement;
  INSERT INTO review_counts VALUES (new.round_id, new.status, new.override_action IS NOT NULL, IFNULL(new.auto_status, ''), new.disagreement, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER review_counts_delete AFTER DELETE ON trajectories WHEN old.round_id IS NOT NULL BEGIN
  UPDATE review_counts SET n = n - 1 WHERE round_id = old.round_id AND status = old.status AND overridden = (old.override_action IS NOT NULL)
    AND auto_status = IFNULL(old.auto_status, '') AND disagreement = old.disagreement;
END;

CREATE VIRTUAL TABLE steps_fts USING fts5(text, content='steps', content_rowid='id');
CREATE TRIGGER steps_fts_insert AFTER INSERT ON steps BEGIN
  INSERT INTO steps_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER steps_fts_delete AFTER DELETE ON steps BEGIN
  INSERT INTO steps_fts(steps_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER steps_fts_update AFTER UPDATE OF text ON steps BEGIN
  INSERT INTO steps_fts(steps_fts, rowid, text) VALUES ('delete', old.id, old.text);
  INSERT INTO steps_fts(rowid, text) VALUES (new.id, new.text);
END;
INSERT INTO steps_fts(rowid, text) SELECT id, text FROM steps;

CREATE VIRTUAL TABLE prompts_fts USING fts5(search_text, content='prompts', content_rowid='rowid');
CREATE TRIGGER prompts_fts_insert AFTER INSERT ON prompts BEGIN
  INSERT INTO prompts_fts(rowid, search_text) VALUES (new.rowid, new.search_text);
END;
CREATE TRIGGER prompts_fts_delete AFTER DELETE ON prompts BEGIN
  INSERT INTO prompts_fts(prompts_fts, rowid, search_text) VALUES ('delete', old.rowid, old.search_text);
END;
INSERT INTO prompts_fts(rowid, search_text) SELECT rowid, search_text FROM prompts;
`,
  },
];
