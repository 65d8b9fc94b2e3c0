// Calls the Horizon API and turns JSend answers into data or an ApiError
// whose message says what the server said (status, fields, message).

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function describe(status, statusText, body, raw) {
  const head = `HTTP ${status}${statusText ? " " + statusText : ""}`;
  if (body && body.status === "fail" && body.data && typeof body.data === "object") {
    const fields = Object.entries(body.data).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    return `${head} (fail) ${fields.join("; ")}`;
  }
  if (body && body.status === "error") return `${head} (error) ${body.message}`;
  const text = (raw || "").trim();
  return text ? `${head}: ${text.slice(0, 500)}` : head;
}

export function createApi(getKey) {
  return async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    const key = getKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, `${method} ${path}: the server did not answer (${e.message})`, null);
    }
    const raw = await response.text();
    let parsed = null;
    try {
      parsed = raw ? JSON.parse(raw) : null;
    } catch {}
    if (response.ok && parsed && parsed.status === "success") return { data: parsed.data, status: response.status, headers: response.headers };
    if (response.status === 202 && parsed) return { data: parsed.data, status: 202, headers: response.headers };
    throw new ApiError(response.status, `${method} ${path}: ${describe(response.status, response.statusText, parsed, raw)}`, parsed);
  };
}
