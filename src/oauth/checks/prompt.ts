/** The prompt values of OIDC Core §3.1.2.1. */
export type PromptValue = 'none' | 'login' | 'consent' | 'select_account';

/** Whether a stored prompt (space-separated, OIDC Core §3.1.2.1) includes `value`. */
export function hasPrompt(prompt: string | null, value: PromptValue): boolean {
  return prompt !== null && prompt.split(' ').includes(value);
}
