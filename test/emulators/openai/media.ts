/**
 * Images and files in requests: validated as OpenAI validates them (as far as its documentation and its error
 * messages show; see README, "Images and files"), and digested so the deterministic reply can name which bytes the
 * model saw.
 */
import { createHash } from 'node:crypto';
import { badRequest } from './errors.ts';
import type { Attachment, Json, ReplyMessage } from './types.ts';

/** Models that take text only: a request with an image or file for them is refused as OpenAI refuses it. */
export const NON_VISION_MODELS: readonly string[] = ['gpt-3.5-turbo'];

const IMAGE_MIMES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];

/** 8 hex chars of the sha256 of the bytes. */
export function bytesDigest(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 8);
}

function decodeDataUrl(url: string): { mime: string; bytes: Buffer } | undefined {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!m?.[1] || m[2] === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(m[2]) || m[2].length % 4 !== 0) return undefined;
  return { mime: m[1], bytes: Buffer.from(m[2], 'base64') };
}

function looksLike(mime: string, bytes: Buffer): boolean {
  const ascii = (from: number, text: string) =>
    bytes.subarray(from, from + text.length).toString('latin1') === text;
  switch (mime) {
    case 'image/png':
      return bytes[0] === 0x89 && ascii(1, 'PNG');
    case 'image/jpeg':
      return bytes[0] === 0xff && bytes[1] === 0xd8;
    case 'image/webp':
      return ascii(0, 'RIFF') && ascii(8, 'WEBP');
    case 'image/gif':
      return ascii(0, 'GIF8');
    case 'application/pdf':
      return ascii(0, '%PDF-');
    default:
      return false;
  }
}

/** An image URL (`input_image.image_url`, `image_url.url`): an http(s) URL, or a base64 data URL of an image. */
export function checkImageUrl(url: unknown, param: string): Attachment {
  if (typeof url !== 'string')
    throw badRequest(
      `Invalid type for '${param}': expected a string, but got ${url === null ? 'null' : typeof url} instead.`,
      param,
      'invalid_type',
    );
  if (/^https?:\/\//.test(url)) return { kind: 'image', digest: bytesDigest(url) };
  const data = decodeDataUrl(url);
  if (!data || !url.startsWith('data:image/'))
    throw badRequest(
      `Invalid '${param}'. Expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got ${data ? `unsupported MIME type '${data.mime}'` : 'a value that is not a valid data URL'}.`,
      param,
      'invalid_value',
    );
  if (!IMAGE_MIMES.includes(data.mime) || !looksLike(data.mime, data.bytes))
    throw badRequest(
      "You uploaded an unsupported image. Please make sure your image has of one the following formats: ['png', 'jpeg', 'gif', 'webp'].",
      param,
      'invalid_image_format',
    );
  return { kind: 'image', digest: bytesDigest(data.bytes) };
}

/** A file given inline (`input_file.file_data`, chat `file.file_data`): a base64 data URL of a PDF, with a filename. */
export function checkFileData(fileData: unknown, filename: unknown, param: string): Attachment {
  if (typeof filename !== 'string' || filename === '')
    throw badRequest(
      `Missing required parameter: '${param}.filename'.`,
      `${param}.filename`,
      'missing_required_parameter',
    );
  const data = typeof fileData === 'string' ? decodeDataUrl(fileData) : undefined;
  if (!data)
    throw badRequest(
      `Invalid '${param}.file_data'. Expected a base64-encoded data URL (e.g. 'data:application/pdf;base64,...').`,
      `${param}.file_data`,
      'invalid_value',
    );
  if (data.mime !== 'application/pdf' || !looksLike(data.mime, data.bytes))
    throw badRequest(
      `Invalid input: Expected context stuffing file type to be a supported format: .pdf, but got '${data.mime}'.`,
      `${param}.file_data`,
      'unsupported_file',
    );
  return { kind: 'file', digest: bytesDigest(data.bytes) };
}

/** `input_image` and `input_file` parts of the Responses API, checked; returns the part as stored. */
export function checkInputPart(part: Json, param: string): Json {
  if (part.type === 'input_image') {
    if (part.detail !== undefined && !['low', 'high', 'auto', 'original'].includes(String(part.detail)))
      throw badRequest(
        `Invalid value: '${String(part.detail)}'. Supported values are: 'low', 'high', 'auto', and 'original'.`,
        `${param}.detail`,
        'invalid_value',
      );
    if (typeof part.file_id === 'string') return { ...part };
    checkImageUrl(part.image_url, `${param}.image_url`);
    return { type: 'input_image', image_url: part.image_url, detail: part.detail ?? 'auto', file_id: null };
  }
  if (part.type === 'input_file') {
    if (typeof part.file_id === 'string') return { ...part };
    checkFileData(part.file_data, part.filename, param);
    return { type: 'input_file', filename: part.filename, file_data: part.file_data };
  }
  return { ...part };
}

/** What a stored part shows the model, if it is an image or a file given inline. */
export function attachmentOf(part: Json): Attachment | undefined {
  if (part.type === 'input_image' && typeof part.image_url === 'string')
    return checkImageUrl(part.image_url, 'image_url');
  if (part.type === 'input_image' && typeof part.file_id === 'string')
    return { kind: 'image', digest: bytesDigest(part.file_id) };
  if (part.type === 'input_file' && typeof part.file_data === 'string')
    return checkFileData(part.file_data, part.filename, 'file');
  if (part.type === 'input_file' && typeof part.file_id === 'string')
    return { kind: 'file', digest: bytesDigest(part.file_id) };
  return undefined;
}

/**
 * The refusal of a model without vision, as OpenAI words it for Chat Completions (`param` names the first image
 * part); the Responses API's wording is a guess in the same form.
 */
export function refuseWithoutVision(
  model: string,
  messages: readonly ReplyMessage[],
  api: 'chat' | 'responses',
): void {
  if (!NON_VISION_MODELS.includes(model)) return;
  const at = messages.findIndex((m) => (m.attachments?.length ?? 0) > 0);
  if (at < 0) return;
  const type = api === 'chat' ? 'image_url' : 'input_image';
  throw badRequest(
    `Invalid content type. ${type} is only supported by certain models.`,
    api === 'chat' ? `messages.[${at}].content.[1].type` : `input.[${at}].content.[1].type`,
    null,
  );
}
