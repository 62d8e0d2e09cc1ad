// The console's only way to the server: Klaxon's public API, with the session cookie and, on
// every change, the session's CSRF token.

let csrf = null;

/** Who is signed in, and what their role lets them do (the server checks again anyway). */
export const session = {
  principal: null,
  /** Whether the role grants `action` on `resource` (on an object made by `owner`, when given). */
  can(resource, action, owner) {
    const reach = this.principal?.permissions?.[resource]?.[action];
    return reach === 'all' || (reach === 'own' && (owner === undefined || owner === this.principal.key_id));
  },
};

export function useCsrf(token) {
  csrf = token;
}

/** An answer other than 2xx, with the API's error code, message and field, and the whole body. */
export class ApiFailure extends Error {
  constructor(status, body) {
    const error = body.error || {};
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
    this.body = body;
  }
}

/** Calls the API; `body` is sent as JSON, or as it is when it is a Blob (with the Blob's type). */
export async function api(method, path, body) {
  const headers = {};
  const raw = body instanceof Blob;
  if (body !== undefined) headers['content-type'] = raw ? body.type : 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined || raw ? body : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const failure = new ApiFailure(response.status, data);
    if (response.status === 401 && path !== '/console/session') {
      window.dispatchEvent(new CustomEvent('klaxon:signed-out', { detail: failure.message }));
    }
    throw failure;
  }
  return data;
}
