"use strict";
// The facility console. It calls the same facility API a facility's own software would
// (see /docs) with the key the staff member typed in, and keeps no data of its own beyond
// this tab's sessionStorage. Every text is Korean; every date is shown in Asia/Seoul.

const KEY_STORE = "gwangsan.facilityKey";
const PAGE_SIZE = 100;   // postings asked per page; the list follows next_cursor to the end
const SHOWN_STEP = 20;   // cards added by "더 보기"
const WEEKS_MAX = 12;    // "repeat weekly" up to this many weeks
const SEOUL_OFFSET = "+09:00"; // Korea has no daylight saving time

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  postings: [],      // every posting of the facility, newest first
  shown: SHOWN_STEP,
  view: "list",
  weekStart: null,   // "YYYY-MM-DD" of the Monday shown in the week view
  posting: null,     // the posting open in the detail screen
  roster: null,
  form: null,        // {mode: "create"|"edit"|"duplicate", posting}
  submitted: null,   // {signature, keys}: the Idempotency-Keys fixed when a form was submitted
  busy: false,
};

// --- Korean texts -------------------------------------------------------------------------

const STATUS = {
  pending_budget: "예산 확인 중",
  open: "모집 중",
  closed: "마감",
  cancelled: "취소됨",
  rejected: "반려됨",
};
const BOOKING = { confirmed: "확정", waitlisted: "대기", cancelled: "취소됨" };
const REASON = {
  budget_insufficient: "예산이 부족합니다",
  // allowance's refusal codes: what the facility needs to know, not the programme's budget
  insufficient_budget: "이 근무에 필요한 예산이 부족합니다",
  no_budget_for_year: "이 근무 연도의 예산이 아직 정해지지 않았습니다",
  no_rate: "이 날짜에 적용할 시급이 정해지지 않았습니다",
  rate_below_minimum_wage: "이 날짜의 시급이 최저임금보다 낮습니다",
  no_budget: "올해 예산이 아직 정해지지 않았습니다",
  facility: "시설에서 취소했습니다",
  facility_suspended: "기관 이용이 정지되어 취소되었습니다",
  budget_rejected: "예산 확인에서 반려되었습니다",
};
const SELECTION = { first_come: "선착순", draw: "추첨" };

const won = (n) => `${Number(n).toLocaleString("ko-KR")}원`;
const count = (n, unit) => `${Number(n).toLocaleString("ko-KR")}${unit}`;

function duration(minutes) {
  const h = Math.floor(minutes / 60), m = minutes % 60;
  if (!h) return `${m}분`;
  return m ? `${h}시간 ${m}분` : `${h}시간`;
}

// --- dates: always Asia/Seoul, whatever the device's zone ---------------------------------

const PARTS = new Intl.DateTimeFormat("en-US", {
  timeZone: "Asia/Seoul", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", weekday: "short", hourCycle: "h23",
});
const WEEKDAY = { Mon: "월", Tue: "화", Wed: "수", Thu: "목", Fri: "금", Sat: "토", Sun: "일" };

// {y, mo, d, h, mi, wd} of an instant, in Seoul.
function seoul(instant) {
  const p = {};
  for (const part of PARTS.formatToParts(new Date(instant))) p[part.type] = part.value;
  return { y: +p.year, mo: +p.month, d: +p.day, h: +p.hour % 24, mi: +p.minute, wd: WEEKDAY[p.weekday] };
}
const pad = (n) => String(n).padStart(2, "0");
const dateValue = (s) => `${s.y}-${pad(s.mo)}-${pad(s.d)}`;   // <input type=date>
const timeValue = (s) => `${pad(s.h)}:${pad(s.mi)}`;          // <input type=time>
const fromSeoul = (date, time) => new Date(`${date}T${time}:00${SEOUL_OFFSET}`);
const isoOf = (date, time) => fromSeoul(date, time).toISOString();

// "오후 2:00"
function clock(instant) {
  const s = seoul(instant);
  const h12 = s.h % 12 === 0 ? 12 : s.h % 12;
  return `${s.h < 12 ? "오전" : "오후"} ${h12}:${pad(s.mi)}`;
}
const dayLabel = (s) => `${s.mo}월 ${s.d}일 (${s.wd})`;
// "12월 4일 (금) 오후 2:00"
const when = (instant) => `${dayLabel(seoul(instant))} ${clock(instant)}`;
// "12월 4일 (금) 오후 2:00 ~ 오후 4:00"
function span(start, end) {
  const a = seoul(start), b = seoul(end);
  const same = a.y === b.y && a.mo === b.mo && a.d === b.d;
  return `${when(start)} ~ ${same ? clock(end) : when(end)}`;
}
const minutesBetween = (a, b) => Math.round((new Date(b) - new Date(a)) / 60000);

// The Monday (YYYY-MM-DD, Seoul) of the week holding `instant`.
function mondayOf(instant) {
  const s = seoul(instant);
  const noon = fromSeoul(dateValue(s), "12:00");
  const back = ["월", "화", "수", "목", "금", "토", "일"].indexOf(s.wd);
  return dateValue(seoul(noon.getTime() - back * 86400000));
}
const addDays = (date, days) => dateValue(seoul(fromSeoul(date, "12:00").getTime() + days * 86400000));

// --- the API ------------------------------------------------------------------------------

