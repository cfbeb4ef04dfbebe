import { createHash } from 'node:crypto';
import type { Ctx } from './context.ts';
import type { FileInput } from './messages.ts';
import type { BucketSpec } from './ratelimit.ts';
import type { SchemaKey } from './spec.ts';

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface RouteCall {
  ctx: Ctx;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  files: FileInput[];
}

export interface RouteResult {
  status: number;
  body?: unknown;
}

export interface RouteDef {
  method: Method;
  /** Template with Discord's parameter names, e.g. '/channels/:channel_id/messages/:message_id'. */
  path: string;
  /** 'bot': needs `Authorization: Bot <token>`; 'none': the interaction token in the URL is the credential. */
  auth: 'bot' | 'none';
  schema?: SchemaKey;
  /** Rate limit bucket; the default one allows Config.defaultLimit per route and major parameter. */
  bucket?: (params: Record<string, string>, ctx: Ctx) => BucketSpec;
  handle(call: RouteCall): RouteResult | Promise<RouteResult>;
}

export function route(method: Method, path: string, def: Omit<RouteDef, 'method' | 'path'>): RouteDef {
  return { method, path, ...def };
}

export function hashOf(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 16);
}

export interface Match {
  def: RouteDef;
  params: Record<string, string>;
}

/** Matches decoded path segments against templates; literal segments win over parameters. */
export function matchRoute(
  routes: RouteDef[],
  method: string,
  segments: string[],
): { match?: Match; pathExists: boolean } {
  let best: { match: Match; literals: number } | undefined;
  let pathExists = false;
  for (const def of routes) {
    const tpl = def.path.split('/').slice(1);
    if (tpl.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let literals = 0;
    let ok = true;
    for (let n = 0; n < tpl.length; n++) {
      const t = tpl[n] ?? '';
      const s = segments[n] ?? '';
      if (t.startsWith(':')) params[t.slice(1)] = s;
      else if (t === s) literals++;
      else {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    pathExists = true;
    if (def.method !== method) continue;
    if (!best || literals > best.literals) best = { match: { def, params }, literals };
  }
  return best ? { match: best.match, pathExists } : { pathExists };
}

/** The major parameter of a route, as Discord (and discord.js) bucket by it. */
export function majorOf(params: Record<string, string>): string {
  if (params.webhook_id !== undefined && params.webhook_token !== undefined) {
    return `${params.webhook_id}/${params.webhook_token}`;
  }
  return params.channel_id ?? params.guild_id ?? params.interaction_id ?? 'global';
}
