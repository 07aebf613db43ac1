/**
 * Review panel <-> extension host messages. The host checks every request against this shape
 * before it reaches the engine (extension/src/review/review-messages.ts), and the engine's types
 * are checked against these at compile time in the host. Webview code never imports engine code.
 */
export type ReviewFilter = 'all' | 'needs-review' | 'auto-selected' | 'skipped' | 'overridden' | 'disagreement' | 'low-margin';
export type OverrideAction = 'accept' | 'pair' | 'swap' | 'tie' | 'discard';

export interface ListParams {
  round: number | null;
  filter: ReviewFilter;
  search?: string;
  offset: number;
  limit: number;
  /** Rows after this seq (the previous page's last row): cheap paging deep in a big round. */
  afterSeq?: number;
}

export interface ListItem {
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

export interface ListPage {
  round: number | null;
  total: number;
  reviewed: number;
  all: number;
  items: ListItem[];
}

export type ChatMessage = { role: 'system' | 'user' | 'assistant'; content: string };

export interface Step {
  id: number;
  idx: number;
  origin: 'model' | 'curator';
  editedFromStepId: number | null;
  curator: string | null;
  text: string;
  completionTokens: number | null;
  prompt: string;
  scores: Record<string, { value: number | null; raw: unknown }>;
  createdAt: string;
}

export interface Selection {
  strategy: string;
  status: 'pair' | 'skip';
  chosenStepId: number | null;
  rejectedStepId: number | null;
  reason: string;
  margin: number | null;
}

export interface Override {
  id: number;
  curator: string;
  action: string;
  chosenStepId: number | null;
  rejectedStepId: number | null;
  note: string | null;
  createdAt: string;
  undoneAt: string | null;
}

export interface Trajectory {
  id: number;
  round: number;
  promptId: string;
  prompt: string | ChatMessage[];
  reference: string | null;
  stopReason: string | null;
  steps: Step[];
  selections: Selection[];
  overrides: Override[];
  effective: { chosenStepId: number; rejectedStepId: number; source: 'override' | 'auto' } | null;
}

export interface OverrideParams {
  trajectoryId: number;
  action: OverrideAction;
  chosenStepId?: number;
  rejectedStepId?: number;
  note?: string;
}

export interface AgreementResult {
  round: number | null;
  humanVsStrategy: Record<string, { compared: number; agreed: number; rate: number | null }>;
  curators: { a: string; b: string; items: number; observed: number; kappa: number | null }[];
}

/** webview -> host requests: method -> [params, result]. The host adds the curator's name. */
export type ReviewRequests = {
  list: [ListParams, ListPage];
  get: [{ id: number }, Trajectory];
  override: [OverrideParams, Trajectory];
  undo: [{ trajectoryId: number }, Trajectory];
  edit: [{ stepId: number; text: string }, Trajectory];
  agreement: [{ round: number | null }, AgreementResult];
};

/** host -> webview */
export type ReviewNotification =
  | { kind: 'init'; curator: string; strategy: string; rounds: number[]; focusTrajectory?: number }
  | { kind: 'changed' };

export const REVIEW_METHODS: readonly (keyof ReviewRequests)[] = ['list', 'get', 'override', 'undo', 'edit', 'agreement'];
