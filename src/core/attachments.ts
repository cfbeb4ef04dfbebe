import { createHash } from 'node:crypto';
import type { HistoryLog } from './history-log.ts';
import { type Item, type Part, SCHEMA_VERSION, type ThreadSession } from './model.ts';
import type { Clock, Store } from './ports.ts';
import { checkVersion } from './schema.ts';

/**
 * Images and files people post, kept as blobs in the store.
 *
 * Why the bytes and not the URL or a provider file id: Discord's attachment URLs expire (about a day), while a branch
 * may be replayed, forked, switched to or copied into a new conversation weeks later, and on every backend (the
 * `chat` one has no file API at all). So the bytes are stored once, content-addressed by their sha256
 * (`blob:<sha256>`, base64), and items refer to them by that id; a backend builds a data URL from them when it sends
 * the item. The same image posted in several threads, or kept by every branch of a fork, is stored once.
 *
 * Storage cost: base64 is 4/3 of the bytes; at most `threadMaxBytes` per thread (its own attachments, counted once).
 *
 * Cleanup: each blob lists the threads that hold it (its reference count, per thread, updated atomically on its own
 * key), and each thread lists its blobs with their size and when they came (`blobs:<threadId>`, which also enforces
 * the per-thread total). When branches are pruned, `sweep` drops the thread's blobs that no branch, waiting or
 * failed message refers to any more, and a blob no thread holds is deleted. Blobs that came in the last hour are
 * kept by a sweep: their message may be on its way into the inbox (admitting a file does not take the thread's lock).
 */
export interface AttachmentLimits {
  /** Largest image, in bytes. */
  imageMaxBytes: number;
  /** Largest document (PDF), in bytes. */
  fileMaxBytes: number;
  /** Images and files read from one message; the rest are refused. */
  perMessage: number;
  /** Bytes of attachments a thread may hold in all. */
  threadMaxBytes: number;
}

/** An attachment downloaded by the Discord layer, classified. */
export interface IncomingAttachment {
  name: string;
  mime: string;
  kind: 'image' | 'file';
  bytes: Uint8Array;
}

/** Why an attachment was not kept; the Discord layer words it. */
export interface AttachmentRefusal {
  name: string;
  reason: 'too_large' | 'too_many' | 'thread_full';
  /** The limit that was reached (bytes, or a count for too_many). */
  limit: number;
}

interface BlobRecord {
  version: typeof SCHEMA_VERSION;
  mime: string;
  size: number;
  /** The bytes, base64. */
  data: string;
  /** Threads that hold this blob. */
  threads: string[];
}

interface ThreadBlobs {
  version: typeof SCHEMA_VERSION;
  /** sha256 -> its size and when the thread got it. */
  blobs: Record<string, { size: number; at: number }>;
}

/** Reads a stored blob (for the backends). */
export interface BlobReader {
  read(blobId: string): Promise<{ mime: string; base64: string } | undefined>;
}

export interface AttachmentStore extends BlobReader {
  readonly limits: AttachmentLimits;
  /** Stores what fits the limits; returns the parts for the message and what was refused. */
  admit(
    threadId: string,
    files: readonly IncomingAttachment[],
  ): Promise<{ parts: Part[]; refused: AttachmentRefusal[] }>;
  /** Drops the thread's blobs that `referenced` does not hold (after a prune); returns how many were dropped. */
  sweep(threadId: string, referenced: ReadonlySet<string>): Promise<number>;
}

const blobKey = (sha: string) => `blob:${sha}`;
const threadKey = (threadId: string) => `blobs:${threadId}`;
/** A sweep keeps blobs younger than this: their message may not be in the inbox yet. */
const SWEEP_GRACE_MS = 60 * 60_000;

