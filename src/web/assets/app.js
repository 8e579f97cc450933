// The status page's script: reads /api/status every two seconds and shows it. Every value
// from the daemon goes onto the page as text (textContent), never as HTML: a device's detail
// or an alarm's data comes from the field.
"use strict";

const REFRESH_MS = 2000;
// After this long without a fresh reading the page says it is stale.
const STALE_MS = 6000;

const LABELS = {
  zh: {
    title: "驻巡站状态", box: "主机", load: "负载", memory: "内存", disk: "磁盘", temperature: "温度",
    power: "电源", no_sensor: "无温度传感器", no_ups: "未配置 UPS", on_battery: "电池供电", line_power: "市电", interface: "网口",
    uplink: "上行链路", backlog: "待发数据", devices: "设备", device: "设备",
    driver: "驱动", state: "状态", detail: "详情", last_seen: "最后通信", staffing: "在岗与车组",
    dispatch: "出警", equipment: "未在用装备", alarms: "最近告警", toggle: "English",
    connected: "已连接", disconnected: "未连接", broker: "服务器", since: "持续", last_error: "上次错误",
    in_flight: "在途", offline_total: "累计离线", class: "类别", rows: "条数", bytes: "字节",
    oldest: "最早一条", alarm: "告警", event: "事件", telemetry: "遥测", evicted: "已淘汰条数",
    online: "在线", offline: "离线", no_fix: "无定位", waiting: "等待中", listening: "监听中", initialising: "初始化中",
    ago: "前", never: "从未", updated: "更新于", stale: "页面数据已过期：无法连接 stationd",
    refused: "令牌无效或已更改：请重新用 /?token=… 打开本页",
    uptime: "运行", clock_synced: "时钟已同步", clock_unsynced: "时钟未同步", clock_unreadable: "时钟状态未知",
    on_duty: "在岗", expected: "应到", missing: "未到", crews: "车组", none: "无",
    ready: "就绪", short_staffed: "缺员", car_unavailable: "车辆不可用", off_duty: "未在班", on_call: "出警中",
    open_incidents: "进行中警情", acknowledged: "已确认", arrived: "已到达", not_yet: "尚未",
    no_staffing: "本站未配置排班", items: "件", in_service: "在用", checked_out: "已领用", fault: "故障", lost: "丢失",
    footer: "stationd 只读状态页 · 每 2 秒刷新",
    s: "秒", min: "分", h: "小时", d: "天",
  },
  en: {
    title: "Station status", box: "The box", load: "Load", memory: "Memory", disk: "Disk", temperature: "Temperature",
    power: "Power", no_sensor: "no temperature sensor", no_ups: "no UPS configured", on_battery: "on battery", line_power: "on line power", interface: "Interface",
    uplink: "Uplink", backlog: "Backlog", devices: "Devices", device: "Device",
    driver: "Driver", state: "State", detail: "Detail", last_seen: "Last heard", staffing: "Staffing and crews",
    dispatch: "Dispatch", equipment: "Equipment not in service", alarms: "Recent alarms", toggle: "中文",
    connected: "connected", disconnected: "disconnected", broker: "Broker", since: "For", last_error: "Last error",
    in_flight: "In flight", offline_total: "Offline in all", class: "Class", rows: "Rows", bytes: "Bytes",
    oldest: "Oldest", alarm: "alarm", event: "event", telemetry: "telemetry", evicted: "Rows evicted",
    online: "online", offline: "offline", no_fix: "no fix", waiting: "waiting", listening: "listening", initialising: "initialising",
    ago: "ago", never: "never", updated: "updated", stale: "This page is stale: stationd cannot be reached",
    refused: "The token was refused or has changed: open the page again as /?token=…",
    uptime: "up", clock_synced: "clock synchronised", clock_unsynced: "clock not synchronised", clock_unreadable: "clock state unknown",
    on_duty: "On duty", expected: "Expected", missing: "Missing", crews: "Crews", none: "none",
    ready: "ready", short_staffed: "short-staffed", car_unavailable: "car unavailable", off_duty: "off duty", on_call: "on call",
    open_incidents: "Open incidents", acknowledged: "acknowledged", arrived: "arrived", not_yet: "not yet",
    no_staffing: "This station keeps no staffing", items: "items", in_service: "in service", checked_out: "checked out", fault: "fault", lost: "lost",
    footer: "stationd read-only status page · refreshes every 2 s",
    s: "s", min: "min", h: "h", d: "d",
  },
};

let lang = pickLanguage();
let last = null;          // the last document read
let lastOkAt = null;      // performance.now() of the last good reading
let refusedNow = false;

function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "zh" || asked === "en") {
    try { localStorage.setItem("stationd.lang", asked); } catch (e) { /* private mode */ }
    return asked;
  }
  try {
    const kept = localStorage.getItem("stationd.lang");
    if (kept === "zh" || kept === "en") return kept;
  } catch (e) { /* private mode */ }
  return document.documentElement.dataset.lang === "en" ? "en" : "zh";
}

