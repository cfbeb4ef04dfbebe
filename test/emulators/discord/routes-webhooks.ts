// The interaction callback and the interaction webhook routes (authenticated by the interaction token).
import type { Ctx } from './context.ts';
import {
  createFollowup,
  editWebhookMessage,
  handleCallback,
  originalOf,
  webhookInteraction,
  webhookMessage,
} from './interactions.ts';
import { deleteMessage } from './messages.ts';
import type { BucketSpec } from './ratelimit.ts';
import { hashOf, type RouteDef, route } from './router.ts';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {});

const W = '/webhooks/:webhook_id/:webhook_token';
const EDIT_HASH = hashOf(`PATCH ${W}/messages/:message_id`);
const CREATE_HASH = hashOf(`POST ${W}`);

const webhookEditBucket = (p: Record<string, string>, ctx: Ctx): BucketSpec => ({
  key: `webhook-edit:${p.webhook_token}`,
  hash: EDIT_HASH,
  ...ctx.config.messageEdit,
});

const webhookCreateBucket = (p: Record<string, string>, ctx: Ctx): BucketSpec => ({
  key: `webhook-create:${p.webhook_token}`,
  hash: CREATE_HASH,
  ...ctx.config.messageCreate,
});

function interactionOf(ctx: Ctx, p: Record<string, string>) {
  return webhookInteraction(ctx, p.webhook_id ?? '', p.webhook_token ?? '');
}

export const webhookRoutes: RouteDef[] = [
  route('POST', '/interactions/:interaction_id/:interaction_token/callback', {
    auth: 'none',
    schema: 'InteractionCallback',
    bucket: (p) => ({
      key: `callback:${p.interaction_id}`,
      hash: hashOf('callback'),
      limit: 50,
      windowMs: 1000,
      unenforced: true,
    }),
    handle: ({ ctx, params, query, body, files }) => {
      const withResponse = query.get('with_response') === 'true';
      const out = handleCallback(
        ctx,
        params.interaction_id ?? '',
        params.interaction_token ?? '',
        obj(body),
        files,
        withResponse,
      );
      return out === undefined ? { status: 204 } : { status: 200, body: out };
    },
  }),
  route('GET', `${W}/messages/@original`, {
    auth: 'none',
    handle: ({ ctx, params }) => {
      const i = interactionOf(ctx, params);
      return { status: 200, body: ctx.store.messageJson(originalOf(ctx, i)) };
    },
  }),
  route('PATCH', `${W}/messages/@original`, {
    auth: 'none',
    schema: 'IncomingWebhookUpdateRequestPartial',
    bucket: webhookEditBucket,
    handle: ({ ctx, params, body, files }) => {
      const i = interactionOf(ctx, params);
      const m = originalOf(ctx, i);
      editWebhookMessage(ctx, i, m, obj(body), files);
      return { status: 200, body: ctx.store.messageJson(m) };
    },
  }),
  route('DELETE', `${W}/messages/@original`, {
    auth: 'none',
    handle: ({ ctx, params }) => {
      const i = interactionOf(ctx, params);
      deleteMessage(ctx, originalOf(ctx, i));
      return { status: 204 };
    },
  }),
  route('POST', W, {
    auth: 'none',
    schema: 'WebhookExecute',
    bucket: webhookCreateBucket,
    handle: ({ ctx, params, query, body, files }) => {
      const i = interactionOf(ctx, params);
      const m = createFollowup(ctx, i, obj(body), files);
      return query.get('wait') === 'true' ? { status: 200, body: ctx.store.messageJson(m) } : { status: 204 };
    },
  }),
  route('GET', `${W}/messages/:message_id`, {
    auth: 'none',
    handle: ({ ctx, params }) => {
      const i = interactionOf(ctx, params);
      return { status: 200, body: ctx.store.messageJson(webhookMessage(ctx, i, params.message_id ?? '')) };
    },
  }),
  route('PATCH', `${W}/messages/:message_id`, {
    auth: 'none',
    schema: 'IncomingWebhookUpdateRequestPartial',
    bucket: webhookEditBucket,
    handle: ({ ctx, params, body, files }) => {
      const i = interactionOf(ctx, params);
      const m = webhookMessage(ctx, i, params.message_id ?? '');
      editWebhookMessage(ctx, i, m, obj(body), files);
      return { status: 200, body: ctx.store.messageJson(m) };
    },
  }),
  route('DELETE', `${W}/messages/:message_id`, {
    auth: 'none',
    handle: ({ ctx, params }) => {
      const i = interactionOf(ctx, params);
      deleteMessage(ctx, webhookMessage(ctx, i, params.message_id ?? ''));
      return { status: 204 };
    },
  }),
];
