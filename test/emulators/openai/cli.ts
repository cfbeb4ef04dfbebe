/** Standalone OpenAI emulator: `node test/emulators/openai/cli.ts [--port 4010] [--api-key KEY] [--first-token-ms N] [--tokens-per-second N]`. */
import { parseArgs } from 'node:util';
import { createOpenAIEmulator } from './index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    'api-key': { type: 'string' },
    'first-token-ms': { type: 'string' },
    'tokens-per-second': { type: 'string' },
  },
});

const latency: { firstTokenMs?: number; tokensPerSecond?: number } = {};
if (values['first-token-ms'] !== undefined) latency.firstTokenMs = Number(values['first-token-ms']);
if (values['tokens-per-second'] !== undefined) latency.tokensPerSecond = Number(values['tokens-per-second']);

const emulator = await createOpenAIEmulator({
  port: Number(values.port),
  latency,
  ...(values['api-key'] !== undefined ? { apiKey: values['api-key'] } : {}),
});
console.log(
  `OpenAI emulator listening: OPENAI_BASE_URL=${emulator.baseURL} OPENAI_API_KEY=${emulator.apiKey}`,
);

const stop = () => {
  void emulator.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
