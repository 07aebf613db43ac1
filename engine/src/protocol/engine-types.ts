/**
 * The wire types of the extension <-> engine protocol (engine/src/protocol/engine.ts): what the
 * requests carry and answer, owned here so the protocol imports nothing of the engine (it is a
 * leaf; the engine's rooms import these and fill them in). The extension and the webviews see
 * only these shapes.
 */

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string;
}

/** A plain string, or a chat. Backends with a chat template wrap a string as one user message. */
export type PromptInput = string | ChatMessage[];

export interface EvaluationResults {
  evaluationId: number;
  modelId: number;
  n: number;
  /** Accuracy of the first answer y0. */
  direct: number;
  /** refineAt[k-1] = accuracy after k self-refinements (a trajectory that stopped early keeps its last answer). */
  refineAt: number[];
  /** Mean characters of the answer at each step. */
  meanLength: number[];
  /**
   * Inference-time selection by an oracle verifier: the share of prompts where any of y0..yK is
   * right — the ceiling of picking one answer of the trajectory (by a reward model, by a rule).
   * Absent in evaluations stored before it was computed.
   */
  anyCorrect?: number;
  /**
   * ARIES inference by the rule: per prompt the last refinement yK, or y0 when the rule's length
   * guard (selection.maxLengthRatio) skips it, then judged by the verifier. Absent in older evaluations.
   */
  ruleSelected?: number;
  /** ARIES inference by the reward model `rmScorer` (selection.rmScorer): per prompt its highest-scored step. */
  rmSelected?: number;
  rmScorer?: string;
}

export interface ExportCounts {
  total: number;
  direct: number;
  refine: number;
  keep: number;
  pairs: number;
  skipped: number;
  overridden: number;
  byStrategy: Record<string, number>;
}

/**
 * Import prompts from JSONL (one object per line) or JSON (an array, or {"prompts": [...]}).
 * A row: {"prompt": string | messages} or {"messages": [...]}, optional "id", optional
 * "reference" / "answer" (what the verifier compares with). The whole file is validated before
 * anything is written and then inserted in one transaction: a bad file imports nothing.
 * Re-importing is idempotent: rows with an id are matched by id, rows without by content hash.
 */
export interface ImportResult {
  file: string;
  split: string;
  added: number;
  unchanged: number;
  total: number;
}

/**
 * How often people agree with the automatic strategies, and with each other.
 * A decision is compared as a label: "c>r" with the step positions of chosen and rejected
 * (e.g. "3>0": last refinement over first answer), or "none" (tie, discard, or a skip).
 */
export interface Agreement {
  round: number | null;
  /** Per strategy: trajectories a person decided that the strategy also judged, and how many matched. */
  humanVsStrategy: Record<string, { compared: number; agreed: number; rate: number | null }>;
  /** Per pair of curators who labelled the same trajectories: Cohen's kappa. */
  curators: { a: string; b: string; items: number; observed: number; kappa: number | null }[];
}

/** Everything the round dashboard draws, per round. Lengths are in characters. */
export interface RoundDashboard {
  round: number;
  status: string;
  policyModel: string;
  trainedModel: string | null;
  /** Held-out accuracy of the model this round trained. */
  evaluation: EvaluationResults | null;
  trajectories: number;
  overridden: number;
  overrideRate: number | null;
  selection: Record<string, { pairs: number; skipped: number }>;
  exported: { direct: number; refine: number; keep: number; byStrategy: Record<string, number> } | null;
  /** Length-bias monitor: mean length of chosen vs rejected in the pairs export would use, and of each step. */
  lengths: { chosen: number | null; rejected: number | null; byStep: (number | null)[] };
  training: { step: number; loss: number | null; margin: number | null; accuracy: number | null }[];
}

export interface Dashboard {
  base: { model: string; evaluation: EvaluationResults | null };
  rounds: RoundDashboard[];
}

/**
 * What the review list can be narrowed to. The first four split a round without overlap (the
 * Trajectories view shows them as groups):
 *   needs-review   no override, and the computed strategies disagree or none has run yet
 *   auto-selected  no override, the exported strategy picked a pair and the others agree
 *   skipped        no override, the exported strategy skipped it and the others agree
 *   overridden     a person decided (the latest live override)
 */
export type ReviewFilter = 'all' | 'needs-review' | 'auto-selected' | 'skipped' | 'overridden' | 'disagreement' | 'low-margin';

export interface ListQuery {
  /** Round index (1, 2, …); null = the newest round. */
  round: number | null;
  filter: ReviewFilter;
  /** Full-text search over prompts and responses (words are ANDed). */
  search?: string;
  /** low-margin: margin below this. */
  lowMargin?: number;
  offset: number;
  limit: number;
  /**
   * Keyset paging: rows after this seq (the last row of the page before), instead of skipping
   * `offset` rows; what scrolling uses, so a page deep in a big round costs what the first does.
   */
  afterSeq?: number;
}

