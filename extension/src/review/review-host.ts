import type { RequestType } from 'vscode-languageserver-protocol';
import {
  AddOverrideRequest, AgreementRequest, DashboardRequest, EditStepRequest, GetTrajectoryRequest, ListTrajectoriesRequest, UndoOverrideRequest,
} from '../../../engine/src/protocol/engine';
import type { DashboardData, DashboardNotification, DashboardRequests } from '../../../webview/src/dashboard/protocol';
import type { ReviewNotification, ReviewRequests, Trajectory } from '../../../webview/src/review/protocol';
import { checkDashboardMessage, checkReviewMessage, MessageError } from './review-messages';

/** The engine as the panels see it: vscode-languageclient's LanguageClient, or a test's connection. */
export interface EngineRequester {
  sendRequest<P, R>(type: RequestType<P, R, void>, params: P): Promise<R>;
}

export type Post = (message: unknown) => void;

/**
 * The host half of the review panel, free of `vscode` so the browser harness runs the very same
 * code: validate the webview's message, add the curator's name, ask the engine (which saves at
 * once), answer. Engine types are assigned to the webview's protocol types here, so the compiler
 * checks that the two stay compatible.
 */
export class ReviewHost {
  constructor(
    private readonly engine: EngineRequester,
    private readonly curator: () => string,
    private readonly post: Post,
    private readonly log: (m: string) => void = () => undefined,
  ) {}

  notify(n: ReviewNotification): void {
    this.post({ type: 'notification', notification: n });
  }

  async handle(raw: unknown): Promise<void> {
    let id = 0;
    try {
      const m = checkReviewMessage(raw);
      id = m.id;
      this.post({ type: 'response', id, result: await this.dispatch(m) });
    } catch (err) {
      const text = err instanceof MessageError ? `refused a review message: ${err.message}` : (err as Error).message;
      this.log(text);
      if (id || (typeof raw === 'object' && raw !== null && typeof (raw as { id?: unknown }).id === 'number')) {
        this.post({ type: 'response', id: id || (raw as { id: number }).id, error: text });
      }
    }
  }

  private async dispatch(m: ReturnType<typeof checkReviewMessage>): Promise<ReviewRequests[keyof ReviewRequests][1]> {
    const curator = this.curator();
    switch (m.method) {
      case 'list':
        return this.engine.sendRequest(ListTrajectoriesRequest.type, m.params);
      case 'get':
        return asTrajectory(await this.engine.sendRequest(GetTrajectoryRequest.type, m.params));
      case 'override':
        return asTrajectory(await this.engine.sendRequest(AddOverrideRequest.type, { ...m.params, curator }));
      case 'undo':
        return asTrajectory(await this.engine.sendRequest(UndoOverrideRequest.type, { ...m.params, curator }));
      case 'edit':
        return asTrajectory(await this.engine.sendRequest(EditStepRequest.type, { ...m.params, curator }));
      case 'agreement':
        return this.engine.sendRequest(AgreementRequest.type, m.params);
    }
  }
}

const asTrajectory = (t: Trajectory): Trajectory => t;

export class DashboardHost {
  constructor(
    private readonly engine: EngineRequester,
    private readonly post: Post,
    private readonly log: (m: string) => void = () => undefined,
  ) {}

  notify(n: DashboardNotification): void {
    this.post({ type: 'notification', notification: n });
  }

  async handle(raw: unknown): Promise<void> {
    try {
      const m = checkDashboardMessage(raw);
      const data: DashboardData = await this.engine.sendRequest(DashboardRequest.type, {});
      const result: DashboardRequests['data'][1] = data;
      this.post({ type: 'response', id: m.id, result });
    } catch (err) {
      const text = (err as Error).message;
      this.log(text);
      const id = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : undefined;
      if (typeof id === 'number') this.post({ type: 'response', id, error: text });
    }
  }
}
