/**
 * `npm run demo`: plays a scripted thread against the local emulators and prints it as people in it would read it.
 * No Discord token, no OpenAI key, no network.
 */
import { runDemo } from './scenario.ts';

const started = Date.now();
const transcript = await runDemo();
process.stdout.write(transcript);
process.stdout.write(`\n(the demo ran in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