class Problem extends Error {
  constructor(status, body) {
    super(body?.detail || body?.title || "요청을 처리하지 못했습니다.");
    this.status = status;
    this.title = body?.title || "";
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

async function api(method, path, { body, idempotencyKey } = {}) {
  const headers = { Authorization: `Bearer ${state.key}`, "Accept-Language": "ko", Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method === "POST") headers["Idempotency-Key"] = idempotencyKey || crypto.randomUUID();
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new Problem(0, { title: "연결 오류", detail: "서버에 연결할 수 없습니다. 인터넷 연결을 확인하고 다시 시도해 주세요." });
  }
  const json = (response.headers.get("content-type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new Problem(response.status, json || { detail: `오류 ${response.status}` });
  return json;
}

// A non-JSON resource of the API (the check-in QR code as SVG), as text.
async function apiText(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${state.key}`, "Accept-Language": "ko" } });
  } catch {
    throw new Problem(0, { title: "연결 오류", detail: "서버에 연결할 수 없습니다." });
  }
  if (!response.ok) throw new Problem(response.status, { detail: `오류 ${response.status}` });
  return response.text();
}

// Every page of a list, following next_cursor.
async function allPages(query) {
  const items = [];
  let cursor = null;
  do {
    const params = new URLSearchParams(query);
    params.set("limit", PAGE_SIZE);
    if (cursor) params.set("cursor", cursor);
    const page = await api("GET", `/v1/postings?${params}`);
    items.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// --- feedback: set at the end of an action, cleared only when the next one starts ---------

function clearFeedback() {
  $("feedback").textContent = "";
  $("alert").textContent = "";
  document.querySelectorAll(".field-error").forEach((p) => { p.textContent = ""; });
  document.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}
function say(message) {
  $("alert").textContent = "";
  $("feedback").textContent = message;
  $("feedback").scrollIntoView({ block: "nearest" });
}
// A problem: its Korean title and detail in the alert, each field error next to its field
// (errors[].field names it: "title", "records.0.checked_in_at", …) or listed when no field fits.
function fail(err, place = () => null) {
  if (!(err instanceof Problem)) { console.error(err); err = new Problem(0, { detail: "예상하지 못한 오류가 났습니다. 다시 시도해 주세요." }); }
  if (err.status === 401) { signOut("로그인이 필요합니다. 시설 키를 다시 입력해 주세요."); return; }
  const unplaced = [];
  for (const e of err.errors) {
    const slot = place(e.field || "");
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent} ${e.message}` : e.message;
      for (const id of (slot.dataset.for || "").split(" ").filter(Boolean)) $(id)?.setAttribute("aria-invalid", "true");
    } else unplaced.push(`• ${e.message}`);
  }
  const head = err.title && err.title !== err.message ? `${err.title}: ${err.message}` : err.message;
  $("feedback").textContent = "";
  $("alert").textContent = [head, ...unplaced].join("\n");
  $("alert").scrollIntoView({ block: "nearest" });
}

// Runs one user action: one at a time (a double tap does nothing twice), feedback cleared first.
async function act(button, work) {
  if (state.busy) return;
  state.busy = true;
  if (button) button.disabled = true;
  clearFeedback();
  try { await work(); } finally {
    state.busy = false;
    if (button) button.disabled = false;
  }
}

function show(screen) {
  for (const id of ["screen-signin", "screen-list", "screen-form", "screen-detail", "screen-checkin", "screen-sheet"]) $(id).hidden = id !== screen;
  if (screen !== "screen-checkin") stopDoorRefresh();
  $("sign-out").hidden = screen === "screen-signin";
  window.scrollTo(0, 0);
  $(screen).querySelector("h2").focus();
}

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};

// --- sign in / out ------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  await api("GET", "/v1/postings?limit=1");
  sessionStorage.setItem(KEY_STORE, key);
}

function signOut(message) {
  state.key = "";
  state.postings = [];
  sessionStorage.clear();
  $("key").value = "";
  show("screen-signin");
  if (message) { $("feedback").textContent = ""; $("alert").textContent = message; }
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act(event.submitter, async () => {
    const key = $("key").value.trim();
    if (!key) { $("key-error").textContent = "시설 키를 입력해 주세요."; $("key").setAttribute("aria-invalid", "true"); return; }
    try { await signIn(key); } catch (err) {
      state.key = "";
      if (err.status === 401 || err.status === 403) {
        $("key-error").textContent = "시설 키가 맞지 않거나 더 이상 쓸 수 없는 키입니다. 구청에 받은 키를 다시 확인해 주세요.";
        $("key").setAttribute("aria-invalid", "true");
        $("key").focus();
      } else fail(err);
      return;
    }
    await openList();
  });
});

$("sign-out").addEventListener("click", () => { clearFeedback(); signOut(); say("로그아웃했습니다. 이 탭에서 시설 키를 지웠습니다."); });

// --- the list, newest first ---------------------------------------------------------------

// The API lists oldest first (no order parameter yet), so the console reads every page and
// turns the list around; newest = most recently posted.
async function loadPostings() {
  const all = await allPages({});
  all.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : (a.id < b.id ? 1 : -1)));
  state.postings = all;
  renderList();
  schedulePendingRefresh();
}

function statusText(p) {
  if (p.status === "pending_budget" && p.budget_answer_overdue) return "예산 확인 지연 중";
  if (p.status === "open" && p.confirmed_count >= p.capacity) return "모집 중 (정원 참)";
  return STATUS[p.status] || p.status;
}
const badge = (p) => el("span", { class: `badge ${p.status}`, text: statusText(p) });

function whyText(p) {
  if (p.status === "rejected" && p.rejection) return `반려 사유: ${REASON[p.rejection.reason] || p.rejection.detail || p.rejection.reason}`;
  if (p.status === "cancelled") return `취소 사유: ${p.cancel_note || REASON[p.cancel_reason] || "취소되었습니다"}`;
  if (p.last_update_rejected) {
    const r = p.last_update_rejected;
    return `최근 변경이 반려되었습니다 (${REASON[r.reason] || "이 근무에 필요한 예산이 부족합니다"}). 이전 정원·시각으로 되돌렸습니다.`;
  }
  return null;
}

function countsText(p) {
  return `확정 ${count(p.confirmed_count, "명")} / 정원 ${count(p.capacity, "명")} · 대기 ${count(p.waitlisted_count, "명")}`;
}

