/**
 * Review panel <-> extension host messages. The host checks every request against this shape
 * before it reaches the engine (extension/src/review/review-messages.ts). The data shapes are the
 * engine protocol's wire types (engine/src/protocol/engine-types.ts, a leaf of type declarations
 * only): webview code imports no other engine code.
 */
import type {
  Agreement, ChatMessage, ListQuery, OverrideDetail, ReviewFilter, SelectionDetail, StepDetail, TrajectoryDetail, TrajectoryListItem, TrajectoryPage,
} from '../../../engine/src/protocol/engine-types';

export type { ChatMessage, ReviewFilter };
export type OverrideAction = 'accept' | 'pair' | 'swap' | 'tie' | 'discard';

/** What the list asks for: the engine's ListQuery without the low-margin threshold (the host's). */
export type ListParams = Omit<ListQuery, 'lowMargin'>;
export type ListItem = TrajectoryListItem;
export type ListPage = TrajectoryPage;
export type Step = StepDetail;
export type Selection = SelectionDetail;
export type Override = OverrideDetail;
export type Trajectory = TrajectoryDetail;
export type AgreementResult = Agreement;

export interface OverrideParams {
  trajectoryId: number;
  action: OverrideAction;
  chosenStepId?: number;
  rejectedStepId?: number;
  note?: string;
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
