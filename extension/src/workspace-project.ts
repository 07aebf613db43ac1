import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';

/** The folder of the ARIES project: the first workspace folder with an aries.json, else the first local folder (where Initialize Project writes). */
export function projectFolder(): string | undefined {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  return (folders.find((f) => existsSync(join(f.uri.fsPath, 'aries.json'))) ?? folders[0])?.uri.fsPath;
}

export function hasProject(): boolean {
  const root = projectFolder();
  return root !== undefined && existsSync(join(root, 'aries.json'));
}