function postingCard(p) {
  const why = whyText(p);
  return el("li", { class: "card", "data-posting": p.id },
    el("h3", { text: p.title }),
    el("p", {}, badge(p)),
    el("p", { text: span(p.starts_at, p.ends_at) }),
    el("p", { class: "muted", text: countsText(p) }),
    why ? el("p", { class: "muted", text: why }) : null,
    el("button", { type: "button", class: "open-posting", "aria-label": `명단과 출석 보기: ${p.title}`, text: "명단과 출석 보기", onclick: () => openDetail(p.id) }),
  );
}

function renderList() {
  const list = $("postings");
  list.className = "cards postings";
  list.replaceChildren(...state.postings.slice(0, state.shown).map(postingCard));
  if (!state.postings.length) list.append(el("li", { class: "card", text: "아직 없습니다. ‘새 근무 등록’으로 첫 근무를 올려 보세요." }));
  const shown = Math.min(state.shown, state.postings.length);
  $("list-count").textContent = state.postings.length ? `최근 등록한 순서 · 전체 ${count(state.postings.length, "건")} 중 ${count(shown, "건")}` : "";
  $("more").hidden = shown >= state.postings.length;
}

$("more").addEventListener("click", () => {
  clearFeedback();
  const first = state.shown;
  state.shown += SHOWN_STEP;
  renderList();
  // keep the keyboard where the new cards start
  $("postings").children[first]?.querySelector("button")?.focus();
});

// A posting just submitted is "예산 확인 중" for a moment: look again shortly, quietly
// (the feedback of the last action stays).
let pendingTimer = null, pendingTries = 0;
function schedulePendingRefresh() {
  clearTimeout(pendingTimer);
  const waiting = state.postings.some((p) => p.status === "pending_budget" && !p.budget_answer_overdue);
  if (!waiting || pendingTries > 20) { pendingTries = 0; return; }
  pendingTries += 1;
  pendingTimer = setTimeout(async () => {
    if ($("screen-list").hidden) return;
    try { await loadPostings(); if (state.view === "week") await loadWeek(); } catch { /* the next action reports */ }
  }, 1500);
}

async function openList() {
  show("screen-list");
  try {
    await loadPostings();
    if (state.view === "week") await loadWeek();
  } catch (err) { fail(err); }
}

$("refresh").addEventListener("click", (e) => act(e.currentTarget, async () => {
  try {
    await loadPostings();
    if (state.view === "week") await loadWeek();
    say(`목록을 새로 불러왔습니다 (${count(state.postings.length, "건")}).`);
  } catch (err) { fail(err); }
}));

// --- the week calendar --------------------------------------------------------------------

function setView(view) {
  state.view = view;
  $("view-list").setAttribute("aria-pressed", String(view === "list"));
  $("view-week").setAttribute("aria-pressed", String(view === "week"));
  $("list-view").hidden = view !== "list";
  $("week-view").hidden = view !== "week";
}

// The week's shifts come from the API's own filters (starts_from / starts_before).
async function loadWeek() {
  state.weekStart ||= mondayOf(Date.now());
  const start = state.weekStart, end = addDays(start, 7);
  const items = await allPages({ starts_from: isoOf(start, "00:00"), starts_before: isoOf(end, "00:00") });
  items.sort((a, b) => (a.starts_at < b.starts_at ? -1 : 1));
  const first = seoul(fromSeoul(start, "12:00")), last = seoul(fromSeoul(addDays(start, 6), "12:00"));
  $("week-title").textContent = `${first.mo}월 ${first.d}일 ~ ${last.mo}월 ${last.d}일`;
  const today = dateValue(seoul(Date.now()));
  const days = [];
  for (let i = 0; i < 7; i += 1) {
    const date = addDays(start, i);
    const shifts = items.filter((p) => dateValue(seoul(p.starts_at)) === date);
    const label = dayLabel(seoul(fromSeoul(date, "12:00")));
    days.push(el("li", { class: `day${date === today ? " today" : ""}` },
      el("h4", { text: date === today ? `${label} · 오늘` : label }),
      shifts.length
        ? el("ul", {}, ...shifts.map((p) => el("li", {},
            el("button", { type: "button", class: `shift ${p.status}`, onclick: () => openDetail(p.id) },
              el("span", { text: `${clock(p.starts_at)} ~ ${clock(p.ends_at)}` }),
              el("strong", { text: p.title }),
              el("span", { text: `${statusText(p)} · 확정 ${p.confirmed_count}/${p.capacity}` })))))
        : el("p", { class: "muted", text: "근무 없음" })));
  }
  $("week-days").replaceChildren(...days);
}

function weekAction(button, move) {
  act(button, async () => {
    state.weekStart = move(state.weekStart || mondayOf(Date.now()));
    try { await loadWeek(); } catch (err) { fail(err); }
  });
}
$("view-list").addEventListener("click", () => { clearFeedback(); setView("list"); });
$("view-week").addEventListener("click", (e) => act(e.currentTarget, async () => {
  setView("week");
  try { await loadWeek(); } catch (err) { fail(err); }
}));
$("week-prev").addEventListener("click", (e) => weekAction(e.currentTarget, (w) => addDays(w, -7)));
$("week-next").addEventListener("click", (e) => weekAction(e.currentTarget, (w) => addDays(w, 7)));
$("week-today").addEventListener("click", (e) => weekAction(e.currentTarget, () => mondayOf(Date.now())));

// --- create, edit, duplicate, repeat weekly -----------------------------------------------

