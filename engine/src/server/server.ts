import { resolve } from 'node:path';
import { type CancellationToken, type Connection, ResponseError, StreamMessageReader, StreamMessageWriter, createConnection } from 'vscode-languageserver/node';
import { type EngineError, asEngineError, EngineError as EngineErrorClass } from '../errors';
import type { Logger } from '../log';
import { currentModel } from '../model/registry';
import type { JobControl } from '../progress';
import { initProject } from '../project/init';
import { closeProject, openProject, type Project } from '../project/project';
import { importPromptFiles } from '../prompt/import';
import {
  type EngineSettings, ErrorCodes, EvaluateRequest, ExportRequest, GenerateRequest, ImportPromptsRequest, InitProjectRequest, OpenProjectRequest,
  ExportsRequest, ProgressNotification, type ProjectSummary, ReportRequest, RunRoundsRequest, ScoreRequest, SelectRequest, StateChangedNotification, StatsRequest,
  type StoreChange, TrainingRunsRequest, TrainRequest, TrajectoryGroupsRequest, TryPromptRequest, UpdateSettingsNotification,
} from '../protocol/engine';
import { evaluatePhase, exportPhase, generatePhase, scorePhase, selectPhase, trainPhase } from '../round/phases';
import { latestRound } from '../round/rounds';
import { runReport, runRounds } from '../round/run-loop';
import { projectStats } from '../round/stats';
import { reapStaleRuns } from '../round/train';
import { shippedAccelerateConfigs } from '../round/trainer-command';
import { listExports, listTrainingRuns } from './run-history';
import { trajectoryGroups } from './trajectory-groups';
import { refreshSelectionFlags } from '../review/flags';
import { registerReviewHandlers, type ServerContext } from './review-handlers';
import { tryPrompt } from './try-prompt';

const CODE: Record<EngineError['code'], number> = {
  BAD_INPUT: ErrorCodes.BadInput,
  NOT_FOUND: ErrorCodes.NotFound,
  BACKEND: ErrorCodes.Backend,
  TRAINER: ErrorCodes.Trainer,
  CANCELLED: ErrorCodes.Cancelled,
  STORE: ErrorCodes.Store,
  INTERNAL: ErrorCodes.Internal,
};

/**
 * The engine as a JSON-RPC server on stdio. It holds one open project; long jobs run one at a
 * time, report progress as notifications and stop on $/cancelRequest. Logs go through the
 * connection's console: stdout carries the protocol and nothing else may write to it.
 */
export class EngineServer implements ServerContext {
  private project: Project | null = null;
  private settings: EngineSettings = {};
  private job: { id: string; method: string; controller: AbortController; ended: Promise<void> } | null = null;
  private readonly log: Logger;

  constructor(private readonly connection: Connection) {
    const c = connection.console;
    this.log = { debug: (m) => c.log(m), info: (m) => c.info(m), warn: (m) => c.warn(m), error: (m) => c.error(m) };
  }

  listen(): void {
    const c = this.connection;
    c.onInitialize(() => ({ capabilities: {}, serverInfo: { name: 'aries-engine', version: '0.1.0' } }));
    c.onShutdown(() => this.shutdown());
    c.onExit(() => process.exit(0));
    c.onNotification(UpdateSettingsNotification.type, ({ settings }) => {
      this.settings = settings;
      if (this.project) this.reopen(this.project.root);
    });
    c.onRequest(OpenProjectRequest.type, (params) => this.handle(() => {
      this.settings = params.settings ?? this.settings;
      this.reopen(resolve(params.root));
      return this.summary();
    }));
    c.onRequest(InitProjectRequest.type, (params) => this.handle(() => initProject(resolve(params.root), params.from, params.force ?? false)));
    c.onRequest(ImportPromptsRequest.type, (params) => this.handle(() => {
      const results = importPromptFiles(this.open().db, params.files.map((f) => resolve(this.open().root, f)), params.split);
      this.changed('prompts');
      return results;
    }));
    c.onRequest(GenerateRequest.type, (params, token) => this.longJob(GenerateRequest.method, params.jobId, token, async (p, job) => {
      const { round, summary } = await generatePhase(p, job);
      this.changed('rounds', 'trajectories');
      return { round: round.idx, ...summary };
    }));
    c.onRequest(ScoreRequest.type, (params, token) => this.longJob(ScoreRequest.method, params.jobId, token, async (p, job) => {
      const { round, scored } = await scorePhase(p, job);
      this.changed('trajectories');
      return { round: round.idx, scored };
    }));
    c.onRequest(SelectRequest.type, (params, token) => this.longJob(SelectRequest.method, params.jobId, token, async (p, job) => {
      const { round, summary } = await selectPhase(p, params.strategies, job);
      this.changed('rounds', 'trajectories');
      return { round: round.idx, byStrategy: summary.byStrategy };
    }));
    c.onRequest(ExportRequest.type, (params, token) => this.longJob(ExportRequest.method, params.jobId, token, async (p) => {
      const { round, result } = await exportPhase(p, { path: params.path, format: params.format });
      this.changed('exports', 'rounds');
      return { round: round.idx, path: result.path, sha256: result.sha256, counts: result.counts };
    }));
    c.onRequest(TrainRequest.type, (params, token) => this.longJob(TrainRequest.method, params.jobId, token, async (p, job) => {
      try {
        const { round, result } = await trainPhase(p, job);
        return { round: round.idx, runId: result.runId, modelId: result.modelId, outputDir: result.outputDir, steps: result.steps, trainLoss: result.trainLoss };
      } finally {
        this.changed('training', 'models', 'rounds');
      }
    }));
    c.onRequest(EvaluateRequest.type, (params, token) => this.longJob(EvaluateRequest.method, params.jobId, token, async (p, job) => {
      const r = await evaluatePhase(p, params.modelId ?? null, job, params.limit);
      this.changed('models');
      return r;
    }));
    c.onRequest(RunRoundsRequest.type, (params, token) => this.longJob(RunRoundsRequest.method, params.jobId, token, async (p, job) => {
      try {
        return await runRounds(p, params.rounds, job, () => this.changed('rounds', 'models', 'training', 'exports', 'trajectories'));
      } finally {
        this.changed('rounds', 'models', 'training', 'exports', 'trajectories');
      }
    }));
    c.onRequest(TryPromptRequest.type, (params, token) => this.longJob(TryPromptRequest.method, params.jobId, token, (p, job) => tryPrompt(p, this.connection, params, job)));
    registerReviewHandlers(c, this);
    c.onRequest(ReportRequest.type, () => this.handle(() => runReport(this.open())));
    c.onRequest(StatsRequest.type, (params) => this.handle(() => projectStats(this.open(), params.check ?? false)));
    c.onRequest(TrajectoryGroupsRequest.type, (params) => this.handle(() => trajectoryGroups(this.open().db, this.open().config.selection.strategy, params.round, params.limit)));
    c.onRequest(ExportsRequest.type, () => this.handle(() => listExports(this.open().db)));
    c.onRequest(TrainingRunsRequest.type, () => this.handle(() => listTrainingRuns(this.open().db)));
    c.listen();
  }

