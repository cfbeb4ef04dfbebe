import { describe, expect, it } from 'vitest';
import { runDemo, STYLES } from '../../demo/scenario.ts';

describe('npm run demo', () => {
  it('plays the scripted thread and prints it as people read it', async () => {
    const transcript = await runDemo();
    const lines = transcript.split('\n');
    const index = (probe: RegExp) => lines.findIndex((line) => probe.test(line));

    // Who said what, by name.
    expect(transcript).toContain('» alice uses /chat prompt:"plan a weekend in Porto"');
    expect(transcript).toContain('  bob: what about food?');
    expect(transcript).toContain('  carol: and if it rains on Sunday?');
    expect(transcript).toMatch(
      /threadfork \(replying to bob\): \[gpt-4\.1-mini\] reply 2 to "bob: what about food\?"/,
    );
    expect(transcript).not.toMatch(/<@\d+>|<t:\d+/);

    // The three alternatives in the ballot (its boxes, "│"), each with its style, answering the same history.
    expect(transcript).toContain(
      'threadfork (replying to alice): 🗳️ Which reply should the thread continue with?',
    );
    STYLES.forEach((style, i) => {
      const letter = 'ABC'[i]!;
      expect(transcript).toContain(`      │ ${letter} · ${style}`);
      expect(transcript).toContain(`saw 7 msgs · digest f628e215 · style "${style}"`);
    });

    // The ballot and its buttons, as votes come in; the winner.
    expect(transcript).toContain('│ [A · 0] [Read A in full]');
    expect(transcript).toContain('│ [C · 0] [Read C in full]');
    expect(transcript).toContain('[Close vote] [Moderator pick…]');
    expect(transcript).toContain('A 1 · B 1 · C 0');
    expect(transcript).toContain('(only bob sees) threadfork: 🗳️ Your vote: B.');
    expect(transcript).toContain('✅ B wins with 2 of 3 votes (it reached the quorum)');
    expect(transcript).toContain('│ [✓ B · 2] [Read B in full]');
    // bob's message waited for the vote and was answered on B's branch.
    expect(transcript).toMatch(/reply 5 to "bob: great, can we book it for 8pm\?" · saw 9 msgs/);

    // The branch tree the moderator sees, the active branch marked, before and after the reset.
    const firstTree = index(/Branches \(4\)/);
    expect(firstTree).toBeGreaterThan(0);
    expect(lines[firstTree + 3]).toMatch(/▶ b3 alternative B · funny travel buddy · from b1 .* · active$/);
    expect(transcript).toContain('threadfork: 🌿 Reset to b1, as before the last fork by @mod.');
    const secondTree = lines.findIndex((line, i) => i > firstTree && /Branches \(4\)/.test(line));
    expect(lines[secondTree + 1]).toMatch(/▶ b1 start · root · 3 turns .* · active$/);
    expect(lines[secondTree + 3]).toMatch(/• b3 alternative B/);
    // After the reset the thread continues from before the fork.
    expect(transcript).toMatch(/reply 4 to "alice: ok, let's think about Saturday night again" · saw 7 msgs/);
  }, 60_000);
});