const form = $("posting-form");
for (let n = 2; n <= WEEKS_MAX; n += 1) $("f-weeks").append(el("option", { value: n, text: `${n}주 동안 매주 (${n}건)` }));
// which field-error slot takes the API's errors[].field, and which inputs it marks
const SLOTS = {
  title: ["err-title", "f-title"], description: ["err-description", "f-description"],
  starts_at: ["err-starts_at", "f-date f-start"], ends_at: ["err-ends_at", "f-end"],
  capacity: ["err-capacity", "f-capacity"], selection: ["err-selection", ""],
  applications_close_at: ["err-applications_close_at", "f-close"],
};
for (const [, [slot, inputs]] of Object.entries(SLOTS)) $(slot).dataset.for = inputs;
function formSlot(field) {
  const name = field.split(".").pop();
  return SLOTS[name] ? $(SLOTS[name][0]) : null;
}

function fillForm(p, { moveToFuture }) {
  form.reset();
  const start = seoul(p.starts_at);
  let date = dateValue(start);
  // A duplicate of a past shift starts on the same weekday of the coming week.
  if (moveToFuture) while (fromSeoul(date, timeValue(start)) <= Date.now()) date = addDays(date, 7);
  form.title.value = p.title;
  form.description.value = p.description || "";
  form.date.value = date;
  form.start.value = timeValue(start);
  form.end.value = timeValue(seoul(p.ends_at));
  form.capacity.value = p.capacity;
  form.selection.value = p.selection;
  if (p.applications_close_at) {
    const c = seoul(p.applications_close_at);
    form.close.value = `${dateValue(c)}T${timeValue(c)}`;
  }
}

function openForm(mode, posting = null) {
  state.form = { mode, posting };
  state.submitted = null;
  form.reset();
  if (posting) fillForm(posting, { moveToFuture: mode === "duplicate" });
  else {
    // tomorrow 10:00–12:00 (Seoul) as a start
    const tomorrow = addDays(dateValue(seoul(Date.now())), 1);
    form.date.value = tomorrow; form.start.value = "10:00"; form.end.value = "12:00";
  }
  const editing = mode === "edit";
  $("form-title").textContent = { create: "새 근무 등록", edit: "근무 수정", duplicate: "근무 복제" }[mode];
  $("form-submit").textContent = editing ? "변경 저장" : "등록";
  $("repeat-field").hidden = editing;
  // the selection mode is fixed once posted
  form.querySelectorAll("input[name=selection]").forEach((r) => { r.disabled = editing; });
  $("form-note").textContent = "";
  if (editing && posting.confirmed_count + posting.waitlisted_count > 0) {
    $("form-note").textContent = "예약한 사람이 있어 날짜와 시각은 바꿀 수 없습니다. 제목·설명·인원은 바꿀 수 있습니다.";
  }
  setCost("예상 수당을 계산하는 중입니다.");
  syncForm();
  show("screen-form");
}

// The end time before the start means the next day (a shift may run past midnight).
function formTimes() {
  const { date, start, end } = form;
  if (!date.value || !start.value || !end.value) return null;
  const endDate = end.value <= start.value ? addDays(date.value, 1) : date.value;
  return { starts_at: isoOf(date.value, start.value), ends_at: isoOf(endDate, end.value) };
}

function syncForm() {
  $("close-field").hidden = form.selection.value !== "draw";
  const t = formTimes();
  const weeks = Number(form.weeks.value);
  let hint = t ? `근무 시간 ${duration(minutesBetween(t.starts_at, t.ends_at))}` : "";
  if (t && weeks > 1 && !$("repeat-field").hidden) {
    const lastDate = addDays(form.date.value, 7 * (weeks - 1));
    hint += ` · ${dayLabel(seoul(fromSeoul(form.date.value, "12:00")))}부터 ${dayLabel(seoul(fromSeoul(lastDate, "12:00")))}까지 ${weeks}건`;
  }
  $("f-duration").textContent = hint;
  scheduleEstimate();
}
form.addEventListener("input", syncForm);

// --- what the shift will cost, before posting ----------------------------------------------
// The API prices it (GET /v1/postings/estimate: seats × floor(rate × minutes / 60) at the
// rate in force on the shift's day, the allowance's own formula); the console only shows
// it. A repeat is priced week by week, since a new rate may start in between.

const ESTIMATE_DELAY_MS = 300; // wait for a pause in typing before asking
let estimateTimer = null, estimateSeq = 0;

function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(showEstimate, ESTIMATE_DELAY_MS);
}

function setCost(total, note = "") {
  $("cost-total").textContent = total;
  $("cost-note").textContent = note;
}

async function showEstimate() {
  const seq = ++estimateSeq;
  const t = formTimes();
  const capacity = Number(form.capacity.value);
  if (!t || !Number.isInteger(capacity) || capacity < 1) {
    setCost("예상 수당: 날짜, 시각과 모집 인원을 넣으면 계산합니다.");
    return;
  }
  const weeks = $("repeat-field").hidden ? 1 : Number(form.weeks.value);
  const shifts = repeatBodies({ starts_at: t.starts_at, ends_at: t.ends_at }, weeks);
  let found;
  try {
    found = await Promise.all(shifts.map((s) => api("GET", `/v1/postings/estimate?${new URLSearchParams({ ...s, capacity })}`)));
  } catch (err) {
    if (seq !== estimateSeq) return;
    const why = err instanceof Problem && err.errors.length ? err.errors.map((e) => e.message).join(" ") : "잠시 뒤 다시 계산합니다.";
    setCost("예상 수당을 계산할 수 없습니다.", `${why} 등록할 때 다시 확인합니다.`);
    return;
  }
  if (seq !== estimateSeq) return; // a later edit's answer is on its way
  if (found.some((e) => !e.rate_known)) {
    setCost("예상 수당: 아직 시급표를 받지 못해 계산할 수 없습니다.", "등록은 그대로 할 수 있고, 예산은 등록할 때의 시급으로 확보됩니다.");
    return;
  }
  const first = found[0];
  let total = `예상 수당: 1인 ${won(first.seat_payout_won)} × ${count(capacity, "명")} = ${won(first.total_won)}`;
  let rate = `시급 ${won(first.hourly_rate_won)}`;
  if (found.length > 1) {
    const sum = found.reduce((acc, e) => acc + e.total_won, 0);
    if (found.every((e) => e.total_won === first.total_won)) total += ` × ${count(found.length, "주")} = ${won(sum)}`;
    else { total += ` · ${count(found.length, "주")} 합계 ${won(sum)}`; rate = "주마다 시급이 다릅니다"; }
  }
  total += ` (${rate})`;
  const since = seoul(fromSeoul(first.rate_effective_from, "12:00"));
  setCost(total, `${since.y}년 ${since.mo}월 ${since.d}일부터 적용된 시급, 근무 ${duration(first.scheduled_minutes)} 기준입니다. 예산은 등록할 때의 시급으로 확보됩니다.`);
}

