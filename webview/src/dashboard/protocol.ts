/** Dashboard panel <-> extension host messages (see extension/src/review/dashboard-panel.ts). */
import type { Dashboard, EvaluationResults, RoundDashboard } from '../../../engine/src/protocol/engine-types';

// The data shapes are the engine protocol's wire types (a leaf of type declarations).
export type Evaluation = EvaluationResults;
export type RoundData = RoundDashboard;
export type DashboardData = Dashboard;

export type DashboardRequests = {
  data: [Record<string, never>, DashboardData];
};

export type DashboardNotification = { kind: 'init' } | { kind: 'changed' };

export const DASHBOARD_METHODS: readonly (keyof DashboardRequests)[] = ['data'];
