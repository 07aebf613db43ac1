/** Dashboard panel <-> extension host messages (see extension/src/review/dashboard-panel.ts). */
export interface Evaluation {
  n: number;
  direct: number;
  refineAt: number[];
  meanLength: number[];
}

export interface RoundData {
  round: number;
  status: string;
  policyModel: string;
  trainedModel: string | null;
  evaluation: Evaluation | null;
  trajectories: number;
  overridden: number;
  overrideRate: number | null;
  selection: Record<string, { pairs: number; skipped: number }>;
  exported: { direct: number; refine: number; keep: number; byStrategy: Record<string, number> } | null;
  lengths: { chosen: number | null; rejected: number | null; byStep: (number | null)[] };
  training: { step: number; loss: number | null; margin: number | null; accuracy: number | null }[];
}

export interface DashboardData {
  base: { model: string; evaluation: Evaluation | null };
  rounds: RoundData[];
}

export type DashboardRequests = {
  data: [Record<string, never>, DashboardData];
};

export type DashboardNotification = { kind: 'init' } | { kind: 'changed' };

export const DASHBOARD_METHODS: readonly (keyof DashboardRequests)[] = ['data'];