function t(key) { return (LABELS[lang] && LABELS[lang][key]) || LABELS.en[key] || key; }

// el("td", {class: "x"}, "text", child…): an element with attributes and text/element children.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function badge(state) { return el("span", { class: "badge " + state, "data-state": state }, t(state)); }

function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " " + t("s");
  if (s < 3600) return Math.floor(s / 60) + " " + t("min") + " " + (s % 60) + " " + t("s");
  if (s < 86400) return Math.floor(s / 3600) + " " + t("h") + " " + Math.floor((s % 3600) / 60) + " " + t("min");
  return Math.floor(s / 86400) + " " + t("d") + " " + Math.floor((s % 86400) / 3600) + " " + t("h");
}

function ago(ms, nowMs) {
  if (ms === null || ms === undefined) return t("never");
  return lang === "zh" ? duration((nowMs - ms) / 1000) + t("ago") : duration((nowMs - ms) / 1000) + " " + t("ago");
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function dl(pairs) {
  const d = el("dl");
  for (const [k, v] of pairs) {
    if (v === null || v === undefined || v === "") continue;
    d.append(el("dt", {}, k), el("dd", {}, v));
  }
  return d;
}

function replace(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
}

function renderHead(doc) {
  const st = doc.status;
  document.title = (st.station_name || st.station) + " · " + t("title");
  replace("station-name", st.station_name || st.station);
  const clock = st.clock && st.clock.state ? t("clock_" + st.clock.state) : "";
  replace("station-line", [st.station, "stationd " + st.version, st.profile, t("uptime") + " " + duration(st.uptime_s), clock]
    .filter(Boolean).join(" · "));
}

function renderUplink(doc) {
  const u = doc.status.uplink;
  const up = !!u.connected_to;
  replace("uplink",
    el("p", {}, badge(up ? "connected" : "disconnected")),
    dl([
      [t("broker"), u.connected_to],
      [t("since"), u.since_ms ? duration((doc.now_ms - u.since_ms) / 1000) : null],
      [t("in_flight"), up ? u.in_flight : null],
      [t("offline_total"), duration(u.offline_s)],
      [t("last_error"), u.last_error ? u.last_error + " (" + ago(u.last_error_ms, doc.now_ms) + ")" : null],
    ]));
}

function renderBox(doc) {
  const b = doc.box;
  if (!b) { replace("box", el("p", { class: "muted" }, "…")); return; }
  const temps = (b.temperatures || []).map((x) => x.celsius);
  const power = b.power
    ? (b.power.error ? b.power.error : (b.power.on_battery ? t("on_battery") : t("line_power")) +
      (b.power.battery_charge_pct !== null && b.power.battery_charge_pct !== undefined ? " · " + b.power.battery_charge_pct + "%" : ""))
    : t("no_ups");
  replace("box",
    dl([
      [t("load"), b.load ? b.load.load5 + " / " + b.load.cpus + " CPU" : null],
      [t("memory"), b.memory ? b.memory.used_pct + "%" : null],
      [t("disk"), (b.volumes || []).map((v) => v.path + " " + v.used_pct + "%").join(", ")],
      [t("temperature"), temps.length ? Math.max(...temps) + " °C" : t("no_sensor")],
      [t("interface"), b.uplink && b.uplink.interface ? b.uplink.interface + (b.uplink.cellular ? " (4G)" : "") : null],
      [t("power"), power],
    ]),
    ...(b.conditions || []).map((c) => el("p", { "data-condition": c.kind }, el("span", { class: "badge alarm" }, c.kind), " " + c.detail)));
}

function renderBacklog(doc) {
  const o = doc.status.outbox;
  const rows = ["alarm", "event", "telemetry"].map((c) => el("tr", { "data-class": c },
    el("td", {}, t(c)), el("td", {}, o[c].rows), el("td", {}, bytes(o[c].bytes)),
    el("td", {}, o[c].oldest_ms ? ago(o[c].oldest_ms, doc.now_ms) : "—")));
  replace("backlog",
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, t("class")), el("th", {}, t("rows")), el("th", {}, t("bytes")), el("th", {}, t("oldest")))),
      el("tbody", {}, ...rows)),
    o.evicted_rows ? el("p", { class: "muted" }, t("evicted") + ": " + o.evicted_rows) : null);
}

function renderDevices(doc) {
  const counts = Object.entries(doc.status.devices || {}).map(([s, n]) => t(s) + " " + n).join(" · ");
  replace("device-counts", counts);
  const body = document.querySelector("#devices tbody");
  body.replaceChildren(...doc.devices.map((d) => el("tr", { "data-device": d.id, "data-state": d.state },
    el("td", {}, d.id, d.via ? el("span", { class: "muted" }, " ← " + d.via) : null),
    el("td", {}, d.driver),
    el("td", {}, badge(d.state)),
    el("td", {}, d.detail || ""),
    el("td", {}, ago(d.last_seen_ms, doc.now_ms)))));
}

