// The console's only way to the server: Klaxon's public API, with the session cookie and, on
// every change, the session's CSRF token.

let csrf = null;

/** Who is signed in, and what their role lets them do (the server checks again anyway). */
export const session = {
  principal: null,
  get canWrite() {
    const role = this.principal && this.principal.role;
    return role === 'admin' || role === 'editor';
  },
};

export function useCsrf(token) {
  csrf = token;
}

/** An answer other than 2xx, with the API's error code, message and field. */
export class ApiFailure extends Error {
  constructor(status, error) {
    super(error.message || `the server answered ${status}`);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const failure = new ApiFailure(response.status, data.error || {});
    if (response.status === 401 && path !== '/console/session') {
      window.dispatchEvent(new CustomEvent('klaxon:signed-out', { detail: failure.message }));
    }
    throw failure;
  }
  return data;
}