  private reopen(root: string): void {
    if (this.job) throw new EngineErrorClass('BAD_INPUT', `cannot switch projects while "${this.job.method}" is running`, 'cancel it first');
    if (this.project) closeProject(this.project);
    this.project = null;
    const p = openProject(root, this.log, { settings: this.settings });
    reapStaleRuns(p.db);
    // The exported strategy may have changed (a setting): group the newest round by the current one.
    const newest = latestRound(p.db);
    if (newest) refreshSelectionFlags(p.db, newest.id, p.config.selection.strategy);
    this.project = p;
  }

  open(): Project {
    if (!this.project) throw new ResponseError(ErrorCodes.NoProject, 'no ARIES project is open; run "ARIES: Initialize Project" or open a folder with aries.json');
    return this.project;
  }

  private summary(): ProjectSummary {
    const p = this.open();
    const model = currentModel(p.db);
    const round = latestRound(p.db);
    const prompts: Record<string, number> = {};
    for (const r of p.db.prepare('SELECT split, COUNT(*) AS n FROM prompts GROUP BY split').all() as { split: string; n: number }[]) prompts[r.split] = r.n;
    return {
      root: p.root,
      name: p.config.name,
      database: p.db.name,
      currentModel: model ? { id: model.id, name: model.name, path: model.path } : null,
      openRound: round ? { idx: round.idx, status: round.status } : null,
      prompts,
      refinements: p.config.generation.refinements,
      strategy: p.config.selection.strategy,
      training: {
        objective: p.config.training.objective,
        launcher: p.config.training.launcher,
        accelerateConfig: p.config.training.accelerateConfig,
        lora: p.config.training.lora !== null,
        command: p.config.training.command !== null,
      },
      accelerateConfigs: shippedAccelerateConfigs(),
    };
  }

  changed(...what: StoreChange[]): void {
    void this.connection.sendNotification(StateChangedNotification.type, { what });
  }

  async handle<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.toResponseError(err);
    }
  }

  private async longJob<T>(method: string, jobId: string, token: CancellationToken, work: (p: Project, job: JobControl) => Promise<T>): Promise<T> {
    return this.handle(async () => {
      const p = this.open();
      if (this.job) throw new ResponseError(ErrorCodes.Busy, `"${this.job.method}" is running (job ${this.job.id}); wait for it or cancel it first`);
      const controller = new AbortController();
      let end = (): void => undefined;
      this.job = { id: jobId, method, controller, ended: new Promise<void>((r) => (end = r)) };
      const sub = token.onCancellationRequested(() => controller.abort());
      try {
        return await work(p, {
          signal: controller.signal,
          progress: (e) => void this.connection.sendNotification(ProgressNotification.type, { jobId, ...e }),
        });
      } finally {
        sub.dispose();
        this.job = null;
        end();
      }
    });
  }

  private toResponseError(err: unknown): ResponseError<void> {
    if (err instanceof ResponseError) return err as ResponseError<void>;
    const e = asEngineError(err);
    if (e.code === 'INTERNAL' && err instanceof Error) this.log.error(err.stack ?? err.message);
    return new ResponseError(CODE[e.code], e.message);
  }

  /**
   * LSP shutdown (the extension stops or restarts the engine): a running job is cancelled like
   * $/cancelRequest (a training child gets SIGTERM) and given a few seconds to stop at a batch
   * boundary, so nothing outlives the engine and committed work stays.
   */
  async shutdown(): Promise<void> {
    const job = this.job;
    if (job) {
      this.log.info(`shutdown: cancelling "${job.method}" (job ${job.id})`);
      job.controller.abort();
      await Promise.race([job.ended, new Promise<void>((r) => setTimeout(r, 8000).unref())]);
    }
    this.close();
  }

  close(): void {
    if (this.project) closeProject(this.project);
    this.project = null;
  }
}

export function startServer(): EngineServer {
  const connection = createConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
  const server = new EngineServer(connection);
  server.listen();
  return server;
}
