/**
 * Try a Prompt panel <-> extension host messages (postMessage). Both sides import this file;
 * the webview never imports engine or VS Code code. Text is always shown with textContent.
 */

/** webview -> host */
export type TryPromptCommand =
  | { type: 'ready' }
  | { type: 'ask'; prompt: string; refinements: number }
  | { type: 'stop' };

/** host -> webview */
export type TryPromptEvent =
  | { type: 'init'; prompt: string; refinements: number; model: string | null }
  | { type: 'started'; prompt: string; refinements: number }
  /** Step `step` begins (0 = the first answer); `prompt` is what the model sees for it. */
  | { type: 'step'; step: number; prompt: string }
  | { type: 'delta'; step: number; text: string }
  | { type: 'stepDone'; step: number }
  | { type: 'finished'; model: string; steps: string[] }
  | { type: 'stopped'; message: string };

export const MAX_REFINEMENTS = 16;