function renderStaffing(doc) {
  const s = doc.staffing;
  if (!s) { replace("staffing", el("p", { class: "muted" }, t("no_staffing"))); return; }
  const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  const crews = (s.crews || []).map((c) => el("li", { "data-car": c.car },
    el("strong", {}, c.car), " ", badge(c.readiness),
    c.reason ? el("span", { class: "muted" }, " " + c.reason) : null,
    el("div", { class: "muted" }, (c.members || []).map((m) => (m.name || m.id) + (m.present ? "" : " ✗")).join(", "))));
  replace("staffing",
    dl([
      [t("on_duty"), sum(s.on_duty)],
      [t("expected"), sum(s.expected)],
      [t("missing"), (s.missing || []).length ? s.missing.join(", ") : t("none")],
    ]),
    el("h3", { class: "muted" }, t("crews")),
    crews.length ? el("ul", { class: "list" }, ...crews) : el("p", { class: "muted" }, t("none")));
}

function renderDispatch(doc) {
  const d = doc.dispatch;
  const open = (d && d.open) || [];
  if (!open.length) { replace("dispatch", el("p", { class: "muted" }, t("open_incidents") + ": " + t("none"))); return; }
  replace("dispatch", el("ul", { class: "list" }, ...open.map((i) => el("li", { "data-incident": i.incident },
    el("strong", {}, "P" + i.priority + " " + i.incident), " " + (i.type || "") + (i.summary ? ": " + i.summary : ""),
    ...(i.crews || []).map((c) => el("div", { class: "muted" }, c.car + " · " +
      t("acknowledged") + " " + (c.acknowledged ? duration(c.acknowledged.after_ms / 1000) : t("not_yet")) + " · " +
      t("arrived") + " " + (c.arrived ? "✓" : t("not_yet"))))))));
}

function renderEquipment(doc) {
  const e = doc.equipment;
  const items = (e && e.not_in_service) || [];
  if (!items.length) { replace("equipment", el("p", { class: "muted" }, e ? e.items + " " + t("items") + " · " + t("none") : t("none"))); return; }
  replace("equipment", el("ul", { class: "list" }, ...items.map((i) => el("li", { "data-item": i.item },
    el("strong", {}, i.name || i.item), " ", badge(i.state),
    el("div", { class: "muted" }, [i.class, i.assigned_to, i.reason].filter(Boolean).join(" · "))))));
}

function renderAlarms(doc) {
  const list = doc.alarms || [];
  if (!list.length) { replace("alarms", el("li", { class: "muted" }, t("none"))); return; }
  const locale = lang === "zh" ? "zh-CN" : "en-GB";
  replace("alarms", ...list.map((a) => {
    let data = a.data ? JSON.stringify(a.data) : "";
    if (data.length > 160) data = data.slice(0, 157) + "…";
    return el("li", { "data-kind": a.kind },
      el("span", { class: "badge alarm" }, a.kind), " ", a.device,
      el("div", { class: "muted" }, new Date(a.ts_ms).toLocaleString(locale) + (a.historical ? " · historical" : "") + (data ? " · " + data : "")));
  }));
}

function render() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  document.getElementById("lang-toggle").textContent = t("toggle");
  if (!last) return;
  renderHead(last);
  renderUplink(last);
  renderBox(last);
  renderBacklog(last);
  renderDevices(last);
  renderStaffing(last);
  renderDispatch(last);
  renderEquipment(last);
  renderAlarms(last);
}

function showFreshness() {
  const stale = document.getElementById("stale");
  const age = lastOkAt === null ? Infinity : performance.now() - lastOkAt;
  if (refusedNow) {
    stale.textContent = t("refused");
    stale.hidden = false;
  } else if (age > STALE_MS) {
    stale.textContent = t("stale");
    stale.hidden = false;
  } else {
    stale.hidden = true;
  }
  document.getElementById("freshness").textContent =
    lastOkAt === null ? "" : t("updated") + " " + (lang === "zh" ? duration(age / 1000) + t("ago") : duration(age / 1000) + " " + t("ago"));
}

async function refresh() {
  try {
    const r = await fetch("/api/status", { credentials: "same-origin", cache: "no-store" });
    refusedNow = r.status === 401;
    if (r.ok) {
      last = await r.json();
      lastOkAt = performance.now();
      document.body.dataset.loaded = "1";
      render();
    }
  } catch (e) {
    // The daemon is restarting or the LAN dropped: the banner says so after STALE_MS.
  }
  showFreshness();
  setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("lang-toggle").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    try { localStorage.setItem("stationd.lang", lang); } catch (e) { /* private mode */ }
    render();
    showFreshness();
  });
  render();
  refresh();
});
