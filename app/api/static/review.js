// The job page: blink every track's stamps in step, confirm or reject each one, by mouse or keys.
import { ApiError, read, say, write } from "./api.js";

const main = document.querySelector("main.job");
const jobId = main.dataset.jobId;
const data = JSON.parse(document.getElementById("review-data").textContent);
const entries = [...document.querySelectorAll("article.track")];
const frames = data.frames.length;
let current = -1;
let frame = 0;
let timer = null;

// ------------------------------------------------------------------ a job still running

async function follow() {
  try {
    const status = await read(`/status/${jobId}`);
    document.getElementById("job-state").textContent = status.state.replace("_", " ");
    document.getElementById("job-percent").textContent = status.percent.toFixed(0);
    document.getElementById("job-message").textContent = status.message || "";
    document.getElementById("job-progress").value = status.percent;
    if (status.state === "done" || status.state === "failed" || status.state === "cancelled") {
      window.location.reload();
      return;
    }
  } catch (error) {
    say(`Could not read the job's status: ${error.message}`, "error");
  }
  setTimeout(follow, 1000);
}

// ------------------------------------------------------------------ the blink

function showFrame(f) {
  if (!frames) return;
  frame = ((f % frames) + frames) % frames;
  main.style.setProperty("--f", String(frame));
  document.getElementById("frame-index").textContent = String(frame + 1);
  document.getElementById("frame-label").textContent = data.frames[frame];
  for (const entry of entries) {
    const track = data.tracks[entry.dataset.trackId];
    if (!track) continue;
    const mark = entry.querySelector(".mark");
    const at = track.marks[frame];
    if (mark) {
      mark.hidden = !at;
      if (at) {
        mark.style.left = `${at[0]}px`;
        mark.style.top = `${at[1]}px`;
        mark.classList.toggle("predicted", track.captions[frame].startsWith("not measured"));
      }
    }
    entry.querySelector(".caption").textContent = `Frame ${frame + 1}: ${track.captions[frame] || ""}`;
  }
}

function play(on) {
  clearInterval(timer);
  timer = on ? setInterval(() => showFrame(frame + 1), Number(document.getElementById("speed").value)) : null;
  const button = document.getElementById("play");
  button.textContent = on ? "Pause" : "Play";
  button.setAttribute("aria-pressed", on ? "true" : "false");
}

function step(by) {
  play(false);
  showFrame(frame + by);
}

// ------------------------------------------------------------------ choosing a track

function select(i, { scroll = true } = {}) {
  if (!entries.length) return;
  current = Math.max(0, Math.min(entries.length - 1, i));
  const entry = entries[current];
  for (const e of entries) e.classList.toggle("current", e === entry);
  for (const a of document.querySelectorAll("[data-ov]")) {
    a.classList.toggle("current", a.dataset.ov === entry.dataset.trackId);
  }
  entry.focus({ preventScroll: true });
  if (scroll) entry.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// ------------------------------------------------------------------ decisions

const STATE = { confirm: "confirmed", reject: "rejected", undo: "pending" };

function counts() {
  for (const state of ["confirmed", "rejected", "pending"]) {
    const n = entries.filter((e) => e.dataset.review === state).length;
    for (const el of document.querySelectorAll(`.n-${state}`)) el.textContent = String(n);
  }
}

function show(entry, track) {
  const state = track.review.state;
  entry.dataset.review = state;
  entry.querySelector(".state").textContent = state;
  entry.querySelector('[data-action="confirm"]').setAttribute("aria-pressed", String(state === "confirmed"));
  entry.querySelector('[data-action="reject"]').setAttribute("aria-pressed", String(state === "rejected"));
  entry.querySelector('[data-action="undo"]').disabled = state === "pending";
  const when = track.review.at ? track.review.at.slice(0, 19).replace("T", " ") : "";
  entry.querySelector(".when").textContent = state === "pending" ? "" : `${state} ${when.slice(0, 16)} UTC`;
  counts();
}

async function decide(entry, action, { advance = false } = {}) {
  const id = entry.dataset.trackId;
  entry.setAttribute("aria-busy", "true");
  try {
    const track = await write("PATCH", `/jobs/${jobId}/tracks/${encodeURIComponent(id)}`, {
      review: STATE[action],
    });
    show(entry, track);
    say(`${id}: ${track.review.state}.`, "ok");
    if (advance && current < entries.length - 1) select(current + 1);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(`${id} was not changed: ${error.message}`, "error");
  } finally {
    entry.removeAttribute("aria-busy");
  }
}

// ------------------------------------------------------------------ mouse and keys

function onClick(event) {
  const button = event.target.closest("[data-action]");
  const entry = event.target.closest("article.track");
  if (entry) select(entries.indexOf(entry), { scroll: false });
  if (button && entry) decide(entry, button.dataset.action);
}

function onOverview(event) {
  const link = event.target.closest("[data-ov]");
  if (!link) return;
  event.preventDefault();
  select(entries.findIndex((e) => e.dataset.trackId === link.dataset.ov));
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, select, textarea, dialog")) return;
  const onControl = event.target.closest("button, a");
  const entry = entries[current];
  const keys = {
    j: () => select(current + 1),
    ArrowDown: () => select(current + 1),
    k: () => select(current - 1),
    ArrowUp: () => select(current - 1),
    c: () => entry && decide(entry, "confirm", { advance: true }),
    r: () => entry && decide(entry, "reject", { advance: true }),
    u: () => entry && decide(entry, "undo"),
    ArrowLeft: () => step(-1),
    ArrowRight: () => step(1),
    " ": () => play(timer === null),
  };
  if (onControl && (event.key === " " || event.key === "Enter")) return; // the control's own key
  const run = keys[event.key];
  if (!run) return;
  event.preventDefault();
  run();
}

if (main.dataset.state === "done") {
  document.querySelector(".tracks").addEventListener("click", onClick);
  document.querySelector(".ov-marks")?.addEventListener("click", onOverview);
  document.addEventListener("keydown", onKey);
  document.getElementById("play").addEventListener("click", () => play(timer === null));
  document.getElementById("prev-frame").addEventListener("click", () => step(-1));
  document.getElementById("next-frame").addEventListener("click", () => step(1));
  document.getElementById("speed").addEventListener("change", () => timer !== null && play(true));
  const hash = entries.findIndex((e) => `#${e.id}` === window.location.hash);
  select(hash >= 0 ? hash : 0, { scroll: hash >= 0 });
  showFrame(0);
  play(frames > 1 && !window.matchMedia("(prefers-reduced-motion: reduce)").matches);
} else if (document.getElementById("job-progress")) {
  follow();
}
