// The agent console: the phone's state (with its clock and the wrap-up countdown), the
// buttons that change it, and the screen pop, all from the agent's own feed. Everything
// shown is set as text (textContent), never as markup.
(function () {
  "use strict";
  const root = document.getElementById("console");
  if (!root) return;
  const agentId = root.dataset.agent;
  const csrf = root.dataset.csrf;
  const words = {};
  document.getElementById("words").content.querySelectorAll("[data-key]").forEach(function (w) {
    words[w.dataset.key] = w.textContent;
  });
  const $ = function (id) { return document.getElementById(id); };
  let agent = null;

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + String(s).padStart(2, "0");
  }

  function showState(a) {
    agent = a;
    const state = $("state");
    state.dataset.state = a.state;
    state.textContent = words["agent_state_" + a.state] || a.state;
    $("reason").textContent = a.state === "paused" && a.reason ? a.reason : "";
    $("since").dataset.since = a.since;
    const buttons = root.querySelectorAll(".actions button");
    buttons.forEach(function (b) {
      const action = b.dataset.action;
      const allowed = {
        "logged-out": ["log-in"],
        "paused": ["ready", "pause", "log-out"],
        "ready": ["pause", "log-out"],
        "wrap-up": ["ready", "pause", "log-out"],
        "ringing": [],
        "on-call": [],
      }[a.state] || [];
      b.disabled = allowed.indexOf(action) < 0;
      if (action === "ready") b.textContent = a.state === "wrap-up" ? words.act_end_wrap : words.act_ready;
    });
    tick();
  }

  function tick() {
    if (!agent) return;
    const now = Date.now();
    $("since").textContent = clock((now - Date.parse(agent.since)) / 1000);
    const wrap = agent.state === "wrap-up" && agent.wrap_up_until;
    $("wrap").hidden = !wrap;
    if (wrap) $("wrap-left").textContent = clock((Date.parse(agent.wrap_up_until) - now) / 1000);
  }
  setInterval(tick, 1000);

  // My cases: each open deadline counts down; a passed one says by how much.
  function countdowns() {
    const now = Date.now();
    document.querySelectorAll(".countdown").forEach(function (c) {
      const left = (Date.parse(c.dataset.due) - now) / 1000;
      const h = Math.floor(Math.abs(left) / 3600);
      const text = (h ? h + "h " : "") + clock(Math.abs(left) % 3600);
      c.textContent = left >= 0 ? text : words.overdue + " " + text;
      c.classList.toggle("late", left < 0);
    });
  }
  countdowns();
  setInterval(countdowns, 1000);

  function item(list, text, cls) {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    list.appendChild(li);
    return li;
  }

  function showPop(pop) {
    $("no-pop").hidden = true;
    $("pop").hidden = false;
    $("pop").classList.toggle("is-emergency", pop.emergency);
    $("pop-emergency").hidden = !pop.emergency;
    $("pop-number").textContent = pop.caller_number || "—";
    $("pop-choice").textContent = pop.choice_label || "";
    $("pop-queue").textContent = pop.queue_label || pop.queue || "";
    $("pop-waited").textContent = pop.waited_s == null ? "—" : clock(pop.waited_s);
    const residents = $("pop-residents"), cases = $("pop-cases"), recent = $("pop-recent");
    [residents, cases, recent].forEach(function (l) { l.replaceChildren(); });
    pop.residents.forEach(function (r) {
      const where = r.building ? r.building + "栋 " + (r.room || "") : "";
      item(residents, [r.name || "", where, r.note ? "（" + r.note + "）" : ""].join(" ").trim());
    });
    if (!pop.residents.length) item(residents, words.pop_no_resident, "muted");
    pop.open_cases.forEach(function (c) {
      const li = item(cases, "#" + c.id + " " + c.kind_label + " · " + c.summary);
      c.deadlines.forEach(function (d) {
        const span = document.createElement("span");
        span.className = d.overdue ? "tag late" : "tag";
        span.textContent = d.label + " " + new Date(d.due_at).toLocaleString() + (d.overdue ? " " + words.overdue : "");
        li.appendChild(document.createTextNode(" "));
        li.appendChild(span);
      });
    });
    if (!pop.open_cases.length) item(cases, words.pop_no_cases, "muted");
    pop.recent_calls.forEach(function (c) {
      item(recent, new Date(c.started_at).toLocaleString() + " · " + (c.queue || "—"));
    });
    if (!pop.recent_calls.length) item(recent, words.pop_no_recent, "muted");
  }

  root.querySelectorAll(".actions button").forEach(function (b) {
    b.addEventListener("click", async function () {
      const body = { action: b.dataset.action };
      if (body.action === "pause") body.reason = $("pause-reason").value;
      const problem = $("state-problem");
      problem.hidden = true;
      const resp = await fetch("/api/agents/" + agentId + "/state", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      if (resp.ok) { showState(await resp.json()); return; }
      if (resp.status === 401) { location.href = "/login?next=/console&expired=1"; return; }
      const err = await resp.json().catch(function () { return { message: resp.statusText }; });
      problem.textContent = err.message;
      problem.hidden = false;
    });
  });

  let wait = 500;
  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/console/feed");
    ws.onopen = function () { wait = 500; };
    ws.onmessage = function (m) {
      const message = JSON.parse(m.data);
      if (message.type === "me") showState(message.agent);
      else if (message.type === "pop") showPop(message.pop);
    };
    ws.onclose = function () { setTimeout(connect, wait); wait = Math.min(wait * 2, 10000); };
  }
  connect();
})();
