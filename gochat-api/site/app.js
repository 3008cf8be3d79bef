// gochat web page: log in or register over the REST API, then hold one WebSocket to the
// connect layer. Addresses come from /config.json plus this page's own host: nothing is
// baked in, so the same page works on localhost, a LAN address or behind a proxy.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { cfg: null, token: null, me: null, ws: null, target: null, roster: {} };

async function config() {
  if (!state.cfg) state.cfg = await (await fetch("config.json")).json();
  return state.cfg;
}

async function apiBase() {
  const cfg = await config();
  return `${location.protocol}//${location.hostname}:${cfg.apiPort}`;
}

// Every gochat route is a POST with a JSON body; the token travels in the body.
async function api(path, body) {
  const res = await fetch((await apiBase()) + path, {
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
  $("room").textContent = state.cfg.roomId;
  connect();
}

async function connect() {
  const cfg = await config();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = cfg.wsUrl || `${scheme}://${location.hostname}:${cfg.wsPort}${cfg.wsPath}`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ authToken: state.token, roomId: cfg.roomId }));
    setStatus("connected");
    // Like gochat's front-end: ask for the count and the roster once in the room; the
    // answers are pushed to everyone in it, so they learn about us too.
    setTimeout(() => {
      api("/push/count", { authToken: state.token, roomId: cfg.roomId });
      api("/push/getRoomInfo", { authToken: state.token, roomId: cfg.roomId });
    }, 100);
  };
  ws.onmessage = (ev) => onPush(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    setStatus(`disconnected (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
    state.ws = null;
  };
}

function setStatus(text) { $("status").textContent = text; }

function onPush(p) {
  switch (p.op) {
    case 2: addMessage(`${p.fromUserName} → you`, p.msg, "", "private", p.fromUserId); break;
    case 3: addMessage(p.fromUserName, p.msg, p.createTime, "room", p.fromUserId); break;
    case 4: $("count").textContent = p.count || 0; break;
    case 5: showRoster(p.roomUserInfo || {}); break;
  }
}

function addMessage(who, text, when, kind, fromId) {
  const div = document.createElement("div");
  div.className = `msg ${kind}`;
  div.dataset.kind = kind;
  if (fromId !== undefined) div.dataset.from = fromId;
  const w = document.createElement("span");
  w.className = "who";
  w.textContent = who;
  const t = document.createElement("span");
  t.className = "text";
  t.textContent = text;
  div.append(w, t);
  if (when) {
    const ts = document.createElement("span");
    ts.className = "when";
    ts.textContent = when;
    div.append(ts);
  }
  const box = $("messages");
  box.append(div);
  box.scrollTop = box.scrollHeight;
}

function showRoster(users) {
  state.roster = users;
  const ul = $("roster");
  ul.replaceChildren();
  for (const [id, name] of Object.entries(users)) {
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.uid = id;
    if (Number(id) === state.me.userId) li.className = "me";
    else li.onclick = () => setTarget(Number(id), name);
    ul.append(li);
  }
  $("count").textContent = Object.keys(users).length;
}

function setTarget(id, name) {
  state.target = id ? { id, name } : null;
  $("target").hidden = !id;
  $("target-name").textContent = name || "";
  $("msg-input").placeholder = id ? `Private message to ${name}` : "Message the room";
  $("msg-input").focus();
}

async function send() {
  const input = $("msg-input");
  const msg = input.value;
  if (!msg.trim()) return;
  const roomId = state.cfg.roomId;
  let r;
  if (state.target) {
    r = await api("/push/push", { authToken: state.token, msg, toUserId: String(state.target.id), roomId });
    // Private messages are delivered to the recipient only: show our own copy here.
    if (r.code === 0) addMessage(`you → ${state.target.name}`, msg, "", "private", state.me.userId);
  } else {
    r = await api("/push/pushRoom", { authToken: state.token, msg, roomId, op: 3 });
  }
  if (r.code === 0) input.value = "";
  else addMessage("error", r.message, "", "system");
}

async function logout() {
  await api("/user/logout", { authToken: state.token });
  sessionStorage.removeItem("gochat.token");
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  state.token = state.me = null;
  $("messages").replaceChildren();
  $("roster").replaceChildren();
  setTarget(null);
  $("chat").hidden = true;
  $("auth").hidden = false;
}

async function resume() {
  const token = sessionStorage.getItem("gochat.token");
  if (!token) return;
  await config();
  const who = await api("/user/checkAuth", { authToken: token });
  if (who.code !== 0) return sessionStorage.removeItem("gochat.token");
  state.token = token;
  state.me = who.data;
  enterChat();
}

$("auth-form").onsubmit = (e) => { e.preventDefault(); authenticate("/user/login"); };
$("register-btn").onclick = () => authenticate("/user/register");
$("send-form").onsubmit = (e) => { e.preventDefault(); send(); };
$("clear-target").onclick = () => setTarget(null);
$("logout-btn").onclick = logout;
config().then(resume).catch((e) => showError(`cannot reach the server: ${e}`));
