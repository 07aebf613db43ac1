import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { CloseAction, ErrorAction, LanguageClient, type RequestParam, type RequestType, State } from 'vscode-languageclient/node';
import {
  type JobProgress, OpenProjectRequest, ProgressNotification, type ProjectSummary, StateChangedNotification, type StoreChange, type TryPromptDelta, TryPromptDeltaNotification,
} from '../../engine/src/protocol/engine';
import { probeNode, resolveEngineNode } from './node-runtime';
import { API_KEY_ENV, engineSettings } from './settings';

export type EngineState = 'stopped' | 'starting' | 'running' | 'failed';
export type { StoreChange, TryPromptDelta } from '../../engine/src/protocol/engine';

/** The engine could not start; `problem` and `fix` are shown to the user as they are. */
export class EngineUnavailable extends Error {
  constructor(readonly problem: string, readonly fix: string) {
    super(`${problem} ${fix}`);
  }
}

/** The API key from SecretStorage, only when the workspace is trusted (aries.json chooses where requests go). */
export type ApiKeySource = () => Promise<string | undefined>;

/**
 * The engine process (`node dist/aries.js serve`) and its JSON-RPC connection. Started lazily by
 * the first command or view that needs it; `connection` holds what lives as long as one engine
 * connection (notification handlers, the child process), the extension's subscriptions hold this
 * object. A crash shows a notification with Restart; requests of a stopped engine reject, so
 * running jobs end with the engine.
 */
