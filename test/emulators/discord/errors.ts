// Discord's error shapes: { message, code, errors? }.

export class ApiError extends Error {
  status: number;
  code: number;
  errors: FormErrors | undefined;
  extraHeaders: Record<string, string>;

  constructor(status: number, code: number, message: string, errors?: FormErrors) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
    this.extraHeaders = {};
  }

  toJSON(): Record<string, unknown> {
    return this.errors === undefined
      ? { message: this.message, code: this.code }
      : { message: this.message, code: this.code, errors: this.errors };
  }
}

/** Nested form errors: { content: { _errors: [{ code, message }] }, components: { 0: { ... } } }. */
export type FormErrors = { [key: string]: FormErrors | { code: string; message: string }[] };

export class FormErrorCollector {
  root: FormErrors = {};
  count = 0;

  add(path: (string | number)[], code: string, message: string): void {
    let node = this.root;
    for (const seg of path) {
      const key = String(seg);
      const next = node[key];
      if (next === undefined || Array.isArray(next)) {
        const created: FormErrors = {};
        node[key] = created;
        node = created;
      } else {
        node = next;
      }
    }
    const list = node._errors;
    const entry = { code, message };
    if (Array.isArray(list)) list.push(entry);
    else node._errors = [entry];
    this.count++;
  }

  throwIfAny(): void {
    if (this.count > 0) throw invalidForm(this.root);
  }
}

export function invalidForm(errors: FormErrors): ApiError {
  return new ApiError(400, 50035, 'Invalid Form Body', errors);
}

export function formError(path: (string | number)[], code: string, message: string): ApiError {
  const c = new FormErrorCollector();
  c.add(path, code, message);
  return invalidForm(c.root);
}

export const Errors = {
  unauthorized: () => new ApiError(401, 0, '401: Unauthorized'),
  notFound: () => new ApiError(404, 0, '404: Not Found'),
  methodNotAllowed: () => new ApiError(405, 0, '405: Method Not Allowed'),
  unknownChannel: () => new ApiError(404, 10003, 'Unknown Channel'),
  unknownGuild: () => new ApiError(404, 10004, 'Unknown Guild'),
  unknownMember: () => new ApiError(404, 10007, 'Unknown Member'),
  unknownMessage: () => new ApiError(404, 10008, 'Unknown Message'),
  unknownApplication: () => new ApiError(404, 10002, 'Unknown Application'),
  unknownUser: () => new ApiError(404, 10013, 'Unknown User'),
  unknownWebhook: () => new ApiError(404, 10015, 'Unknown Webhook'),
  unknownCommand: () => new ApiError(404, 10063, 'Unknown application command'),
  unknownInteraction: () => new ApiError(404, 10062, 'Unknown interaction'),
  alreadyAcked: () => new ApiError(400, 40060, 'Interaction has already been acknowledged.'),
  invalidWebhookToken: () => new ApiError(401, 50027, 'Invalid Webhook Token'),
  missingPermissions: () => new ApiError(403, 50013, 'Missing Permissions'),
  missingAccess: () => new ApiError(403, 50001, 'Missing Access'),
  emptyMessage: () => new ApiError(400, 50006, 'Cannot send an empty message'),
  editOthersMessage: () => new ApiError(403, 50005, 'Cannot edit a message authored by another user'),
  wrongChannelType: () => new ApiError(400, 50024, 'Cannot execute action on this channel type'),
  threadArchived: () => new ApiError(400, 50083, 'Thread is archived'),
  threadAlreadyCreated: () => new ApiError(400, 160004, 'A thread has already been created for this message'),
  invalidJson: () => new ApiError(400, 50109, 'The request body contains invalid JSON.'),
};
