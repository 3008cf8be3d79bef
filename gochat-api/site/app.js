// gochat web page, protocol v2 (docs/protocol.md): log in over REST, then hold one WebSocket
// to the connect layer for every room and private conversation. It shows each room's recent
// history on entering, reconnects by itself after a drop (backoff with jitter) and asks for
// exactly what it missed (`since` per room, `inboxSince`), fills gaps by paging, and never
// shows a message twice: messages are kept by their seq. A post typed while disconnected
// waits and is sent when the socket is back, under an id that makes the server store it once.
// Against a server with history off it behaves as gochat's page: live messages only.
// Addresses come from /config.json plus this page's own host: nothing is baked in.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 50;          // messages shown on entering a room or conversation
const GAP_PAGE = 200;     // messages asked for at a time to fill a gap
const GAP_PATIENCE_MS = 1000; // how long a gap waits for the live stream before it is paged
const BACKOFF_MIN = 250;  // ms before the first reconnect; doubles up to BACKOFF_MAX
const BACKOFF_MAX = 5000;

const state = {
  cfg: null, token: null, me: null,
  ws: null, authed: false, attempt: 0,
  history: true,        // false once the server says history is disabled
  rooms: new Map(),     // roomId → log (+ roster, unread)
  inbox: null,          // the private messages, both directions: one log
  names: new Map(),     // userId → name
  unreadFrom: new Map(),// peer userId → unread private messages
  pending: new Map(),   // post id → { frame, log, item }: sent again until answered
  requests: new Map(),  // command id → what to do with its reply
  view: { kind: "room", id: 0 },
  nextId: 0,
};

// ---- logs: one room's messages, or the inbox; items kept by seq (or arrival with history off)

function newLog(roomId) {
  return { roomId, items: new Map(), last: 0, known: false, loaded: false, paging: false, gapTimer: null, oldest: null,
           moreBefore: false, counter: 0, ids: new Set(), roster: {}, unread: 0 };
}

// The sort key of a notice or of a message without seq: just after what is there.
function tailKey(log) {
  let max = log.last;
  for (const k of log.items.keys()) if (k > max) max = k;
  log.counter += 1;
  return max + log.counter / 1e6;
}

// Put a message into its log; false if it was there already (a copy).
function put(log, m, { live = true } = {}) {
  if (m.msgId && log.ids.has(m.msgId)) return false;
  const key = m.seq ?? tailKey(log);
  if (log.items.has(key) && !log.items.get(key).pending) return false;
  if (m.msgId) log.ids.add(m.msgId);
  log.items.set(key, m);
  if (m.seq !== undefined) {
    if (log.oldest === null || m.seq < log.oldest) log.oldest = m.seq;
    if (!log.known) { log.known = true; log.last = m.seq - 1; }
    while (log.items.has(log.last + 1)) log.last += 1;
    if (log.last < maxSeq(log)) awaitGap(log);
  }
  if (live && m.from !== state.me.userId) countUnread(log, m);
  return true;
}

function maxSeq(log) {
  let max = 0;
  for (const [k, m] of log.items) if (m.seq !== undefined && k > max) max = k;
  return max;
}

// A seq jumped while connected. That gap is nearly always in flight (a post's own reply
// overtakes the fan-out of the messages stored before it), so it gets a moment to fill from
// the live stream before it is paged.
function awaitGap(log) {
  if (log.gapTimer) return;
  log.gapTimer = setTimeout(() => {
    log.gapTimer = null;
    if (log.last < maxSeq(log)) askGap(log);
  }, GAP_PATIENCE_MS);
}

// Page from the last contiguous seq (one page request at a time per log).
function askGap(log) {
  if (log.paging || !state.authed) return;
  log.paging = true;
  command({ op: 9, roomId: log.roomId, since: log.last, limit: GAP_PAGE }, (r) => {
    log.paging = false;
    if (r.code !== 0) return;
    for (const p of r.messages || []) put(log, message(p), { live: false });
    if (r.more) return askGap(log);
    // Nothing more, yet a hole stays: retention removed those; skip to what is there.
    if (log.last < maxSeq(log)) {
      const seqs = [...log.items.keys()].filter((k) => k > log.last && Number.isInteger(k));
      log.last = Math.min(...seqs) - 1;
      while (log.items.has(log.last + 1)) log.last += 1;
    }
    render();
  });
}

