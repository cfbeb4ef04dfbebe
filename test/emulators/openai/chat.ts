/** /v1/chat/completions: n choices, streaming chunks, usage; optional llama.cpp-style rejection of n > 1. */
import { badRequest, invalidType, missingParam, modelNotFound } from './errors.ts';
import { SseWriter, sendJson } from './http.ts';
import { newChatCompletionId, nowSeconds } from './ids.ts';
import { isObject } from './input.ts';
import { bytesDigest, checkFileData, checkImageUrl, refuseWithoutVision } from './media.ts';
import { pace } from './pacing.ts';
import { chatPrompt, firstTokenMs, PromptCache } from './prompt-cache.ts';
import { countTokens, generateReply, tokenize } from './reply.ts';
import type { Ctx, Route } from './router.ts';
import type { Attachment, Json, ReplyMessage, Role } from './types.ts';
import { bodyObject, optionalBoolean, optionalNumber, optionalString } from './validate.ts';

export const LLAMA_N_MESSAGE = 'Only one completion choice is allowed';
const CHAT_ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'];
const FINGERPRINT = 'fp_emulator';

function chatMessages(v: unknown): ReplyMessage[] {
  if (v === undefined || v === null) throw missingParam('messages');
  if (!Array.isArray(v)) throw invalidType('messages', 'an array', v);
  if (v.length === 0)
    throw badRequest(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'messages',
      'empty_array',
    );
  const out: ReplyMessage[] = [];
  v.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!isObject(m)) throw invalidType(param, 'an object', m);
    if (typeof m.role !== 'string' || !CHAT_ROLES.includes(m.role)) {
      throw badRequest(
        `Invalid value: '${String(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        `${param}.role`,
        'invalid_value',
      );
    }
    let text = '';
    const attachments: Attachment[] = [];
    if (typeof m.content === 'string') text = m.content;
    else if (Array.isArray(m.content)) {
      m.content.forEach((p, j) => {
        const at = `${param}.content[${j}]`;
        if (!isObject(p)) throw invalidType(at, 'an object', p);
        if (p.type === 'image_url' || p.type === 'file') {
          if (m.role !== 'user')
            throw badRequest(
              `Invalid value: '${p.type}'. Supported values are: 'text' and 'refusal'.`,
              `${at}.type`,
              'invalid_value',
            );
          attachments.push(chatAttachment(p, at));
        } else if (typeof p.text === 'string') text += p.text;
      });
    } else if (m.content !== null && m.content !== undefined) {
      throw invalidType(`${param}.content`, 'one of a string or array of objects', m.content);
    }
    if (m.role === 'tool' || m.role === 'function') return;
    out.push(
      attachments.length > 0 ? { role: m.role as Role, text, attachments } : { role: m.role as Role, text },
    );
  });
  return out;
}

/** An `image_url` or `file` content part of a user message, checked as OpenAI checks it. */
function chatAttachment(p: Json, param: string): Attachment {
  if (p.type === 'image_url') {
    const image = p.image_url;
    if (!isObject(image)) throw invalidType(`${param}.image_url`, 'an object', image);
    if (image.detail !== undefined && !['low', 'high', 'auto'].includes(String(image.detail)))
      throw badRequest(
        `Invalid value: '${String(image.detail)}'. Supported values are: 'low', 'high', and 'auto'.`,
        `${param}.image_url.detail`,
        'invalid_value',
      );
    return checkImageUrl(image.url, `${param}.image_url.url`);
  }
  const file = p.file;
  if (!isObject(file)) throw invalidType(`${param}.file`, 'an object', file);
  if (typeof file.file_id === 'string') return { kind: 'file', digest: bytesDigest(file.file_id) };
  return checkFileData(file.file_data, file.filename, `${param}.file`);
}

function usageOf(prompt: number, cached: number, completion: number): Json {
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

async function createChatCompletion({ state, body, res, rec }: Ctx): Promise<void> {
  const b = bodyObject(body);
  const model = b.model;
  if (model === undefined || model === null) throw missingParam('model');
  if (typeof model !== 'string') throw invalidType('model', 'a string', model);
  const messages = chatMessages(b.messages);
  const n = optionalNumber(b, 'n', { min: 1, max: 128, integer: true }) ?? 1;
  if (n > 1 && state.chatRejectsMultipleChoices) throw badRequest(LLAMA_N_MESSAGE, 'n');
  const temperature = optionalNumber(b, 'temperature', { min: 0, max: 2 });
  const maxTokens =
    optionalNumber(b, 'max_completion_tokens', { min: 1, integer: true }) ??
    optionalNumber(b, 'max_tokens', { min: 1, integer: true });
  const stream = optionalBoolean(b, 'stream') ?? false;
  const streamOptions = b.stream_options;
  const includeUsage = isObject(streamOptions) && streamOptions.include_usage === true;
  if (!state.config.models.includes(model)) throw modelNotFound(model);
  refuseWithoutVision(model, messages, 'chat');
  const promptTokens = messages.reduce((sum, m) => sum + countTokens(m.text), 0);
  const window = state.contextWindow(model);
  if (promptTokens > window) {
    throw badRequest(
      `This model's maximum context length is ${window} tokens. However, your messages resulted in ${promptTokens} tokens. Please reduce the length of the messages.`,
      'messages',
      'context_length_exceeded',
    );
  }
  const partition = PromptCache.partition(model, optionalString(b, 'prompt_cache_key'));
  const prompt = chatPrompt(messages);
  const cachedTokens = state.promptCache.lookup(partition, prompt);
  rec.seen = { model, messages, inputTokens: promptTokens, cachedTokens, truncatedItems: 0 };

  const choices = Array.from({ length: n }, (_, index) => {
    const reply = generateReply({
      model,
      messages,
      temperature,
      choiceIndex: index,
      inputTokens: promptTokens,
    });
    let tokens = tokenize(reply.text);
    const truncated = maxTokens !== undefined && tokens.length > maxTokens;
    if (truncated) tokens = tokens.slice(0, maxTokens);
    return { index, reply, tokens, text: '', finish: truncated ? 'length' : 'stop' };
  });
  const steps = Math.max(0, ...choices.map((c) => c.tokens.length));
  const completionTokens = choices.reduce((sum, c) => sum + c.tokens.length, 0);
  const id = newChatCompletionId();
  const created = nowSeconds();

  const ac = new AbortController();
  state.running.add(ac);
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.on('close', onClose);
  const sse = stream ? new SseWriter(res) : undefined;
  const chunk = (choiceList: Json[], extra: Json = {}) =>
    sse?.data({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
      choices: choiceList,
      ...(includeUsage ? { usage: null } : {}),
      ...extra,
    });
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    state.promptCache.write(partition, prompt);
    for (const c of choices) {
      chunk([
        {
          index: c.index,
          delta: { role: 'assistant', content: '', refusal: null },
          logprobs: null,
          finish_reason: null,
        },
      ]);
    }
  };
  const ok = await pace(
    steps,
    { ...state.latency, firstTokenMs: firstTokenMs(state.latency.firstTokenMs, cachedTokens, promptTokens) },
    (i) => {
      start();
      for (const c of choices) {
        const tok = c.tokens[i];
        if (tok === undefined) continue;
        c.text += tok;
        const delta = c.reply.refusal ? { refusal: tok } : { content: tok };
        chunk([{ index: c.index, delta, logprobs: null, finish_reason: null }]);
      }
    },
    ac.signal,
  );
  state.running.delete(ac);
  res.off('close', onClose);
  if (!ok) {
    if (!res.destroyed) res.destroy();
    return;
  }
  for (const c of choices) c.text = c.tokens.join('');
  if (!sse) {
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: choices.map((c) => ({
        index: c.index,
        message: {
          role: 'assistant',
          content: c.reply.refusal ? null : c.text,
          refusal: c.reply.refusal ? c.text : null,
          annotations: [],
        },
        logprobs: null,
        finish_reason: c.finish,
      })),
      usage: usageOf(promptTokens, cachedTokens, completionTokens),
      service_tier: 'default',
      system_fingerprint: FINGERPRINT,
    });
    return;
  }
  start();
  for (const c of choices) chunk([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finish }]);
  if (includeUsage) chunk([], { usage: usageOf(promptTokens, cachedTokens, completionTokens) });
  sse.data('[DONE]');
  sse.end();
}

export const chatRoutes: Route[] = [
  { method: 'POST', path: '/v1/chat/completions', handler: createChatCompletion },
];