export interface TrajectoryListItem {
  id: number;
  seq: number;
  promptId: string;
  preview: string;
  steps: number;
  autoStatus: 'pair' | 'skip' | null;
  margin: number | null;
  disagreement: boolean;
  override: string | null;
}

export interface TrajectoryPage {
  round: number | null;
  total: number;
  /** A search matched more than SEARCH_CAP trajectories; only the first SEARCH_CAP are listed. */
  capped?: boolean;
  /** Trajectories of the round with a live override, and all complete ones: "n reviewed of N". */
  reviewed: number;
  all: number;
  items: TrajectoryListItem[];
}

export interface StepDetail {
  id: number;
  idx: number;
  origin: 'model' | 'curator';
  editedFromStepId: number | null;
  curator: string | null;
  text: string;
  completionTokens: number | null;
  /** The prompt the model answered at this step: x, or refine(x, y(k-1)). */
  prompt: string;
  scores: Record<string, { value: number | null; raw: unknown }>;
  createdAt: string;
}

export interface SelectionDetail {
  strategy: string;
  status: 'pair' | 'skip';
  chosenStepId: number | null;
  rejectedStepId: number | null;
  reason: string;
  margin: number | null;
}

export interface OverrideDetail {
  id: number;
  curator: string;
  action: string;
  chosenStepId: number | null;
  rejectedStepId: number | null;
  note: string | null;
  createdAt: string;
  undoneAt: string | null;
}

export interface TrajectoryDetail {
  id: number;
  round: number;
  promptId: string;
  prompt: PromptInput;
  reference: string | null;
  stopReason: string | null;
  steps: StepDetail[];
  selections: SelectionDetail[];
  /** Newest first, undone ones included. */
  overrides: OverrideDetail[];
  /** What export will use: the live override, else the exported strategy's pair. */
  effective: { chosenStepId: number; rejectedStepId: number; source: 'override' | 'auto' } | null;
}

/** One line of the per-round table `aries run` prints. */
export interface RoundReport {
  round: number;
  model: string;
  evaluation: EvaluationResults | null;
  /** Rows of the export the round trained on, by kind (keep: 0 when the export had none). */
  pairs: { direct: number; refine: number; keep: number };
  trainLoss: number | null;
  rewardMargin: number | null;
  rewardAccuracy: number | null;
  seconds: Record<string, number>;
}

export interface RunReport {
  base: { model: string; evaluation: EvaluationResults | null };
  rounds: RoundReport[];
}

export interface ProjectStats {
  project: string;
  database: string;
  schemaVersion: number;
  prompts: Record<string, number>;
  rounds: { round: number; status: string; trajectories: number; steps: number; overrides: number; error: string | null }[];
  selections: Record<string, Record<string, number>>;
  models: { id: number; name: string; parent: number | null; round: number | null; current: boolean; path: string }[];
  exports: number;
  trainingRuns: Record<string, number>;
  integrity?: string;
}

export interface ExportEntry {
  id: number;
  round: number;
  path: string;
  sha256: string;
  counts: ExportCounts | null;
  createdAt: string;
}

export interface TrainingRunEntry {
  id: number;
  round: number;
  /** running | succeeded | failed | cancelled */
  status: string;
  logPath: string;
  outputDir: string;
  baseModel: string;
  /** The model the run produced (succeeded runs only). */
  model: string | null;
  exitCode: number | null;
  error: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** The last logged step and its metrics (loss, rewards/margins, …), if any. */
  steps: number;
  lastMetrics: Record<string, number | null> | null;
}

/**
 * The Trajectories view: a round's complete trajectories split into four groups that do not
 * overlap, so a curator sees where to look first.
 *   overridden     a person decided (the latest live override)
 *   needs-review   no override, and the computed strategies disagree or none has run yet
 *   auto-selected  no override, the exported strategy picked a pair and the others agree
 *   skipped        no override, the exported strategy skipped it and the others agree
 */
export type TrajectoryGroupName = 'needs-review' | 'auto-selected' | 'overridden' | 'skipped';

export interface TrajectoryGroupItem {
  id: number;
  seq: number;
  promptId: string;
  /** The start of the prompt text. */
  preview: string;
  /** Model steps: the first answer and its refinements. */
  steps: number;
  /** Why it is in its group, in a line ("verifier: step 2 over step 0", "rule skip: …"). */
  detail: string;
}

export interface TrajectoryGroups {
  /** Round index, or null when the project has no round yet. */
  round: number | null;
  /** The exported strategy the groups are judged by. */
  strategy: string;
  total: number;
  groups: { name: TrajectoryGroupName; count: number; items: TrajectoryGroupItem[] }[];
}
