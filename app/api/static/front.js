// The front page: submit a search, follow every job's state and percent.
import { ApiError, read, say, write } from "./api.js";

const form = document.getElementById("search-form");
const rows = document.getElementById("job-rows");
const ACTIVE = new Set(["queued", "downloading", "ingesting", "fast_detect", "detailed_detect"]);
let timer = null;

/** The form's values as the API wants them: numbers as numbers, empty fields left out. */
function body() {
  const out = {};
  for (const input of form.querySelectorAll("[data-kind]")) {
    const kind = input.dataset.kind;
    if (kind === "checkbox") {
      out[input.name] = input.checked;
      continue;
    }
    const value = input.value.trim();
    if (value === "") continue;
    if (kind === "number") out[input.name] = Number(value);
    else if (kind === "integer") out[input.name] = Number.parseInt(value, 10);
    else out[input.name] = value;
  }
  return out;
}

function clearErrors() {
  for (const error of form.querySelectorAll(".error")) {
    error.hidden = true;
    error.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Put each 422 message beside its field; true if every message found one. */
function showErrors(detail) {
  if (!Array.isArray(detail)) return false;
  let placed = true;
  for (const d of detail) {
    const name = d.loc[d.loc.length - 1];
    const error = form.querySelector(`[data-error-for="${CSS.escape(String(name))}"]`);
    if (!error) {
      placed = false;
      continue;
    }
    error.textContent = d.msg;
    error.hidden = false;
    form.querySelector(`[name="${CSS.escape(String(name))}"]`)?.setAttribute("aria-invalid", "true");
  }
  return placed;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const accepted = await write("POST", "/search", body());
    const again = accepted.duplicate_of_running ? " (the same search was already running)" : "";
    say(`Search queued as job ${accepted.job_id}${again}.`, "ok");
    await refresh();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 422 && showErrors(error.detail)) say("Please correct the marked fields.", "error");
    else say(error.message, "error");
  } finally {
    button.disabled = false;
  }
});

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(jobs) {
  rows.replaceChildren();
  if (!jobs.length) {
    const row = rows.insertRow();
    row.className = "empty";
    cell(row, "No jobs yet: submit a search.").colSpan = 6;
    return;
  }
  for (const job of jobs) {
    const row = rows.insertRow();
    row.dataset.jobId = job.job_id;
    row.dataset.state = job.state;
    const link = document.createElement("a");
    link.href = `/jobs/${job.job_id}`;
    link.textContent = job.job_id.slice(0, 8);
    link.title = job.job_id;
    link.setAttribute("aria-label", `job ${job.job_id}`);
    row.insertCell().append(link);
    cell(row, `${job.ra.toFixed(4)}°, ${job.dec >= 0 ? "+" : ""}${job.dec.toFixed(4)}°`, "num");
    cell(row, job.simulated && job.source !== "simulated" ? `${job.source} (simulated)` : job.source);
    const state = row.insertCell();
    state.className = "state-cell";
    const label = document.createElement("span");
    label.className = `state s-${job.state}`;
    label.textContent = job.state === "done" ? "done" : `${job.state.replace("_", " ")} ${job.percent.toFixed(0)}%`;
    state.append(label);
    if (ACTIVE.has(job.state)) {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = job.percent;
      bar.setAttribute("aria-label", `job ${job.job_id.slice(0, 8)} progress`);
      state.append(bar);
    }
    if (job.error) state.title = job.error;
    cell(row, job.state === "done" ? String(job.counts.tracks ?? 0) : "", "num");
    cell(row, new Date(job.created_at.endsWith("Z") || job.created_at.includes("+") ? job.created_at : `${job.created_at}Z`).toLocaleString());
  }
}

async function refresh() {
  clearTimeout(timer);
  try {
    const page = await read("/jobs?limit=50");
    render(page.jobs);
    const busy = page.jobs.some((job) => ACTIVE.has(job.state));
    timer = setTimeout(refresh, busy ? 1000 : 10000);
  } catch (error) {
    say(`Could not read the jobs: ${error.message}`, "error");
    timer = setTimeout(refresh, 5000);
  }
}

refresh();
