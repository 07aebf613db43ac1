import * as vscode from 'vscode';

const SECRET = 'aries.openaiApiKey';

/**
 * The API key of an OpenAI-compatible server lives in SecretStorage only. It reaches the engine as
 * an environment variable set when the engine starts (never in settings, logs or the database),
 * and only in a trusted workspace: aries.json decides where requests go.
 */
export class ApiKeys {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  /** The key for the engine's environment, or undefined (none stored, or the workspace is not trusted). */
  async forEngine(): Promise<string | undefined> {
    if (!vscode.workspace.isTrusted) return undefined;
    return (await this.secrets.get(SECRET)) || undefined;
  }

  /** "ARIES: Set API Key": returns whether a key was stored. */
  async set(): Promise<boolean> {
    const key = await vscode.window.showInputBox({
      title: 'ARIES: Set API Key',
      prompt: 'API key of the OpenAI-compatible server (aries.endpoint). Stored in VS Code\'s secret storage; the engine gets it in its environment.',
      password: true,
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim() === '' ? 'Enter a key, or press Escape' : /\s/.test(v.trim()) ? 'A key has no spaces' : undefined),
    });
    if (!key) return false;
    await this.secrets.store(SECRET, key.trim());
    return true;
  }

  async clear(): Promise<void> {
    await this.secrets.delete(SECRET);
  }
}