export class Engine implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private child: ChildProcess | undefined;
  private starting: Promise<LanguageClient> | undefined;
  private connection: vscode.Disposable[] = [];
  private stopping = false;
  private opened: string | undefined;
  /** The OpenProject request in flight: views asking at once share it. */
  private opening: { root: string; done: Promise<ProjectSummary> } | undefined;
  private _state: EngineState = 'stopped';
  private _problem: string | undefined;
  private readonly stateEmitter = new vscode.EventEmitter<EngineState>();
  private readonly progressEmitter = new vscode.EventEmitter<JobProgress>();
  private readonly changeEmitter = new vscode.EventEmitter<StoreChange[]>();
  private readonly deltaEmitter = new vscode.EventEmitter<TryPromptDelta>();
  private readonly projectEmitter = new vscode.EventEmitter<ProjectSummary | undefined>();
  readonly onDidChangeState = this.stateEmitter.event;
  readonly onProgress = this.progressEmitter.event;
  readonly onStoreChanged = this.changeEmitter.event;
  readonly onTryPromptDelta = this.deltaEmitter.event;
  readonly onProjectOpened = this.projectEmitter.event;
  project: ProjectSummary | undefined;

  constructor(
    private readonly extensionPath: string,
    private readonly log: vscode.LogOutputChannel,
    readonly engineOutput: vscode.LogOutputChannel,
    private readonly apiKey: ApiKeySource,
    /** The folder that holds (or will hold) aries.json. */
    private readonly projectRoot: () => string | undefined,
  ) {}

  get state(): EngineState {
    return this._state;
  }

  /** Why the engine is not running, when it failed. */
  get problem(): string | undefined {
    return this._problem;
  }

  private setState(s: EngineState): void {
    this._state = s;
    this.stateEmitter.fire(s);
  }

  /** A request to the engine, starting it (and opening the project) first when needed. */
  async request<P, R>(type: RequestType<P, R, void>, params: P, token?: vscode.CancellationToken): Promise<R> {
    const client = await this.ready();
    // RequestParam<P> is `P` for every request the engine has (none takes null params).
    return client.sendRequest(type, params as RequestParam<P>, token);
  }

  /** The running client with the workspace's project open (when there is an aries.json). */
  async ready(): Promise<LanguageClient> {
    const client = this.client && this.client.state === State.Running ? this.client : await this.start();
    const root = this.projectRoot();
    if (root && this.opened !== root && existsSync(join(root, 'aries.json'))) await (this.opening?.root === root ? this.opening.done : this.openProject(root));
    return client;
  }

  /** Opens (or reopens, e.g. after settings or aries.json changed) the project with the current settings. */
  openProject(root: string): Promise<ProjectSummary> {
    const done = this.doOpenProject(root).finally(() => {
      if (this.opening?.done === done) this.opening = undefined;
    });
    this.opening = { root, done };
    return done;
  }

  private async doOpenProject(root: string): Promise<ProjectSummary> {
    const client = this.client && this.client.state === State.Running ? this.client : await this.start();
    const settings = engineSettings((k) => vscode.workspace.getConfiguration('aries').get(k), await this.keyEnvName());
    this.log.info(`opening project ${root} with settings ${JSON.stringify(settings)}`);
    const summary = await client.sendRequest(OpenProjectRequest.type, { root, settings });
    this.opened = root;
    this.project = summary;
    this.projectEmitter.fire(summary);
    return summary;
  }

  /** Whether a project is open in the engine now. */
  get projectOpen(): boolean {
    return this.opened !== undefined && this._state === 'running';
  }

  private async keyEnvName(): Promise<string | undefined> {
    return (await this.apiKey()) ? API_KEY_ENV : undefined;
  }

  private start(): Promise<LanguageClient> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient> {
    this.setState('starting');
    this._problem = undefined;
    const configured = vscode.workspace.getConfiguration('aries').get<string>('nodePath') ?? '';
    const node = await resolveEngineNode({
      configured,
      pathEnv: process.env.PATH,
      platform: process.platform,
      host: { execPath: process.execPath, electron: Boolean(process.versions.electron) },
      probe: probeNode(join(this.extensionPath, 'node_modules', 'better-sqlite3')),
    });
    if (!node.ok) {
      this.fail(`${node.problem} ${node.fix}`);
      throw new EngineUnavailable(node.problem, node.fix);
    }
    const script = join(this.extensionPath, 'dist', 'aries.js');
    if (!existsSync(script)) {
      const fix = 'Reinstall the extension (or run `npm run build` in a development checkout).';
      this.fail(`${script} is missing. ${fix}`);
      throw new EngineUnavailable(`The engine bundle ${script} is missing.`, fix);
    }
    this.log.info(`starting the engine: ${node.runtime.path} (Node ${node.runtime.version}, ABI ${node.runtime.abi}, from ${node.source}) ${script} serve`);
    const key = await this.apiKey();
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.ELECTRON_RUN_AS_NODE;
    delete env[API_KEY_ENV];
    if (key) env[API_KEY_ENV] = key;
    const client = new LanguageClient(
      'aries',
      'ARIES Engine',
      async () => {
        const child = spawn(node.runtime.path, [script, 'serve'], { cwd: this.extensionPath, env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
        this.child = child;
        child.on('exit', (code, signal) => this.log.info(`engine process ${child.pid} exited (${code ?? signal})`));
        return child;
      },
      {
        documentSelector: [],
        outputChannel: this.engineOutput,
        connectionOptions: { maxRestartCount: 0 },
        initializationFailedHandler: (err: unknown) => {
          this.log.error(`the engine failed to initialize: ${String(err)}`);
          return false;
        },
        errorHandler: {
          error: (err) => {
            this.log.error(`engine connection error: ${err.message}`);
            return { action: ErrorAction.Continue, handled: true };
          },
          closed: () => {
            // Only the current connection's close is a crash: an old client being disposed closes too.
            if (!this.stopping && this.client === client) void this.crashed();
            return { action: CloseAction.DoNotRestart, handled: true };
          },
        },
      },
    );
    this.connection.push(
      client.onNotification(ProgressNotification.type, (p) => this.progressEmitter.fire(p)),
      client.onNotification(StateChangedNotification.type, (s) => this.changeEmitter.fire(s.what)),
      client.onNotification(TryPromptDeltaNotification.type, (d) => this.deltaEmitter.fire(d)),
    );
    this.client = client;
    this.opened = undefined;
    try {
      await client.start();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      this.fail(`the engine did not start: ${why}`);
      this.disposeConnection();
      throw new EngineUnavailable(`The ARIES engine did not start (${why}).`, 'See "ARIES: Show Log" (ARIES Engine) for its output; check "aries.nodePath".');
    }
    this.setState('running');
    return client;
  }

  private fail(problem: string): void {
    this._problem = problem;
    this.log.error(problem);
    this.setState('failed');
  }

  private async crashed(): Promise<void> {
    const child = this.child;
    this.opened = undefined;
    this.project = undefined;
    // The client has already stopped itself (DoNotRestart); disposing it again only logs "Connection is disposed".
    this.disposeConnection(false);
    // The pipe closes before the process is reaped: give it a moment to report how it ended.
    if (child && child.exitCode === null && child.signalCode === null) await Promise.race([new Promise((r) => child.once('exit', r)), new Promise((r) => setTimeout(r, 2000))]);
    const exit = child?.exitCode ?? child?.signalCode ?? 'unknown';
    this.fail(`the engine stopped unexpectedly (exit ${exit})`);
    this.projectEmitter.fire(undefined);
    void vscode.window.showErrorMessage(`The ARIES engine stopped unexpectedly (exit ${exit}). Running jobs were stopped; completed work is kept.`, 'Restart Engine', 'Show Log').then((pick) => {
      if (pick === 'Restart Engine') void vscode.commands.executeCommand('aries.restartEngine');
      else if (pick === 'Show Log') this.engineOutput.show(true);
    });
  }

  /** Stops the engine: a running job is cancelled (the engine does it on shutdown) and its request rejects. */
  async stop(): Promise<void> {
    // A start in flight finishes first, so it is this stop that ends it (not a half-made client).
    await this.starting?.catch(() => undefined);
    const client = this.client;
    const child = this.child;
    if (!client) return;
    this.stopping = true;
    try {
      if (client.state === State.Running || client.state === State.Starting) await client.stop(12_000).catch((e: unknown) => this.log.warn(`engine stop: ${String(e)}`));
    } finally {
      this.stopping = false;
      this.disposeConnection();
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 3000).unref();
      }
      this.opened = undefined;
      this.project = undefined;
      this.projectEmitter.fire(undefined);
      this.setState('stopped');
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.ready();
  }

  private disposeConnection(disposeClient = true): void {
    for (const d of this.connection.splice(0)) d.dispose();
    const client = this.client;
    this.client = undefined;
    this.child = undefined;
    if (client && disposeClient) void client.dispose().catch(() => undefined);
  }

  dispose(): void {
    void this.stop();
    for (const e of [this.stateEmitter, this.progressEmitter, this.changeEmitter, this.deltaEmitter, this.projectEmitter]) e.dispose();
  }
}
