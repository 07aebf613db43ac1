import type { Connection } from 'vscode-languageserver/node';
import { badInput } from '../errors';
import { addOverride, OVERRIDE_ACTIONS, type OverrideAction, undoOverride } from '../override/overrides';
import { JsonReader } from '../project/config-reader';
import type { Project } from '../project/project';
import {
  AddOverrideRequest, AgreementRequest, DashboardRequest, EditStepRequest, GetTrajectoryRequest, ListTrajectoriesRequest, type StoreChange, UndoOverrideRequest,
} from '../protocol/engine';
import { agreement } from '../review/agreement';
import { dashboard } from '../review/dashboard';
import { editStep } from '../review/edit';
import { getTrajectory, listTrajectories, REVIEW_FILTERS, resolveRound, type TrajectoryDetail } from '../review/queries';
import { referenceScorers } from '../score/create';
import { scoreStep } from '../score/score-steps';

/** What the review handlers need from the server: the open project, error mapping, change events. */
export interface ServerContext {
  open(): Project;
  handle<T>(work: () => T | Promise<T>): Promise<T>;
  changed(...what: StoreChange[]): void;
}

/**
 * Curation requests. Every write is committed before the response is sent, so a reload or a crash
 * loses nothing; parameters are checked here because they come from a webview via the extension.
 */
export function registerReviewHandlers(connection: Connection, ctx: ServerContext): void {
  const detail = (p: Project, id: number): TrajectoryDetail => getTrajectory(p.db, id, p.template, p.config.selection.strategy);

  connection.onRequest(ListTrajectoriesRequest.type, (params) => ctx.handle(() => {
    const r = new JsonReader('aries/listTrajectories', params);
    const round = r.has('round') && params.round !== null ? r.integer('round', 1, 1) : null;
    return listTrajectories(ctx.open().db, {
      round,
      filter: r.oneOf('filter', REVIEW_FILTERS, 'all'),
      search: r.string('search', '') || undefined,
      lowMargin: r.number('lowMargin', 0.5),
      offset: r.integer('offset', 0),
      limit: r.integer('limit', 100, 1, 500),
      afterSeq: r.has('afterSeq') ? r.integer('afterSeq', 0) : undefined,
    });
  }));

  connection.onRequest(GetTrajectoryRequest.type, (params) => ctx.handle(() => {
    const id = new JsonReader('aries/getTrajectory', params).integer('id', -1, 1);
    return detail(ctx.open(), id);
  }));

  connection.onRequest(AddOverrideRequest.type, (params) => ctx.handle(() => {
    const r = new JsonReader('aries/addOverride', params);
    const p = ctx.open();
    const trajectoryId = r.integer('trajectoryId', -1, 1);
    addOverride(p.db, {
      trajectoryId,
      curator: curatorName(r),
      action: r.oneOf('action', OVERRIDE_ACTIONS, 'accept') as OverrideAction,
      chosenStepId: r.has('chosenStepId') ? r.integer('chosenStepId', 0, 1) : undefined,
      rejectedStepId: r.has('rejectedStepId') ? r.integer('rejectedStepId', 0, 1) : undefined,
      strategy: p.config.selection.strategy,
      note: r.has('note') ? r.string('note', '').slice(0, 2000) : undefined,
    });
    ctx.changed('trajectories');
    return detail(p, trajectoryId);
  }));

  connection.onRequest(UndoOverrideRequest.type, (params) => ctx.handle(() => {
    const r = new JsonReader('aries/undoOverride', params);
    const p = ctx.open();
    const trajectoryId = r.integer('trajectoryId', -1, 1);
    undoOverride(p.db, trajectoryId, curatorName(r));
    ctx.changed('trajectories');
    return detail(p, trajectoryId);
  }));

  connection.onRequest(EditStepRequest.type, (params) => ctx.handle(async () => {
    const r = new JsonReader('aries/editStep', params);
    const p = ctx.open();
    const text = r.string('text', '');
    const edited = editStep(p.db, r.integer('stepId', -1, 1), text, curatorName(r));
    // The reference checks are instant, so an edited answer shows its ✓/✗ at once.
    await scoreStep(p.db, edited.id, referenceScorers(p));
    ctx.changed('trajectories');
    return detail(p, edited.trajectoryId);
  }));

  connection.onRequest(AgreementRequest.type, (params) => ctx.handle(() => {
    const r = new JsonReader('aries/agreement', params);
    const p = ctx.open();
    const round = r.has('round') && params.round !== null ? resolveRound(p.db, r.integer('round', 1, 1)) : null;
    return agreement(p.db, round?.id ?? null);
  }));

  connection.onRequest(DashboardRequest.type, () => ctx.handle(() => {
    const p = ctx.open();
    return dashboard(p.db, p.config.selection.strategy);
  }));
}

function curatorName(r: JsonReader): string {
  const name = r.string('curator', '').trim();
  if (!name || name.length > 100) throw badInput('curator must be a name of 1 to 100 characters');
  return name;
}
