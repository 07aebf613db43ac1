/**
 * The extension <-> engine boundary: JSON-RPC over the engine's stdio, through
 * vscode-languageclient (extension) and vscode-languageserver (engine). Documented in
 * docs/protocol.md; both sides import this file and nothing else of each other.
 *
 * Long jobs (generate, score, train, run, evaluate, export) take a `jobId` chosen by the client;
 * the engine reports ProgressNotification with that id, and the client cancels with the standard
 * $/cancelRequest (vscode-languageclient does this when its CancellationToken fires). A cancelled
 * job keeps its completed work and fails with code Cancelled. One long job runs at a time.
 */
import { NotificationType, RequestType } from 'vscode-languageserver-protocol';
import type {
  Agreement, Dashboard, EvaluationResults, ExportCounts, ExportEntry, ImportResult, ListQuery, ProjectStats, PromptInput, RunReport, TrainingRunEntry, TrajectoryDetail, TrajectoryGroups, TrajectoryPage,
} from './engine-types';

export type * from './engine-types';

/** JSON-RPC error codes the engine uses (in the server-defined range). */
export const ErrorCodes = {
  BadInput: -32001,
  NotFound: -32002,
  Backend: -32003,
  Trainer: -32004,
  Cancelled: -32800, // LSP's RequestCancelled
  Store: -32005,
  Busy: -32006,
  NoProject: -32007,
  Internal: -32603,
} as const;

/** Settings from VS Code that override aries.json for this session (all optional). */
export interface EngineSettings {
  backend?: 'onnx' | 'openai';
  modelPath?: string;
  openaiBaseUrl?: string;
  openaiModel?: string;
  /** Name of the environment variable the API key is in (the extension sets it from SecretStorage). */
  openaiApiKeyEnv?: string;
  pythonPath?: string;
  trainerCommand?: string[];
  /** How the built-in trainer starts: one process, or `accelerate launch` with accelerateConfig. */
  trainingLauncher?: 'python' | 'accelerate';
  /** A config shipped in engine/trainer/accelerate/ (by name) or a path to an accelerate config file. */
  accelerateConfig?: string;
  refinements?: number;
  selectionStrategy?: 'verifier' | 'rule' | 'rm';
  temperature?: number;
  topP?: number;
  maxNewTokens?: number;
  databasePath?: string;
}

export interface ProjectSummary {
  root: string;
  name: string;
  database: string;
  currentModel: { id: number; name: string; path: string } | null;
  openRound: { idx: number; status: string } | null;
  prompts: Record<string, number>;
  refinements: number;
  strategy: string;
  /** How a round trains, after VS Code's settings. */
  training: { objective: 'dpo' | 'sft'; launcher: 'python' | 'accelerate'; accelerateConfig: string | null; lora: boolean; command: boolean };
  /** The accelerate config files shipped with the trainer, by name (for the launcher picker). */
  accelerateConfigs: string[];
}

export interface JobParams {
  /** Chosen by the client; echoed in ProgressNotification. */
  jobId: string;
}

export interface JobProgress {
  jobId: string;
  phase: string;
  done: number;
  total: number;
  message?: string;
  metrics?: Record<string, number>;
}

export namespace OpenProjectRequest {
  export const method = 'aries/openProject' as const;
  export const type = new RequestType<{ root: string; settings?: EngineSettings }, ProjectSummary, void>(method);
}

export namespace InitProjectRequest {
  export const method = 'aries/initProject' as const;
  export const type = new RequestType<{ root: string; from: 'arithmetic' | 'empty'; force?: boolean }, { root: string; files: string[] }, void>(method);
}

export namespace UpdateSettingsNotification {
  export const method = 'aries/updateSettings' as const;
  export const type = new NotificationType<{ settings: EngineSettings }>(method);
}

export namespace ImportPromptsRequest {
  export const method = 'aries/importPrompts' as const;
  export const type = new RequestType<{ files: string[]; split: string }, ImportResult[], void>(method);
}

export namespace GenerateRequest {
  export const method = 'aries/generate' as const;
  export const type = new RequestType<JobParams, { round: number; trajectories: number; stepsWritten: number; stoppedRepeated: number }, void>(method);
}

export namespace ScoreRequest {
  export const method = 'aries/score' as const;
  export const type = new RequestType<JobParams, { round: number; scored: Record<string, number> }, void>(method);
}

export namespace SelectRequest {
  export const method = 'aries/select' as const;
  export const type = new RequestType<JobParams & { strategies?: ('verifier' | 'rule' | 'rm')[] }, { round: number; byStrategy: Record<string, { pairs: number; skipped: number }> }, void>(method);
}

export namespace ExportRequest {
  export const method = 'aries/export' as const;
  export const type = new RequestType<JobParams & { path?: string; format?: 'conversational' | 'string' }, { round: number; path: string; sha256: string; counts: ExportCounts }, void>(method);
}