function formBody() {
  const t = formTimes();
  const body = {
    title: form.title.value.trim(),
    description: form.description.value.trim(),
    starts_at: t?.starts_at, ends_at: t?.ends_at,
    capacity: Number(form.capacity.value),
    selection: form.selection.value,
  };
  if (body.selection === "draw" && form.close.value) body.applications_close_at = new Date(`${form.close.value}:00${SEOUL_OFFSET}`).toISOString();
  return body;
}

// What the browser can tell before asking the API (the API checks everything again).
function checkForm(body) {
  const errors = [];
  if (!body.title) errors.push({ field: "title", message: "제목을 입력해 주세요." });
  if (!body.starts_at) errors.push({ field: "starts_at", message: "날짜와 시작·끝나는 시각을 입력해 주세요." });
  if (!Number.isInteger(body.capacity) || body.capacity < 1) errors.push({ field: "capacity", message: "모집 인원은 1명 이상이어야 합니다." });
  if (body.selection === "draw" && !body.applications_close_at) errors.push({ field: "applications_close_at", message: "추첨 방식에는 신청 마감 시각이 필요합니다." });
  return errors;
}

// The bodies of one submission: the shift itself and, when repeated, the same shift a week later each time.
function repeatBodies(body, weeks) {
  const bodies = [];
  for (let i = 0; i < weeks; i += 1) {
    const shift = (iso) => (iso ? new Date(new Date(iso).getTime() + i * 7 * 86400000).toISOString() : iso);
    bodies.push({ ...body, starts_at: shift(body.starts_at), ends_at: shift(body.ends_at),
      ...(body.applications_close_at ? { applications_close_at: shift(body.applications_close_at) } : {}) });
  }
  return bodies;
}

// One Idempotency-Key per shift, fixed when the form is submitted: a double tap or a retry
// of the same form sends the same keys, so each shift is posted once. A changed form is a
// new submission with new keys.
function keysFor(bodies) {
  const signature = JSON.stringify(bodies);
  if (state.submitted?.signature !== signature) state.submitted = { signature, keys: bodies.map(() => crypto.randomUUID()) };
  return state.submitted.keys;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  act($("form-submit"), async () => {
    const body = formBody();
    const local = checkForm(body);
    if (local.length) { fail(new Problem(400, { title: "입력 확인", detail: "표시한 항목을 확인해 주세요.", errors: local }), formSlot); return; }
    if (state.form.mode === "edit") await saveEdit(body);
    else await postShifts(body, Number(form.weeks.value));
  });
});

async function postShifts(body, weeks) {
  const bodies = repeatBodies(body, $("repeat-field").hidden ? 1 : weeks);
  const keys = keysFor(bodies);
  const done = [];
  for (let i = 0; i < bodies.length; i += 1) {
    try {
      done.push(await api("POST", "/v1/postings", { body: bodies[i], idempotencyKey: keys[i] }));
    } catch (err) {
      fail(err, formSlot);
      if (done.length) {
        $("alert").textContent += `\n${bodies.length}건 중 ${done.length}건은 등록되었습니다. 같은 내용으로 다시 ‘등록’을 누르면 나머지만 등록됩니다.`;
      }
      return;
    }
  }
  state.submitted = null;
  state.shown = Math.max(state.shown, SHOWN_STEP);
  await openList();
  const first = done[0];
  say(done.length > 1
    ? `근무 ${count(done.length, "건")}을 등록했습니다: ${when(first.starts_at)}부터 매주 ${count(done.length, "주")}. 예산을 확인하는 대로 ‘모집 중’이 됩니다.`
    : `‘${first.title}’ 근무를 등록했습니다 (${when(first.starts_at)}). 예산을 확인하는 대로 ‘모집 중’이 됩니다.`);
}

async function saveEdit(body) {
  const p = state.form.posting;
  // only what changed is sent (PATCH); the times only if they moved
  const changes = {};
  for (const k of ["title", "description", "capacity"]) if (body[k] !== p[k]) changes[k] = body[k];
  if (new Date(body.starts_at).getTime() !== new Date(p.starts_at).getTime()) changes.starts_at = body.starts_at;
  if (new Date(body.ends_at).getTime() !== new Date(p.ends_at).getTime()) changes.ends_at = body.ends_at;
  if (body.applications_close_at && body.applications_close_at !== p.applications_close_at) changes.applications_close_at = body.applications_close_at;
  if (!Object.keys(changes).length) { say("바뀐 내용이 없습니다."); return; }
  let after;
  try { after = await api("PATCH", `/v1/postings/${p.id}`, { body: changes }); } catch (err) { fail(err, formSlot); return; }
  await openDetail(after.id, { keepFeedback: true });
  say(`‘${after.title}’ 근무를 수정했습니다.${changes.capacity || changes.starts_at || changes.ends_at ? " 예산을 다시 확인하며, 부족하면 이전 내용으로 되돌아갑니다." : ""}`);
}

$("new-posting").addEventListener("click", () => { clearFeedback(); openForm("create"); });
$("form-back").addEventListener("click", () => {
  clearFeedback();
  if (state.form?.posting) openDetail(state.form.posting.id); else openList();
});

