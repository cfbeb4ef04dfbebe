import type { ChatCompletionContentPart } from 'openai/resources/chat/completions';
import type { ResponseInputMessageContentList } from 'openai/resources/responses/responses';
import { type BlobReader, blobIdsOf } from '../core/attachments.ts';
import type { Item, Part } from '../core/model.ts';

export type ImageDetail = 'low' | 'high' | 'auto';

/** What a backend needs to send images and files: where their bytes are, and the detail of images in forks. */
export interface AttachmentOptions {
  blobs: BlobReader;
  /** `detail` of images sent to alternatives (they are paid once per alternative); FORK_IMAGE_DETAIL. */
  forkImageDetail: ImageDetail;
}

/** Items' attachments as data URLs, read from the store once per request; `detail` for images that set none. */
export interface Attached {
  urls: ReadonlyMap<string, string>;
  detail: ImageDetail;
}

/** Reads the blobs `items` refer to. A blob that is gone (a pruned thread's) is left out; its part becomes a note. */
export async function attach(
  items: readonly Item[],
  options: AttachmentOptions | undefined,
  detail: ImageDetail,
): Promise<Attached> {
  const urls = new Map<string, string>();
  if (options) {
    for (const id of new Set(blobIdsOf(items))) {
      const blob = await options.blobs.read(id);
      if (blob) urls.set(id, `data:${blob.mime};base64,${blob.base64}`);
    }
  }
  return { urls, detail };
}

/** The note a model reads instead of an attachment it cannot get. */
function missing(part: Exclude<Part, { kind: 'text' }>, why: string): string {
  return `[${part.kind === 'image' ? 'image' : 'file'} ${part.name}: ${why}]`;
}

/** A user item's content for the Responses and Conversations APIs: text, then `input_image` / `input_file` parts. */
export function responsesContent(
  item: Item,
  attached: Attached | undefined,
): string | ResponseInputMessageContentList {
  if (!item.parts?.length || item.role !== 'user') return item.text;
  const content: ResponseInputMessageContentList = [];
  if (item.text) content.push({ type: 'input_text', text: item.text });
  for (const part of item.parts) {
    if (part.kind === 'text') {
      content.push({ type: 'input_text', text: part.text });
      continue;
    }
    const url = attached?.urls.get(part.blobId);
    if (!url) content.push({ type: 'input_text', text: missing(part, 'no longer available') });
    else if (part.kind === 'image')
      content.push({ type: 'input_image', image_url: url, detail: part.detail ?? attached!.detail });
    else content.push({ type: 'input_file', filename: part.name, file_data: url });
  }
  return content;
}

/**
 * A user item's content for Chat Completions: text, then `image_url` parts. Files are not sent: most servers that
 * speak Chat Completions take none, so the model reads a note naming them.
 */
export function chatContent(
  item: Item,
  attached: Attached | undefined,
): string | ChatCompletionContentPart[] {
  if (!item.parts?.length || item.role !== 'user') return item.text;
  const content: ChatCompletionContentPart[] = [];
  if (item.text) content.push({ type: 'text', text: item.text });
  for (const part of item.parts) {
    if (part.kind === 'text') {
      content.push({ type: 'text', text: part.text });
      continue;
    }
    const url = attached?.urls.get(part.blobId);
    if (part.kind === 'file')
      content.push({ type: 'text', text: missing(part, 'not sent: this backend takes no files') });
    else if (!url) content.push({ type: 'text', text: missing(part, 'no longer available') });
    else content.push({ type: 'image_url', image_url: { url, detail: part.detail ?? attached!.detail } });
  }
  return content;
}
