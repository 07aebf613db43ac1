import type { Connection } from 'vscode-languageserver/node';
import { badInput } from '../errors';
import { addOverride, OVERRIDE_ACTIONS, type OverrideAction, undoOverride } from '../override/overrides';
import { JsonReader } from '../project/config-reader';
import type { Project } from '../project/project';
import {
  AddOverrideRequest, AgreementRequest, DashboardRequest, EditStepRequest, GetTrajectoryRequest, ListTrajectoriesRequest, UndoOverrideRequest,
} from '../protocol/engine';
import { agreement } from '../review/agreement';
import { dashboard } from '../review/dashboard';
import { editStep } from '../review/edit';
import { getTrajectory, listTrajectories, REVIEW_FILTERS, resolveRound, type TrajectoryDetail } from '../review/queries';
import { SolutionScorer, VerifierScorer } from '../score/verifier';
import { now, parseJson } from '../store/db';
import type { PromptInput } from '../generation/backend';

/** What the review handlers need from the server: the open project, error mapping, change events. */
export interface ServerContext {
  open(): Project;
  handle<T>(work: () => T | Promise<T>): Promise<T>;
  changed(...what: ('rounds' | 'trajectories' | 'models' | 'exports' | 'training' | 'prompts')[]): void;
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
    const trajectory = p.db.prepare('SELECT t.id, pr.reference, pr.prompt_json FROM steps s JOIN trajectories t ON t.id = s.trajectory_id JOIN prompts pr ON pr.id = t.prompt_id WHERE s.id = ?').get(edited.id) as { id: number; reference: string | null; prompt_json: string };
    // The reference checks are instant, so an edited answer shows its ✓/✗ at once (reward models score it with the next `score`).
    const input = { stepId: edited.id, prompt: parseJson<PromptInput>(trajectory.prompt_json, 'prompt') ?? '', response: text, reference: trajectory.reference };
    for (const scorer of [new VerifierScorer(), new SolutionScorer()].filter((s) => p.config.scoring.scorers.includes(s.name))) {
      const [score] = await scorer.score([input]);
      if (score) p.db.prepare('INSERT OR REPLACE INTO scores (step_id, scorer, value, raw_json, created_at) VALUES (?, ?, ?, ?, ?)').run(edited.id, scorer.name, score.value, JSON.stringify(score.raw), now());
    }
    ctx.changed('trajectories');
    return detail(p, trajectory.id);
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