export function createAttachmentStore(deps: {
  store: Store;
  clock: Clock;
  limits: AttachmentLimits;
}): AttachmentStore {
  const { store, clock, limits } = deps;

  async function admitOne(
    threadId: string,
    file: IncomingAttachment,
  ): Promise<{ part: Part } | { refused: AttachmentRefusal }> {
    const max = file.kind === 'image' ? limits.imageMaxBytes : limits.fileMaxBytes;
    if (file.bytes.byteLength > max) return { refused: { name: file.name, reason: 'too_large', limit: max } };
    const sha = createHash('sha256').update(file.bytes).digest('hex');
    let full = false;
    // The thread's list first: a process that dies before the blob is written leaves an entry a sweep removes,
    // never a blob that nothing lists.
    await store.update<ThreadBlobs>(threadKey(threadId), (current) => {
      const record = checkVersion('attachments', current) ?? { version: SCHEMA_VERSION, blobs: {} };
      full = false;
      if (Object.hasOwn(record.blobs, sha)) return record;
      const used = Object.values(record.blobs).reduce((sum, blob) => sum + blob.size, 0);
      if (used + file.bytes.byteLength > limits.threadMaxBytes) {
        full = true;
        return record;
      }
      return {
        ...record,
        blobs: { ...record.blobs, [sha]: { size: file.bytes.byteLength, at: clock.now() } },
      };
    });
    if (full) return { refused: { name: file.name, reason: 'thread_full', limit: limits.threadMaxBytes } };
    await store.update<BlobRecord>(blobKey(sha), (current) => {
      const record = checkVersion('blob', current);
      if (record)
        return record.threads.includes(threadId)
          ? record
          : { ...record, threads: [...record.threads, threadId] };
      return {
        version: SCHEMA_VERSION,
        mime: file.mime,
        size: file.bytes.byteLength,
        data: Buffer.from(file.bytes).toString('base64'),
        threads: [threadId],
      };
    });
    return {
      part:
        file.kind === 'image'
          ? { kind: 'image', blobId: sha, mime: file.mime, name: file.name }
          : { kind: 'file', blobId: sha, mime: file.mime, name: file.name },
    };
  }

  return {
    limits,

    async admit(threadId, files) {
      const parts: Part[] = [];
      const refused: AttachmentRefusal[] = [];
      for (const [i, file] of files.entries()) {
        if (i >= limits.perMessage) {
          refused.push({ name: file.name, reason: 'too_many', limit: limits.perMessage });
          continue;
        }
        const result = await admitOne(threadId, file);
        if ('part' in result) parts.push(result.part);
        else refused.push(result.refused);
      }
      return { parts, refused };
    },

    async read(blobId) {
      const record = checkVersion('blob', await store.get<BlobRecord>(blobKey(blobId)));
      return record ? { mime: record.mime, base64: record.data } : undefined;
    },

    async sweep(threadId, referenced) {
      const record = checkVersion('attachments', await store.get<ThreadBlobs>(threadKey(threadId)));
      if (!record) return 0;
      const now = clock.now();
      const doomed = Object.entries(record.blobs)
        .filter(([sha, blob]) => !referenced.has(sha) && now - blob.at >= SWEEP_GRACE_MS)
        .map(([sha]) => sha);
      for (const sha of doomed) {
        await store.update<BlobRecord>(blobKey(sha), (current) => {
          const blob = checkVersion('blob', current);
          if (!blob) return undefined;
          const threads = blob.threads.filter((id) => id !== threadId);
          return threads.length > 0 ? { ...blob, threads } : undefined;
        });
      }
      if (doomed.length > 0) {
        const gone = new Set(doomed);
        await store.update<ThreadBlobs>(threadKey(threadId), (current) => {
          const stored = checkVersion('attachments', current);
          if (!stored) return undefined;
          return {
            ...stored,
            blobs: Object.fromEntries(Object.entries(stored.blobs).filter(([sha]) => !gone.has(sha))),
          };
        });
      }
      return doomed.length;
    },
  };
}

/** The blob ids of items' images and files. */
export function blobIdsOf(items: readonly { parts?: Part[] | undefined }[]): string[] {
  return items.flatMap((item) =>
    (item.parts ?? []).flatMap((part) => (part.kind === 'text' ? [] : [part.blobId])),
  );
}

/** True when an item carries an image or a file. */
export function hasAttachments(items: readonly Item[]): boolean {
  return blobIdsOf(items).length > 0;
}

/** The items with their images and files left out (for a model that takes none). */
export function withoutAttachments(items: readonly Item[]): Item[] {
  return items.map((item) => {
    if (!item.parts) return item;
    const { parts, ...rest } = item;
    const texts = parts.filter((part) => part.kind === 'text');
    return texts.length > 0 ? { ...rest, parts: texts } : rest;
  });
}

/** Every blob a thread still refers to: all its branches' items, and its waiting and failed messages. */
export async function referencedBlobs(session: ThreadSession, log: HistoryLog): Promise<Set<string>> {
  const ids = new Set<string>(blobIdsOf([...session.inbox, ...session.failed]));
  for (const branchId of Object.keys(session.branches)) {
    for (const id of blobIdsOf(await log.view(session, branchId).read())) ids.add(id);
  }
  return ids;
}
