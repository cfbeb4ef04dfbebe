import { randomBytes } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function alnum(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return s;
}

export const newConversationId = (): string => `conv_${hex(24)}`;
export const newMessageId = (): string => `msg_${hex(24)}`;
export const newItemId = (type: string): string =>
  `${type.replace(/[^a-z]/g, '').slice(0, 8) || 'item'}_${hex(24)}`;
export const newResponseId = (): string => `resp_${hex(24)}`;
export const newChatCompletionId = (): string => `chatcmpl-${alnum(29)}`;
export const newRequestId = (): string => `req_${hex(16)}`;

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