// --- one posting: facts, actions, roster and attendance -----------------------------------

async function openDetail(id, { keepFeedback = false } = {}) {
  if (!keepFeedback) clearFeedback();
  $("cancel-form").hidden = true;
  let posting, roster;
  try {
    [posting, roster] = await Promise.all([api("GET", `/v1/postings/${id}`), api("GET", `/v1/postings/${id}/roster`)]);
  } catch (err) { fail(err); return; }
  state.posting = posting;
  state.roster = roster;
  renderDetail();
  if ($("screen-detail").hidden) show("screen-detail");
}

function renderDetail() {
  const p = state.posting;
  $("detail-title").textContent = p.title;
  $("detail-status").replaceWith(Object.assign(badge(p), { id: "detail-status" }));
  const facts = [
    ["일시", span(p.starts_at, p.ends_at)],
    ["근무 시간", duration(minutesBetween(p.starts_at, p.ends_at))],
    ["인원", countsText(p)],
    ["선정 방식", SELECTION[p.selection] + (p.applications_close_at ? ` (신청 마감 ${when(p.applications_close_at)})` : "")],
  ];
  if (p.description) facts.push(["하는 일", p.description]);
  const why = whyText(p);
  if (why) facts.push(["안내", why]);
  if (p.status === "open" || p.status === "closed") facts.push(["출석 기록 기한", when(p.attendance_window_closes_at)]);
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const live = p.status === "pending_budget" || p.status === "open";
  $("edit").hidden = !live;
  // a shift that has started can no longer be cancelled (the API would refuse it)
  $("cancel-open").hidden = !live || new Date(p.starts_at) <= Date.now();
  const seated = (state.roster?.entries || []).some((e) => e.status === "confirmed");
  const running = p.status === "open" || p.status === "closed";
  $("door-actions").hidden = !(running && seated);
  $("open-checkin").hidden = p.status !== "open";
  renderRoster();
}

function rosterEntries() {
  const p = state.posting;
  const entries = state.roster?.entries || [];
  if (p.status !== "cancelled") return entries;
  // A cancelled shift's roster lists the bookings its cancellation ended, as cancelled. The
  // matcher confirms each a moment after the shift's cancellation: until then the API still
  // lists it as it was, and it is shown as cancelled already.
  return entries.map((e) => (e.status === "cancelled" ? e
    : { ...e, status: "cancelled", was_status: e.status, attendance: null }));
}

function renderRoster() {
  const p = state.posting;
  const entries = rosterEntries();
  const running = p.status === "open" || p.status === "closed";
  const confirmed = entries.filter((e) => e.status === "confirmed");
  $("roster-summary").textContent = p.status === "cancelled"
    ? (entries.length ? `근무가 취소되어 예약 ${count(entries.length, "건")}이 모두 취소되었습니다.` : "근무가 취소되었습니다. 예약한 사람은 없었습니다.")
    : entries.length ? `${countsText(p)}${running && confirmed.length ? " · 근무가 시작되면 출석을 기록하세요." : ""}` : "";
  const list = $("roster");
  list.replaceChildren(...entries.map((e, i) => rosterCard(e, i, running)));
  if (!entries.length && p.status !== "cancelled") list.append(el("li", { class: "card", text: "아직 예약한 사람이 없습니다." }));
  $("save-attendance").hidden = !(running && confirmed.length);
}

// The person as staff know them: the partner's display name, else the masked partner id.
const who = (e) => e.display_name || e.citizen_display;

// "입실 코드 AB3D4F", the code in a typeface where each symbol is told apart.
const codeText = (code) => el("span", { class: "code-label" }, " 입실 코드 ", el("span", { class: "code", text: code }));

// "입실 오전 9:55 · 퇴실 오전 11:58", or that they have not come yet.
function doorText(e) {
  const d = e.check_in;
  if (!d) return "아직 입실 전";
  return `입실 ${clock(d.checked_in_at)}${d.checked_out_at ? ` · 퇴실 ${clock(d.checked_out_at)}` : " · 퇴실 전"}`;
}

// "대기 2번", "확정", and for a cancelled booking what it was: "확정 → 취소됨".
function bookingLabel(e) {
  if (e.status === "waitlisted") return `대기 ${e.waitlist_position}번`;
  if (e.status === "cancelled" && BOOKING[e.was_status]) return `${BOOKING[e.was_status]} → ${BOOKING.cancelled}`;
  return BOOKING[e.status] || e.status;
}

function rosterCard(e, i, running) {
  const card = el("li", { class: "card", "data-booking": e.booking_id },
    el("h3", { text: who(e) }),
    el("p", {}, el("span", { class: `badge ${e.status}`, text: bookingLabel(e) }),
      e.check_in_code && e.status === "confirmed" ? codeText(e.check_in_code) : null),
    e.status === "cancelled" && e.cancelled_by === "citizen"
      ? el("p", { class: "muted", text: "참여자가 직접 취소했습니다." }) : null,
    e.status === "confirmed" && running
      ? el("p", { class: `door-state${e.check_in ? " in" : ""}`, text: doorText(e) }) : null);
  if (e.status === "confirmed" && running) card.append(attendanceFields(e, i));
  return card;
}

