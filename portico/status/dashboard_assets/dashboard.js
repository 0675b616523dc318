// The router's dashboard: one EventSource, one redraw per event. Text only through textContent.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let source = null;

  function ms(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 0.001) return (seconds * 1000).toFixed(2) + " ms";
    if (seconds < 1) return (seconds * 1000).toFixed(1) + " ms";
    return seconds.toFixed(2) + " s";
  }
  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 60) return seconds.toFixed(0) + " s ago";
    if (seconds < 3600) return (seconds / 60).toFixed(0) + " min ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }
  function duration(seconds) {
    const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    const m = Math.floor(s % 3600 / 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
  }
  const pct = (x) => (x * 100).toFixed(x && x < 0.01 ? 2 : 1) + " %";
  const rate = (x) => x >= 100 ? x.toFixed(0) : x.toFixed(1);

  function set(id, text, bad) {
    const el = $(id);
    el.textContent = text;
    if (bad !== undefined) el.classList.toggle("bad", !!bad);
  }
  function badge(id, text, state) {
    const el = $(id);
    el.textContent = text;
    el.className = "badge " + (state || "");
  }
  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }
  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }
  function spark(svg, values) {
    const max = Math.max(...values, 1e-9), n = values.length;
    const points = values.map((v, i) => `${n > 1 ? (i * 300) / (n - 1) : 0},${58 - (v / max) * 56}`).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points);
    svg.replaceChildren(line);
  }

  function draw(data) {
    const r = data.router, now = data.now;
    badge("phase", r.phase, r.phase === "healthy" ? "ok" : "bad");
    badge("nats", r.nats_connected ? "NATS connected" : "NATS disconnected", r.nats_connected ? "ok" : "bad");
    badge("workers", r.workers > 1 ? `${r.workers} workers` : "1 worker");
    set("rps", rate(now.requests_per_sec));
    set("error-rate", pct(now.error_rate), now.error_rate > 0.01);
    set("p50", ms(now.p50));
    set("p99", ms(now.p99));
    set("backend-p99", ms(now.backend_p99));
    set("routes", String(r.routes));
    set("endpoints", String(r.endpoints));
    set("connections", String(r.open_connections));
    set("since-registration", ago(r.since_registry_update));
    set("uptime", duration(r.uptime));
    spark($("chart-rps"), data.series.map((p) => p[1]));
    spark($("chart-p99"), data.series.map((p) => p[3]));

    fill($("busiest").tBodies[0], data.routes.map((route) => {
      const tr = document.createElement("tr");
      tr.dataset.route = route.route;
      cell(tr, route.route, "route").title = route.app_id ? "app " + route.app_id : route.route;
      cell(tr, rate(route.requests_per_sec));
      cell(tr, pct(route.error_rate), route.error_rate > 0.01 ? "bad" : "");
      cell(tr, ms(route.p50));
      cell(tr, ms(route.p99));
      cell(tr, String(route.requests));
      return tr;
    }));

    const rows = [];
    for (const route of data.table) {
      route.endpoints.forEach((ep, i) => {
        const tr = document.createElement("tr");
        tr.dataset.route = route.route;
        if (ep.benched) tr.className = "benched";
        cell(tr, i === 0 ? route.route : "", "route");
        cell(tr, ep.address + (ep.tls ? " (tls)" : ""));
        cell(tr, ep.app_id || "");
        cell(tr, ep.ttl_left === null ? "no expiry" : ep.ttl_left.toFixed(0) + " s");
        cell(tr, String(ep.in_flight));
        cell(tr, String(ep.failures), ep.failures ? "bad" : "");
        cell(tr, ep.benched ? "benched" : "ok");
        rows.push(tr);
      });
    }
    fill($("route-table").tBodies[0], rows);
    $("table-note").textContent = data.filter ? `matching “${data.filter}”` : "busiest first";

    const list = data.failures.map((f) => {
      const li = document.createElement("li");
      li.textContent = `${new Date(f.at * 1000).toLocaleTimeString()}  ${f.route}  ${f.address}  ${f.code}`;
      return li;
    });
    if (!list.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "none";
      list.push(li);
    }
    $("failures").replaceChildren(...list);
  }

  function connect() {
    if (source) source.close();
    const q = $("filter").value.trim();
    source = new EventSource("/dashboard/events" + (q ? "?q=" + encodeURIComponent(q) : ""));
    source.onopen = () => badge("live", "live", "ok");
    source.onerror = () => badge("live", "reconnecting", "bad");
    source.onmessage = (event) => {
      badge("live", "live", "ok");
      draw(JSON.parse(event.data));
    };
  }

  let typing = null;
  $("filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(connect, 250);
  });
  connect();
})();