export namespace TrainRequest {
  export const method = 'aries/train' as const;
  export const type = new RequestType<JobParams, { round: number; runId: number; modelId: number; outputDir: string; steps: number; trainLoss: number | null }, void>(method);
}

export namespace EvaluateRequest {
  export const method = 'aries/evaluate' as const;
  export const type = new RequestType<JobParams & { modelId?: number; limit?: number }, EvaluationResults, void>(method);
}

export namespace RunRoundsRequest {
  export const method = 'aries/runRounds' as const;
  /** Runs until `rounds` rounds are trained in total (resumes an interrupted round). */
  export const type = new RequestType<JobParams & { rounds: number }, RunReport, void>(method);
}

export namespace ReportRequest {
  export const method = 'aries/report' as const;
  export const type = new RequestType<Record<string, never>, RunReport, void>(method);
}

export namespace StatsRequest {
  export const method = 'aries/stats' as const;
  export const type = new RequestType<{ check?: boolean }, ProjectStats, void>(method);
}

export namespace TrajectoryGroupsRequest {
  export const method = 'aries/trajectoryGroups' as const;
  /** The Trajectories view: a round (default: the newest) grouped needs-review / auto-selected / overridden / skipped, `limit` items per group (default 50). */
  export const type = new RequestType<{ round?: number; limit?: number }, TrajectoryGroups, void>(method);
}

export namespace ExportsRequest {
  export const method = 'aries/exports' as const;
  /** The Exports view: every export, newest first. */
  export const type = new RequestType<Record<string, never>, ExportEntry[], void>(method);
}

export namespace TrainingRunsRequest {
  export const method = 'aries/trainingRuns' as const;
  /** The Training runs view: every run with its log path and last metrics, newest first. */
  export const type = new RequestType<Record<string, never>, TrainingRunEntry[], void>(method);
}

export interface TryPromptParams extends JobParams {
  prompt: PromptInput;
  refinements: number;
  /** 0 = greedy (default). */
  temperature?: number;
}

export namespace TryPromptRequest {
  export const method = 'aries/tryPrompt' as const;
  /** Asks the current model; each step streams through TryPromptDeltaNotification. */
  export const type = new RequestType<TryPromptParams, { steps: string[]; model: string }, void>(method);
}

/** More text of step `step` (0 = first answer) of a Try a Prompt job. */
export interface TryPromptDelta {
  jobId: string;
  step: number;
  delta: string;
  prompt?: string;
  done?: boolean;
}

export namespace TryPromptDeltaNotification {
  export const method = 'aries/tryPromptDelta' as const;
  /** engine -> client */
  export const type = new NotificationType<TryPromptDelta>(method);
}

export namespace ProgressNotification {
  export const method = 'aries/progress' as const;
  /** engine -> client, for the job with this id. */
  export const type = new NotificationType<JobProgress>(method);
}

/** What part of the store changed. */
export type StoreChange = 'rounds' | 'trajectories' | 'models' | 'exports' | 'training' | 'prompts';

export namespace StateChangedNotification {
  export const method = 'aries/stateChanged' as const;
  /** engine -> client: the store changed (views refresh). */
  export const type = new NotificationType<{ what: StoreChange[] }>(method);
}

// ---- Review (curation) and the dashboard -------------------------------------------------------

export namespace ListTrajectoriesRequest {
  export const method = 'aries/listTrajectories' as const;
  export const type = new RequestType<ListQuery, TrajectoryPage, void>(method);
}

export namespace GetTrajectoryRequest {
  export const method = 'aries/getTrajectory' as const;
  export const type = new RequestType<{ id: number }, TrajectoryDetail, void>(method);
}

export interface OverrideParams {
  trajectoryId: number;
  curator: string;
  action: 'accept' | 'pair' | 'swap' | 'tie' | 'discard';
  chosenStepId?: number;
  rejectedStepId?: number;
  note?: string;
}

export namespace AddOverrideRequest {
  export const method = 'aries/addOverride' as const;
  /** Saved at once; returns the trajectory as it now is. */
  export const type = new RequestType<OverrideParams, TrajectoryDetail, void>(method);
}

export namespace UndoOverrideRequest {
  export const method = 'aries/undoOverride' as const;
  /** Undoes this curator's latest live override on the trajectory. */
  export const type = new RequestType<{ trajectoryId: number; curator: string }, TrajectoryDetail, void>(method);
}

export namespace EditStepRequest {
  export const method = 'aries/editStep' as const;
  /** Saves the text as a new curated step (the original is kept) and scores it with the verifier. */
  export const type = new RequestType<{ stepId: number; text: string; curator: string }, TrajectoryDetail, void>(method);
}

export namespace AgreementRequest {
  export const method = 'aries/agreement' as const;
  export const type = new RequestType<{ round: number | null }, Agreement, void>(method);
}

export namespace DashboardRequest {
  export const method = 'aries/dashboard' as const;
  export const type = new RequestType<Record<string, never>, Dashboard, void>(method);
}