// The server's latest seq of a log, from an auth or join reply: where live messages start.
// A seq below what we have means the server's history was reset.
function baseline(log, seq) {
  if (log.known && seq < log.last) {
    log.items.clear(); log.ids.clear(); log.known = false; log.loaded = false; log.oldest = null;
    notice(log, "the server's history was reset");
  }
  if (!log.known) { log.known = true; log.last = seq; }
}

function notice(log, text) {
  log.items.set(tailKey(log), { kind: "system", text });
}

// A stored or live op-2/op-3 object as the page keeps it.
function message(p) {
  if (p.fromUserId) state.names.set(p.fromUserId, p.fromUserName);
  if (p.toUserId) state.names.set(p.toUserId, p.toUserName);
  return {
    kind: p.op === 2 ? "private" : "room",
    msgId: p.msgId, seq: p.seq, text: p.msg, when: p.createTime,
    from: p.fromUserId, fromName: p.fromUserName, to: p.toUserId, toName: p.toUserName,
  };
}

function peerOf(m) { return m.from === state.me.userId ? m.to : m.from; }

function countUnread(log, m) {
  if (log === state.inbox) {
    const peer = peerOf(m);
    if (!(state.view.kind === "dm" && state.view.id === peer)) {
      state.unreadFrom.set(peer, (state.unreadFrom.get(peer) || 0) + 1);
    }
  } else if (!(state.view.kind === "room" && state.view.id === log.roomId)) {
    log.unread += 1;
  }
}

// ---- REST

async function config() {
  if (!state.cfg) state.cfg = await (await fetch("config.json")).json();
  return state.cfg;
}

async function api(path, body) {
  const cfg = await config();
  const res = await fetch(`${location.protocol}//${location.hostname}:${cfg.apiPort}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return res.json();
}

function showError(text) { $("error").textContent = text || ""; }

async function authenticate(path) {
  showError("");
  const userName = $("login-name").value.trim();
  const passWord = $("login-pass").value;
  if (!userName || !passWord) return showError("Enter a user name and a password.");
  const r = await api(path, { userName, passWord });
  if (r.code !== 0) return showError(r.message);
  state.token = r.data;
  const who = await api("/user/checkAuth", { authToken: state.token });
  if (who.code !== 0) return showError(who.message);
  state.me = who.data;
  sessionStorage.setItem("gochat.token", state.token);
  enterChat();
}

function enterChat() {
  $("auth").hidden = true;
  $("chat").hidden = false;
  $("me").textContent = state.me.userName;
  state.names.set(state.me.userId, state.me.userName);
  const saved = JSON.parse(sessionStorage.getItem("gochat.rooms") || "null");
  const rooms = Array.isArray(saved) && saved.length ? saved : [state.cfg.roomId];
  for (const r of rooms) state.rooms.set(r, newLog(r));
  state.inbox = newLog(0);
  state.view = { kind: "room", id: rooms[0] };
  render();
  connect();
}

function saveRooms() {
  sessionStorage.setItem("gochat.rooms", JSON.stringify([...state.rooms.keys()]));
}

// ---- the socket

function setStatus(text) { $("status").textContent = text; }

async function connect() {
  const cfg = await config();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = cfg.wsUrl || `${scheme}://${location.hostname}:${cfg.wsPort}${cfg.wsPath}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  state.authed = false;
  const [first] = state.rooms.keys();
  ws.onopen = () => {
    const auth = { authToken: state.token, roomId: first ?? -1, v: 2 };
    const room = state.rooms.get(first);
    if (state.history && room && room.known) auth.since = room.last;
    if (state.history && state.inbox.known) auth.inboxSince = state.inbox.last;
    ws.send(JSON.stringify(auth));
  };
  ws.onmessage = (ev) => {
    if (state.ws === ws) onFrame(JSON.parse(ev.data));
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    state.authed = false;
    for (const log of allLogs()) log.paging = false;
    state.requests.clear();
    if (ev.code === 1008 && /logged out|revoked|expired authToken/.test(ev.reason)) {
      return endSession(ev.reason);
    }
    reconnect(`${ev.code}${ev.reason ? ": " + ev.reason : ""}`);
  };
}

function reconnect(why) {
  state.attempt += 1;
  const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** (state.attempt - 1));
  const pause = base / 2 + Math.random() * base / 2;
  setStatus(`reconnecting… (${why})`);
  setTimeout(() => { if (state.token && !state.ws) connect(); }, pause);
}

