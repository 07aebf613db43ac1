import type { ChatMessage, PromptInput } from '../generation/backend';

/**
 * What a reward model reads for one step, shared by the reward-model scorers (rm:http, rm:onnx)
 * and mirrored by the trainer (aries_trainer/reward_model.py score_text), so a reward model trained
 * by `python -m aries_trainer rm` is scored on the text it was trained on.
 */

/** The original question x (a string is one user message) followed by the response as the assistant. */
export function scoreConversation(prompt: PromptInput, response: string): ChatMessage[] {
  const messages: ChatMessage[] = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
  return [...messages, { role: 'assistant', content: response }];
}

/**
 * The text a step becomes for a model without a chat template: every message as `role: content`,
 * blank lines between, the response last as `assistant: response`. A string prompt is one user
 * message: "user: What is 2+2?\n\nassistant: 4".
 */
export function renderScoreText(prompt: PromptInput, response: string): string {
  return scoreConversation(prompt, response)
    .map((m) => `${m.role}: ${m.content}`)
    .join('\n\n');
}
