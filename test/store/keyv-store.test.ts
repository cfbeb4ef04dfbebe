import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.ts';

const freshUrl = () =>
  `sqlite://${join(mkdtempSync(join(tmpdir(), 'threadfork-store-')), 'nested', 'store.sqlite')}`;

describe('keyv SQLite store', () => {
  it('keeps records across a reopen of the same file', async () => {
    const url = freshUrl();
    const first = openStore(url);
    await first.set('thread:1', { version: 1, items: ['a', 'b'] });
    await first.close();
    const second = openStore(url);
    expect(await second.get('thread:1')).toEqual({ version: 1, items: ['a', 'b'] });
    expect(await second.get('missing')).toBeUndefined();
    await second.close();
  });

  it('loses no update when many changes reach one key at once', async () => {
    const store = openStore(freshUrl());
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.update<number[]>('votes', (list = []) => [...list, i])),
    );
    expect(((await store.get<number[]>('votes')) ?? []).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 50 }, (_, i) => i),
    );
    await store.update('votes', () => undefined);
    expect(await store.get('votes')).toBeUndefined();
    await store.close();
  });
});
