/** What the backend tests share: a fresh OpenAI emulator and a real SDK client per test, and item builders. */
import OpenAI from 'openai';
import { afterEach, beforeEach } from 'vitest';
import type { Item } from '../../src/core/model.ts';
import type { GenerationOptions, HistoryView } from '../../src/core/ports.ts';
import { createOpenAIEmulator, type OpenAIEmulator } from '../emulators/openai/index.ts';

export const options: GenerationOptions = {
  model: 'gpt-4.1-mini',
  instructions: undefined,
  temperature: undefined,
};
export const user = (text: string): Item => ({ id: text, role: 'user', text });
export const assistant = (text: string): Item => ({ id: text, role: 'assistant', text });

/** A recorded history as the core hands it to a backend; `reads` counts the items the backend asked for. */
export function view(items: readonly Item[]): HistoryView & { reads: number } {
  return {
    length: items.length,
    reads: 0,
    async read(start = 0) {
      this.reads += items.length - start;
      return items.slice(start);
    },
  };
}

/** Starts an emulator and a client before each test (handed to `use`), and stops the emulator after it. */
export function withEmulator(use: (emulator: OpenAIEmulator, client: OpenAI) => void): void {
  let emulator: OpenAIEmulator | undefined;
  beforeEach(async () => {
    emulator = await createOpenAIEmulator();
    use(emulator, new OpenAI({ apiKey: emulator.apiKey, baseURL: emulator.baseURL, maxRetries: 2 }));
  });
  afterEach(() => emulator?.close());
}
