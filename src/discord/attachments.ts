import type { Attachment } from 'discord.js';
import type { AttachmentRefusal, AttachmentStore, IncomingAttachment } from '../core/attachments.ts';
import type { Part } from '../core/model.ts';

/** What a file is, from its first bytes (a name or a declared type can lie, and the model must get what it takes). */
export function sniff(bytes: Uint8Array): { kind: 'image' | 'file'; mime: string } | undefined {
  const starts = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  const ascii = (from: number, text: string) =>
    [...text].every((c, i) => bytes[from + i] === c.charCodeAt(0));
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return { kind: 'image', mime: 'image/png' };
  if (starts(0xff, 0xd8, 0xff)) return { kind: 'image', mime: 'image/jpeg' };
  if (ascii(0, 'RIFF') && ascii(8, 'WEBP')) return { kind: 'image', mime: 'image/webp' };
  if (ascii(0, 'GIF87a') || ascii(0, 'GIF89a')) return { kind: 'image', mime: 'image/gif' };
  if (ascii(0, '%PDF-')) return { kind: 'file', mime: 'application/pdf' };
  return undefined;
}

/**
 * The number of frames of a GIF, by walking its blocks (OpenAI takes only non-animated GIFs). A file that ends early
 * counts what it had.
 */
export function gifFrames(bytes: Uint8Array): number {
  let at = 13;
  const flags = bytes[10] ?? 0;
  if (flags & 0x80) at += 3 * 2 ** ((flags & 0x07) + 1);
  const skipSubBlocks = () => {
    while (at < bytes.length && bytes[at] !== 0) at += (bytes[at] ?? 0) + 1;
    at += 1;
  };
  let frames = 0;
  while (at < bytes.length) {
    const block = bytes[at];
    if (block === 0x3b) break;
    if (block === 0x21) {
      at += 2;
      skipSubBlocks();
    } else if (block === 0x2c) {
      frames += 1;
      const local = bytes[at + 9] ?? 0;
      at += 10;
      if (local & 0x80) at += 3 * 2 ** ((local & 0x07) + 1);
      at += 1; // LZW minimum code size
      skipSubBlocks();
    } else break;
  }
  return frames;
}

/** Attachments that may be an image or a PDF by their declared type or name (only those are downloaded as such). */
export function isMedia(attachment: Pick<Attachment, 'contentType' | 'name'>): boolean {
  return (
    /^(image\/(png|jpeg|webp|gif)|application\/pdf)\b/.test(attachment.contentType ?? '') ||
    /\.(png|jpe?g|webp|gif|pdf)$/i.test(attachment.name)
  );
}

/**
 * Downloads a message's images and PDFs (before the URL expires) and has the store keep what fits the limits. An
 * attachment over the size limit is refused from its declared size, without downloading it; an animated GIF or a
 * file that is not what it says is named in the text instead.
 */
export async function readMedia(
  threadId: string,
  attachments: readonly Attachment[],
  store: AttachmentStore,
): Promise<{ parts: Part[]; refused: AttachmentRefusal[]; notes: string[] }> {
  const { limits } = store;
  const refused: AttachmentRefusal[] = [];
  const notes: string[] = [];
  const files: IncomingAttachment[] = [];
  for (const attachment of attachments) {
    const pdf = /pdf/i.test(attachment.contentType ?? '') || /\.pdf$/i.test(attachment.name);
    const max = pdf ? limits.fileMaxBytes : limits.imageMaxBytes;
    if (files.length >= limits.perMessage) {
      refused.push({ name: attachment.name, reason: 'too_many', limit: limits.perMessage });
      continue;
    }
    if (attachment.size > max) {
      refused.push({ name: attachment.name, reason: 'too_large', limit: max });
      continue;
    }
    let bytes: Uint8Array;
    try {
      const response = await fetch(attachment.url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch {
      notes.push(`[attachment ${attachment.name}: could not be downloaded]`);
      continue;
    }
    const kind = sniff(bytes);
    if (!kind) notes.push(`[attachment ${attachment.name}: not an image or PDF the model reads]`);
    else if (kind.mime === 'image/gif' && gifFrames(bytes) > 1)
      notes.push(`[attachment ${attachment.name}: an animated GIF, not sent]`);
    else files.push({ name: attachment.name, mime: kind.mime, kind: kind.kind, bytes });
  }
  const admitted = await store.admit(threadId, files);
  return { parts: admitted.parts, refused: [...refused, ...admitted.refused], notes };
}