function allLogs() { return [...state.rooms.values(), state.inbox]; }

function send(frame) {
  if (state.ws && state.authed) state.ws.send(JSON.stringify(frame));
}

// A command whose op-10 reply goes to `then`.
function command(frame, then) {
  frame.id = `c${++state.nextId}`;
  if (then) state.requests.set(frame.id, then);
  send(frame);
}

function onFrame(p) {
  switch (p.op) {
    case 2: case 3: {
      const log = p.op === 2 ? state.inbox : state.rooms.get(p.roomId);
      if (log && put(log, message(p))) render();
      break;
    }
    case 5: {
      const log = state.rooms.get(p.roomId);
      if (log) { log.roster = p.roomUserInfo || {}; render(); }
      break;
    }
    case 11: case 12: {
      const log = state.rooms.get(p.roomId);
      if (!log) break;
      if (p.op === 11) log.roster[p.userId] = p.userName;
      else delete log.roster[p.userId];
      notice(log, `${p.userName} ${p.op === 11 ? "joined" : "left"}`);
      render();
      break;
    }
    case 10: onReply(p); break;
  }
}

function onReply(r) {
  if (r.id === "auth") return onAuth(r);
  if (r.id === "replay") {
    if (r.code !== 0 && /history is disabled/.test(r.message)) state.history = false;
    const log = r.roomId === 0 ? state.inbox : state.rooms.get(r.roomId);
    if (r.code === 0 && r.more && log) askGap(log);
    return;
  }
  const pending = state.pending.get(r.id);
  if (pending) return onPosted(r, pending);
  const then = state.requests.get(r.id);
  state.requests.delete(r.id);
  if (then) then(r);
}

function onAuth(r) {
  if (r.code !== 0) {
    if (r.code === 40000) return endSession(r.message);
    return; // the close that follows reconnects
  }
  state.authed = true;
  state.attempt = 0;
  setStatus("connected");
  const [first, ...others] = state.rooms.keys();
  if (first !== undefined) enteredRoom(state.rooms.get(first), r.seq || 0, r.more);
  baseline(state.inbox, r.inboxSeq || 0);
  if (!state.inbox.loaded && state.history) loadLatest(state.inbox, 200);
  for (const room of others) joinRoom(room);
  // Posts not answered before the drop (or typed while offline) go again, same ids.
  for (const [id, p] of state.pending) state.ws.send(JSON.stringify({ ...p.frame, id }));
  render();
}

// In a room (by the auth frame or op 7): its latest seq is the baseline; the first time, its
// recent history is shown; its roster is asked for (pushed to everyone in it).
function enteredRoom(log, seq, more) {
  baseline(log, seq);
  if (!log.loaded && state.history) loadLatest(log, PAGE);
  if (more) askGap(log);
  api("/push/getRoomInfo", { authToken: state.token, roomId: log.roomId });
}

function joinRoom(roomId) {
  const log = state.rooms.get(roomId);
  const frame = { op: 7, roomId };
  if (state.history && log.known) frame.since = log.last;
  command(frame, (r) => {
    if (r.code !== 0) {
      notice(log, `could not join: ${r.message}`);
      return render();
    }
    enteredRoom(log, r.seq || 0, r.more);
  });
}

// The newest messages of a log, shown on entering it; "load older" pages back from there.
function loadLatest(log, limit) {
  log.loaded = true;
  command({ op: 9, roomId: log.roomId, limit }, (r) => {
    if (r.code !== 0) {
      if (/history is disabled/.test(r.message)) state.history = false;
      return;
    }
    for (const p of r.messages || []) put(log, message(p), { live: false });
    log.moreBefore = !!r.more;
    render();
  });
}

function loadOlder() {
  const log = currentLog();
  if (!log || log.oldest === null) return;
  command({ op: 9, roomId: log.roomId, before: log.oldest, limit: PAGE }, (r) => {
    if (r.code !== 0) return;
    for (const p of r.messages || []) put(log, message(p), { live: false });
    log.moreBefore = !!r.more;
    render();
  });
}