// 출석 / 불참 and the check-in / check-out times (Seoul wall clock on the shift's day).
function attendanceFields(e, i) {
  // No attendance yet: the form starts from the check-in and check-out at the door.
  const a = e.attendance || (e.check_in ? { checked_in_at: e.check_in.checked_in_at, checked_out_at: e.check_in.checked_out_at, prefilled: true } : null);
  const name = `att-${i}`;
  const radio = (value, text) => el("label", { class: "choice" },
    el("input", { type: "radio", name, value, ...(a?.status === value ? { checked: "" } : {}) }), text);
  const time = (cls, text, value) => {
    const id = `${name}-${cls}`;
    return el("div", { class: "field" }, el("label", { for: id, text }),
      el("input", { id, type: "time", class: cls, value: value ? timeValue(seoul(value)) : "", "aria-describedby": `${name}-err` }));
  };
  const box = el("fieldset", { class: "att", "aria-describedby": `${name}-err` },
    el("legend", { text: "출석 여부" }),
    el("div", { class: "choices" }, radio("attended", "출석"), radio("no_show", "불참")),
    el("div", { class: "times" }, time("in", "입실 시각", a?.checked_in_at), time("out", "퇴실 시각", a?.checked_out_at)),
    el("p", { class: "hint", text: a && !a.prefilled ? (a.status === "attended" ? `인정 시간 ${duration(a.minutes)} (${count(a.minutes, "분")})${a.allowance_won == null ? "" : ` · 수당 ${won(a.allowance_won)} (월 상한 적용 전)`}` : "불참으로 기록됨 (0분)") : `${a?.prefilled ? "입실·퇴실 시각을 채워 두었습니다. " : ""}시각을 비우면 근무 시작·끝 시각으로 기록됩니다.` }),
    el("p", { class: "field-error", id: `${name}-err` }));
  box.querySelector(`#${name}-err`).dataset.for = `${name}-in ${name}-out`;
  const sync = () => { // a no-show has no times
    const noShow = box.querySelector("input[value=no_show]").checked;
    box.querySelectorAll("input[type=time]").forEach((t) => { t.disabled = noShow; });
  };
  box.addEventListener("change", sync);
  sync();
  return box;
}

// A time typed for a shift is on the shift's day, or the next one for a shift past midnight.
function timeOnShift(value) {
  if (!value) return null;
  const p = state.posting;
  const day = dateValue(seoul(p.starts_at));
  let at = fromSeoul(day, value);
  if (at < new Date(new Date(p.starts_at).getTime() - 6 * 3600000)) at = fromSeoul(addDays(day, 1), value);
  return at.toISOString();
}

$("save-attendance").addEventListener("click", (event) => act(event.currentTarget, async () => {
  const records = [];
  $("roster").querySelectorAll("li[data-booking]").forEach((card) => {
    const status = card.querySelector("input[type=radio]:checked")?.value;
    if (!status) return;
    const record = { booking_id: card.dataset.booking, status };
    if (status === "attended") {
      const inAt = timeOnShift(card.querySelector("input.in").value), outAt = timeOnShift(card.querySelector("input.out").value);
      if (inAt) record.checked_in_at = inAt;
      if (outAt) record.checked_out_at = outAt;
    }
    records.push(record);
  });
  if (!records.length) { fail(new Problem(400, { detail: "출석 또는 불참을 한 명 이상 골라 주세요." })); return; }
  let result;
  // errors[].field is "records.<n>.…": the slot of the n-th record sent
  const cards = [...$("roster").querySelectorAll("li[data-booking]")];
  const slot = (field) => {
    const n = Number(field.split(".")[1]);
    const card = cards.find((c) => c.dataset.booking === records[n]?.booking_id);
    return card?.querySelector(".field-error") || null;
  };
  try { result = await api("PUT", `/v1/postings/${state.posting.id}/attendance`, { body: { records } }); } catch (err) { fail(err, slot); return; }
  await openDetail(state.posting.id, { keepFeedback: true });
  const attended = result.records.filter((r) => r.status === "attended");
  const minutes = attended.reduce((sum, r) => sum + r.minutes, 0);
  say(`출석을 저장했습니다: 출석 ${count(attended.length, "명")} (모두 ${duration(minutes)}), 불참 ${count(result.records.length - attended.length, "명")}.${result.phase === "correcting" ? " 기록 기한이 지나 정정으로 처리되었습니다." : ""}`);
}));

$("detail-back").addEventListener("click", () => { clearFeedback(); openList(); });

// --- check-in at the door: staff type the code the citizen shows -----------------------------

const DOOR_REFRESH_MS = 10000; // the check-in list looks again this often (other staff, other phones)
let doorTimer = null;
function stopDoorRefresh() { clearInterval(doorTimer); doorTimer = null; }

async function loadRoster() {
  state.roster = await api("GET", `/v1/postings/${state.posting.id}/roster`);
}

function renderDoor() {
  const p = state.posting;
  $("checkin-shift").textContent = `${p.title} · ${span(p.starts_at, p.ends_at)}`;
  const seated = (state.roster?.entries || []).filter((e) => e.status === "confirmed");
  const inside = seated.filter((e) => e.check_in && !e.check_in.checked_out_at).length;
  const out = seated.filter((e) => e.check_in?.checked_out_at).length;
  $("door-summary").textContent = `확정 ${count(seated.length, "명")} 중 입실 ${count(inside + out, "명")} (퇴실 ${count(out, "명")})`;
  $("door-list").replaceChildren(...seated.map((e) => el("li", { class: "card door-card", "data-booking": e.booking_id },
    el("h3", { text: who(e) }),
    el("p", {}, e.check_in_code ? codeText(e.check_in_code) : "입실 코드 없음"),
    el("p", { class: `door-state${e.check_in ? " in" : ""}`, text: doorText(e) }))));
}

async function openCheckin() {
  clearFeedback();
  try { await loadRoster(); } catch (err) { fail(err); return; }
  renderDoor();
  show("screen-checkin");
  $("checkin-code").value = "";
  $("checkin-code").focus();
  stopDoorRefresh();
  doorTimer = setInterval(async () => {
    if ($("screen-checkin").hidden || state.busy) return;
    try { await loadRoster(); renderDoor(); } catch { /* the next action reports */ }
  }, DOOR_REFRESH_MS);
}

$("open-checkin").addEventListener("click", openCheckin);
$("checkin-back").addEventListener("click", () => { stopDoorRefresh(); clearFeedback(); openDetail(state.posting.id); });

