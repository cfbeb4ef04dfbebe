/** What the backend tests share: a fresh OpenAI emulator and a real SDK client per test, and item builders. */
import OpenAI from 'openai';
import { afterEach, beforeEach } from 'vitest';
import type { Item } from '../../src/core/model.ts';
import type { GenerationOptions } from '../../src/core/ports.ts';
import { createOpenAIEmulator, type OpenAIEmulator } from '../emulators/openai/index.ts';

export const options: GenerationOptions = {
  model: 'gpt-4.1-mini',
  instructions: undefined,
  temperature: undefined,
};
export const user = (text: string): Item => ({ id: text, role: 'user', text });
export const assistant = (text: string): Item => ({ id: text, role: 'assistant', text });

/** Starts an emulator and a client before each test (handed to `use`), and stops the emulator after it. */
export function withEmulator(use: (emulator: OpenAIEmulator, client: OpenAI) => void): void {
  let emulator: OpenAIEmulator | undefined;
  beforeEach(async () => {
    emulator = await createOpenAIEmulator();
    use(emulator, new OpenAI({ apiKey: emulator.apiKey, baseURL: emulator.baseURL, maxRetries: 2 }));
  });
  afterEach(() => emulator?.close());
}