// ---- posting

function post(text) {
  const id = `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const v = state.view;
  const frame = v.kind === "room"
    ? { op: 3, roomId: v.id, msg: text }
    : { op: 2, toUserId: v.id, roomId: state.cfg.roomId, msg: text };
  const log = v.kind === "room" ? state.rooms.get(v.id) : state.inbox;
  const item = { kind: v.kind === "room" ? "room" : "private", pending: true, text,
                 from: state.me.userId, fromName: state.me.userName,
                 to: v.kind === "dm" ? v.id : 0, toName: state.names.get(v.id) || "" };
  item.key = tailKey(log);
  log.items.set(item.key, item);
  state.pending.set(id, { frame, log, item });
  if (state.ws && state.authed) state.ws.send(JSON.stringify({ ...frame, id }));
  render();
}

// The server stored (or refused) a post: it takes its place in the log, by its seq.
function onPosted(r, { log, item }) {
  state.pending.delete(r.id);
  log.items.delete(item.key);
  if (r.code !== 0) {
    notice(log, `not sent: ${r.message}`);
    return render();
  }
  const when = item.kind === "room" ? new Date().toISOString().slice(0, 19).replace("T", " ") : "";
  put(log, { ...item, pending: false, msgId: r.msgId, seq: r.seq, when }, { live: false });
  render();
}

// ---- rendering

function currentLog() {
  return state.view.kind === "room" ? state.rooms.get(state.view.id) : state.inbox;
}

let scheduled = false;
function render() {
  if (scheduled) return;
  scheduled = true;
  // A timer, not requestAnimationFrame: that one stops in a tab that is not shown.
  setTimeout(() => { scheduled = false; draw(); }, 16);
}

function draw() {
  const v = state.view;
  const log = currentLog();
  if (v.kind === "room" && log) log.unread = 0;
  if (v.kind === "dm") state.unreadFrom.delete(v.id);
  $("title").replaceChildren(v.kind === "room"
    ? text("Room ", bold(String(v.id)))
    : text("Private with ", bold(state.names.get(v.id) || `#${v.id}`)));
  // In a private conversation the room list stays that of the room looked at last.
  if (v.kind === "room") state.lastRoom = v.id;
  const room = state.rooms.get(state.lastRoom);
  const roster = room ? room.roster : {};
  $("count").textContent = Object.keys(roster).length;
  drawRooms();
  drawConversations();
  drawRoster(roster);
  drawMessages(log);
  $("older-btn").hidden = !(state.history && log && log.moreBefore);
  $("msg-input").placeholder = v.kind === "room"
    ? `Message room ${v.id}` : `Private message to ${state.names.get(v.id) || v.id}`;
}

function text(...parts) {
  const s = document.createElement("span");
  s.append(...parts);
  return s;
}
function bold(t) { const b = document.createElement("b"); b.textContent = t; return b; }

function drawRooms() {
  const ul = $("rooms");
  ul.replaceChildren();
  for (const [id, log] of state.rooms) {
    const li = document.createElement("li");
    li.dataset.room = id;
    if (state.view.kind === "room" && state.view.id === id) li.className = "current";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `Room ${id}`;
    name.onclick = () => show({ kind: "room", id });
    li.append(name);
    if (log.unread) li.append(badge(log.unread));
    if (state.rooms.size > 1) {
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "leave";
      leave.title = `leave room ${id}`;
      leave.textContent = "×";
      leave.onclick = () => leaveRoom(id);
      li.append(leave);
    }
    ul.append(li);
  }
}

function badge(n) {
  const b = document.createElement("span");
  b.className = "unread";
  b.textContent = n;
  return b;
}