$("checkin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const action = event.submitter?.value === "check_out" ? "check_out" : "check_in";
  act(event.submitter, async () => {
    const input = $("checkin-code");
    const code = input.value.trim();
    if (!code) { $("checkin-error").textContent = "입실 코드를 입력해 주세요."; input.setAttribute("aria-invalid", "true"); input.focus(); return; }
    let done;
    try {
      const id = state.posting.id;
      const path = action === "check_in" ? `/v1/postings/${id}/check-in` : `/v1/postings/${id}/check-out`;
      done = await api("POST", path, { body: { code } });
    } catch (err) {
      fail(err, (f) => (f.endsWith("code") ? $("checkin-error") : null));
      if (err.status === 404 || err.status === 409) { $("checkin-error").textContent ||= err.message; input.setAttribute("aria-invalid", "true"); }
      input.select();
      return;
    }
    input.value = "";
    try { await loadRoster(); renderDoor(); } catch { /* shown on the next refresh */ }
    const name = done.display_name || done.citizen_display;
    if (action === "check_in") say(`${name} 님 입실: ${clock(done.check_in.checked_in_at)}`);
    else {
      const minutes = done.attendance?.minutes ?? 0;
      say(`${name} 님 퇴실: ${clock(done.check_in.checked_out_at)} · 출석 기록 ${duration(minutes)} (${count(minutes, "분")})`);
    }
    input.focus();
  });
});

// --- the printable sign-in sheet (출석부) ---------------------------------------------------

// "2026년 12월 8일 (화)"
const longDay = (instant) => { const s = seoul(instant); return `${s.y}년 ${s.mo}월 ${s.d}일 (${s.wd})`; };

async function openSheet() {
  clearFeedback();
  try { await loadRoster(); } catch (err) { fail(err); return; }
  const p = state.posting;
  const seated = state.roster.entries.filter((e) => e.status === "confirmed");
  $("sheet-title").textContent = `출석부: ${p.title}`;
  const facts = [
    ["시설", p.facility_name || "-"],
    ["근무", p.title],
    ["날짜", longDay(p.starts_at)],
    ["시간", `${clock(p.starts_at)} ~ ${clock(p.ends_at)} (${duration(minutesBetween(p.starts_at, p.ends_at))})`],
    ["인원", `확정 ${count(seated.length, "명")}`],
  ];
  $("sheet-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  const rows = seated.map((e, i) => el("tr", { "data-booking": e.booking_id },
    el("td", { class: "n", text: String(i + 1) }),
    el("td", { text: who(e) }),
    el("td", { class: "code", text: e.check_in_code || "" }),
    el("td", { class: "qr" }),
    el("td", { text: e.check_in ? clock(e.check_in.checked_in_at) : "" }),
    el("td", { text: e.check_in?.checked_out_at ? clock(e.check_in.checked_out_at) : "" }),
    el("td", { class: "sign" })));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "7", text: "확정된 참여자가 없습니다." })));
  $("sheet-rows").replaceChildren(...rows);
  show("screen-sheet");
  // each code's QR, from the registry (SVG), for a sheet the citizens can scan from
  await Promise.all(seated.filter((e) => e.check_in_code).map(async (e) => {
    try {
      const svg = await apiText(`/v1/postings/${p.id}/check-in-qr?booking_id=${encodeURIComponent(e.booking_id)}`);
      const cell = $("sheet-rows").querySelector(`tr[data-booking="${e.booking_id}"] td.qr`);
      cell?.replaceChildren(el("img", { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`, alt: `입실 코드 ${e.check_in_code}의 QR 코드`, width: "72", height: "72" }));
    } catch { /* the code is printed beside it */ }
  }));
}

$("open-sheet").addEventListener("click", openSheet);
$("sheet-back").addEventListener("click", () => { clearFeedback(); openDetail(state.posting.id); });
$("sheet-print").addEventListener("click", () => window.print());
// The paper sheet's times go into the roster's attendance form.
$("sheet-attendance").addEventListener("click", async () => {
  clearFeedback();
  await openDetail(state.posting.id);
  $("roster-title").scrollIntoView({ block: "start" });
  $("roster-title").focus();
  say("종이 출석부의 입실·퇴실 시각을 아래 명단에 입력하고 ‘출석 저장’을 누르세요.");
});
$("edit").addEventListener("click", () => { clearFeedback(); openForm("edit", state.posting); });
$("duplicate").addEventListener("click", () => { clearFeedback(); openForm("duplicate", state.posting); });
$("cancel-open").addEventListener("click", () => {
  clearFeedback();
  $("cancel-form").hidden = false;
  $("cancel-note").focus();
});
$("cancel-close").addEventListener("click", () => { clearFeedback(); $("cancel-form").hidden = true; $("cancel-open").focus(); });

$("cancel-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act(event.submitter, async () => {
    const note = $("cancel-note").value.trim();
    if (!note) { $("err-note").textContent = "취소 사유를 적어 주세요."; $("cancel-note").setAttribute("aria-invalid", "true"); $("cancel-note").focus(); return; }
    const p = state.posting;
    let after;
    try { after = await api("POST", `/v1/postings/${p.id}/cancel`, { body: { note } }); } catch (err) { fail(err, (f) => (f.endsWith("note") ? $("err-note") : null)); return; }
    $("cancel-note").value = "";
    await openDetail(after.id, { keepFeedback: true });
    // the answer counts the bookings as they were when the shift was cancelled: all end with it
    const ended = after.confirmed_count + after.waitlisted_count;
    say(`근무를 취소했습니다. ${ended ? `예약 ${count(ended, "건")}이 함께 취소되고 참여자에게 알림이 갑니다.` : "예약한 사람은 없었습니다."}`);
  });
});

// --- start --------------------------------------------------------------------------------

if (state.key) openList(); else show("screen-signin");
