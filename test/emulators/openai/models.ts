/** /v1/models and /v1/models/:id. */
import { notFound } from './errors.ts';
import { sendJson } from './http.ts';
import type { Ctx, Route } from './router.ts';

const CREATED = 1_700_000_000;

function modelObject(id: string) {
  return { id, object: 'model', created: CREATED, owned_by: 'system' };
}

function listModels({ state, res }: Ctx): void {
  sendJson(res, 200, { object: 'list', data: state.config.models.map(modelObject) });
}

function retrieveModel({ state, params, res }: Ctx): void {
  const id = params.id ?? '';
  if (!state.config.models.includes(id)) {
    throw notFound(`The model '${id}' does not exist`, 'model', 'model_not_found');
  }
  sendJson(res, 200, modelObject(id));
}

export const modelRoutes: Route[] = [
  { method: 'GET', path: '/v1/models', handler: listModels },
  { method: 'GET', path: '/v1/models/:id', handler: retrieveModel },
];
