import * as vscode from 'vscode';

/**
 * Training runs a program the workspace configures (aries.json training.python / training.command,
 * aries.pythonPath / aries.trainerCommand), so it needs a trusted workspace. Restricted Mode still
 * browses, generates, reviews and exports. Returns whether `what` may run now.
 */
export function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(
      `ARIES: ${what} runs the trainer this workspace configures (training.python / training.command in aries.json). Trust the workspace to run it; browsing, review and export work in Restricted Mode.`,
      'Manage Workspace Trust',
    )
    .then((pick) => pick && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}
