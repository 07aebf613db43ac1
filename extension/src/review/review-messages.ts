/**
 * Checks every message a webview sends before anything acts on it: the shape, the method, and
 * each parameter's type and range. Anything else is refused with a message naming what is wrong.
 */
import { DASHBOARD_METHODS, type DashboardRequests } from '../../../webview/src/dashboard/protocol';
import { type OverrideAction, REVIEW_METHODS, type ReviewFilter, type ReviewRequests } from '../../../webview/src/review/protocol';

export class MessageError extends Error {}

export type Checked<M> = { [K in keyof M]: { id: number; method: K; params: M[K] extends [infer P, unknown] ? P : never } }[keyof M];

const FILTERS: readonly ReviewFilter[] = ['all', 'needs-review', 'auto-selected', 'skipped', 'overridden', 'disagreement', 'low-margin'];
const ACTIONS: readonly OverrideAction[] = ['accept', 'pair', 'swap', 'tie', 'discard'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const int = (o: Obj, k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new MessageError(`${k} must be an integer from ${min} to ${max}`);
  return v;
};
const optInt = (o: Obj, k: string, min = 0): number | undefined => (o[k] === undefined ? undefined : int(o, k, min));
const str = (o: Obj, k: string, max: number): string => {
  const v = o[k];
  if (typeof v !== 'string' || v.length > max) throw new MessageError(`${k} must be a string of at most ${max} characters`);
  return v;
};
const oneOf = <T extends string>(o: Obj, k: string, allowed: readonly T[]): T => {
  const v = o[k];
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new MessageError(`${k} must be one of ${allowed.join(', ')}`);
  return v as T;
};

function envelope(raw: unknown, methods: readonly string[]): { id: number; method: string; params: Obj } {
  if (!isObj(raw) || raw.type !== 'request') throw new MessageError('not a request message');
  const id = int(raw, 'id', 1);
  const method = raw.method;
  if (typeof method !== 'string' || !methods.includes(method)) throw new MessageError(`unknown method ${JSON.stringify(method)}`);
  if (!isObj(raw.params)) throw new MessageError('params must be an object');
  return { id, method, params: raw.params };
}

export function checkReviewMessage(raw: unknown): Checked<ReviewRequests> {
  const { id, method, params: p } = envelope(raw, REVIEW_METHODS);
  switch (method) {
    case 'list':
      return {
        id, method,
        params: {
          round: p.round === null ? null : int(p, 'round', 1),
          filter: oneOf(p, 'filter', FILTERS),
          search: p.search === undefined ? undefined : str(p, 'search', 500),
          offset: int(p, 'offset', 0),
          limit: int(p, 'limit', 1, 500),
          afterSeq: optInt(p, 'afterSeq', 0),
        },
      };
    case 'get':
      return { id, method, params: { id: int(p, 'id', 1) } };
    case 'override':
      return {
        id, method,
        params: {
          trajectoryId: int(p, 'trajectoryId', 1),
          action: oneOf(p, 'action', ACTIONS),
          chosenStepId: optInt(p, 'chosenStepId', 1),
          rejectedStepId: optInt(p, 'rejectedStepId', 1),
          note: p.note === undefined ? undefined : str(p, 'note', 2000),
        },
      };
    case 'undo':
      return { id, method, params: { trajectoryId: int(p, 'trajectoryId', 1) } };
    case 'edit':
      return { id, method, params: { stepId: int(p, 'stepId', 1), text: str(p, 'text', 200_000) } };
    default:
      return { id, method: 'agreement', params: { round: p.round === null ? null : int(p, 'round', 1) } };
  }
}

export function checkDashboardMessage(raw: unknown): Checked<DashboardRequests> {
  const { id } = envelope(raw, DASHBOARD_METHODS);
  return { id, method: 'data', params: {} };
}
