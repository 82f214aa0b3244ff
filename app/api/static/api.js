// Writes through the API, with the API key when the server has one; messages to the user.
const KEY = "astrohunter-api-key";
const keyRequired = document.body.dataset.keyRequired === "1";

export class ApiError extends Error {
  constructor(status, message, detail) {
    super(message);
    this.status = status;
    this.detail = detail;
  }
}

/** Show a message in the page's status line (kind: "info", "ok" or "error"). */
let sayTimer = null;

/** Show a message in the page's status line (kind: "info", "ok" or "error");
 *  other than errors, it goes after a few seconds. */
export function say(text, kind = "info") {
  const box = document.getElementById("status");
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = !text;
  clearTimeout(sayTimer);
  if (kind !== "error") sayTimer = setTimeout(() => (box.hidden = true), 4000);
}

function storedKey() {
  return localStorage.getItem(KEY) || "";
}

function showForget() {
  const forget = document.getElementById("forget-key");
  if (forget) forget.hidden = !storedKey();
}

/** Ask for the API key in the page's dialog; resolves to the key, or "" when cancelled. */
function askKey() {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => resolve(dialog.returnValue === "ok" ? input.value.trim() : ""),
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

function message(status, body) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${d.loc[d.loc.length - 1]}: ${d.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : `the server answered ${status}`;
}

/** Send a JSON write (POST, PATCH) to the API; resolves to the answer's JSON.
 *  Throws ApiError: 401 when the key is missing or refused (it is then forgotten). */
export async function write(method, url, body) {
  let key = storedKey();
  if (keyRequired && !key) {
    key = await askKey();
    if (!key) throw new ApiError(401, "No API key given: nothing was changed.");
    localStorage.setItem(KEY, key);
    showForget();
  }
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(url, { method, headers, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => null);
  if (response.status === 401) {
    localStorage.removeItem(KEY);
    showForget();
    throw new ApiError(
      401,
      "The server refused the API key (401): nothing was changed. Try again to enter the key.",
    );
  }
  if (!response.ok) {
    throw new ApiError(response.status, message(response.status, answer), answer && answer.detail);
  }
  return answer;
}

/** GET JSON from the API (reads are open). */
export async function read(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new ApiError(response.status, `${url}: ${response.status}`);
  return response.json();
}

document.getElementById("forget-key")?.addEventListener("click", () => {
  localStorage.removeItem(KEY);
  showForget();
  say("The API key was forgotten; the page will ask for it at the next change.");
});
showForget();
