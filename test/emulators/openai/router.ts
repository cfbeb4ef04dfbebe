/** Route templates ('POST /v1/conversations/:id/items') and matching of requests against them. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorState } from './state.ts';
import type { RecordedRequest } from './types.ts';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  rec: RecordedRequest;
  state: EmulatorState;
}

export type Handler = (ctx: Ctx) => void | Promise<void>;

export interface Route {
  method: string;
  /** e.g. '/v1/conversations/:id/items' */
  path: string;
  handler: Handler;
}

export interface RouteMatch {
  route: Route;
  template: string;
  params: Record<string, string>;
}

export function matchRoute(routes: Route[], method: string, path: string): RouteMatch | undefined {
  const segments = path.split('/').filter(Boolean);
  for (const route of routes) {
    if (route.method !== method) continue;
    const parts = route.path.split('/').filter(Boolean);
    if (parts.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? '';
      const s = segments[i] ?? '';
      if (p.startsWith(':')) {
        try {
          params[p.slice(1)] = decodeURIComponent(s);
        } catch {
          params[p.slice(1)] = s;
        }
      } else if (p !== s) {
        ok = false;
        break;
      }
    }
    if (ok) return { route, template: `${route.method} ${route.path}`, params };
  }
  return undefined;
}