function drawConversations() {
  const latest = new Map();
  for (const [key, m] of state.inbox.items) {
    if (m.kind !== "private") continue;
    const peer = peerOf(m);
    if (!latest.has(peer) || latest.get(peer) < key) latest.set(peer, key);
  }
  if (state.view.kind === "dm" && !latest.has(state.view.id)) latest.set(state.view.id, Infinity);
  const ul = $("conversations");
  ul.replaceChildren();
  for (const [peer] of [...latest].sort((a, b) => b[1] - a[1])) {
    const li = document.createElement("li");
    li.dataset.peer = peer;
    if (state.view.kind === "dm" && state.view.id === peer) li.className = "current";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = state.names.get(peer) || `#${peer}`;
    li.append(name);
    const n = state.unreadFrom.get(peer);
    if (n) li.append(badge(n));
    li.onclick = () => show({ kind: "dm", id: peer });
    ul.append(li);
  }
}

function drawRoster(users) {
  const ul = $("roster");
  ul.replaceChildren();
  for (const [id, name] of Object.entries(users)) {
    state.names.set(Number(id), name);
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.uid = id;
    if (Number(id) === state.me.userId) li.className = "me";
    else li.onclick = () => show({ kind: "dm", id: Number(id) });
    ul.append(li);
  }
}

function drawMessages(log) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren();
  if (!log) return;
  const v = state.view;
  const keys = [...log.items.keys()].sort((a, b) => a - b);
  for (const k of keys) {
    const m = log.items.get(k);
    if (v.kind === "dm" && (m.kind !== "private" || peerOf(m) !== v.id)) continue;
    box.append(line(m));
  }
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function line(m) {
  const div = document.createElement("div");
  div.className = `msg ${m.kind}${m.pending ? " pending" : ""}`;
  if (m.seq !== undefined) div.dataset.seq = m.seq;
  if (m.kind === "system") {
    div.textContent = m.text;
    return div;
  }
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = m.kind === "private"
    ? (m.from === state.me.userId ? `you → ${m.toName || state.names.get(m.to) || m.to}` : `${m.fromName} → you`)
    : m.fromName;
  const t = document.createElement("span");
  t.className = "text";
  t.textContent = m.text;
  div.append(who, t);
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = m.pending ? "sending…" : (m.when || "");
  if (when.textContent) div.append(when);
  return div;
}

function show(view) {
  state.view = view;
  render();
  $("msg-input").focus();
}

// ---- rooms

function joinFromForm() {
  const input = $("join-input");
  const id = Number(input.value);
  input.value = "";
  if (!Number.isInteger(id) || id <= 0) return;
  if (!state.rooms.has(id)) {
    state.rooms.set(id, newLog(id));
    saveRooms();
    if (state.authed) joinRoom(id);
  }
  show({ kind: "room", id });
}

function leaveRoom(id) {
  if (state.rooms.size <= 1) return;
  state.rooms.delete(id);
  saveRooms();
  // The first room is the auth frame's: leaving it over this socket is op 8 all the same.
  command({ op: 8, roomId: id });
  if (state.view.kind === "room" && state.view.id === id) {
    state.view = { kind: "room", id: state.rooms.keys().next().value };
  }
  render();
}

// ---- the session

function endSession(why) {
  sessionStorage.removeItem("gochat.token");
  sessionStorage.removeItem("gochat.rooms");
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  state.token = state.me = null;
  state.rooms.clear();
  state.pending.clear();
  state.requests.clear();
  state.unreadFrom.clear();
  $("messages").replaceChildren();
  $("chat").hidden = true;
  $("auth").hidden = false;
  showError(why || "");
}

async function logout() {
  await api("/user/logout", { authToken: state.token });
  endSession("");
}

async function resume() {
  const token = sessionStorage.getItem("gochat.token");
  if (!token) return;
  const who = await api("/user/checkAuth", { authToken: token });
  if (who.code !== 0) return sessionStorage.removeItem("gochat.token");
  state.token = token;
  state.me = who.data;
  enterChat();
}

$("auth-form").onsubmit = (e) => { e.preventDefault(); authenticate("/user/login"); };
$("register-btn").onclick = () => authenticate("/user/register");
$("send-form").onsubmit = (e) => {
  e.preventDefault();
  const input = $("msg-input");
  if (!input.value.trim()) return;
  post(input.value);
  input.value = "";
};
$("join-form").onsubmit = (e) => { e.preventDefault(); joinFromForm(); };
$("older-btn").onclick = loadOlder;
$("logout-btn").onclick = logout;
config().then(resume).catch((e) => showError(`cannot reach the server: ${e}`));
