// The linkerd viz dashboard: namespaces -> workloads -> pods with their
// golden metrics, refreshed live; a namespace's topology graph; a
// workload's top routes and live calls (tap); links to Grafana when the
// server knows one.
//
// Routes (in the URL's fragment):
//   #/                                    namespaces
//   #/namespaces/NS                       a namespace's workloads, graph, edges
//   #/namespaces/NS/KIND/NAME             a workload's pods, routes, edges, live calls

import "./style.css";
import { api, type Config, type Edge, type Resource, type Route, type Stat } from "./api";
import { h, table, type Column } from "./dom";
import { latency, meshed, rps, successRate } from "./format";
import { Topology } from "./graph";
import { LiveCalls } from "./tap";

const REFRESH_MS = 5000;

interface View {
  refresh(): Promise<void>;
  destroy?(): void;
}

const main = document.getElementById("main")!;
const crumbs = document.getElementById("crumbs")!;
const status = document.getElementById("status")!;
const errorBox = document.getElementById("error")!;

let config: Config = { workloadKinds: ["deployment"], window: "1m", tap: false };

function hrefOf(r: Resource): string {
  if (r.kind === "namespace") return `#/namespaces/${r.name}`;
  return `#/namespaces/${r.namespace}/${r.kind}/${r.name}`;
}

// grafanaLink links to one of viz/grafana's dashboards (by uid) with its
// template variables set, when a Grafana is configured.
function grafanaLink(r: Resource): HTMLElement | null {
  if (!config.grafanaUrl) return null;
  // viz/grafana/dashboards' uids.
  const dashboards: Record<string, string> = {
    namespace: "linkerd-namespace",
    deployment: "linkerd-deployment",
    pod: "linkerd-pod",
  };
  const uid = dashboards[r.kind];
  if (!uid) return null;
  const q = new URLSearchParams();
  if (r.kind === "namespace") {
    q.set("var-namespace", r.name);
  } else {
    q.set("var-namespace", r.namespace ?? "");
    q.set(`var-${r.kind}`, r.name);
  }
  return h(
    "a",
    { class: "grafana", href: `${config.grafanaUrl}/d/${uid}/${uid}?${q}`, target: "_blank", rel: "noopener", title: "Open in Grafana" },
    "Grafana ↗",
  );
}

const statColumns = (nameCol: Column<Stat>): Column<Stat>[] => [
  nameCol,
  { title: "Meshed", cell: (s) => meshed(s.meshedPods, s.runningPods), className: "num" },
  { title: "Success rate", cell: (s) => successRate(s.successRate), className: "num" },
  { title: "RPS", cell: (s) => rps(s.rps), className: "num" },
  { title: "P50", cell: (s) => latency(s.latencyP50), className: "num" },
  { title: "P95", cell: (s) => latency(s.latencyP95), className: "num" },
  { title: "P99", cell: (s) => latency(s.latencyP99), className: "num" },
  { title: "TCP", cell: (s) => String(Math.round(s.tcpConnections)), className: "num" },
  { title: "", cell: (s) => grafanaLink(s.resource) },
];

const routeColumns: Column<Route>[] = [
  { title: "Route", cell: (r) => h("code", {}, r.route) },
  { title: "Authority", cell: (r) => r.authority ?? "" },
  { title: "Success rate", cell: (r) => successRate(r.successRate), className: "num" },
  { title: "RPS", cell: (r) => rps(r.rps), className: "num" },
  { title: "P50", cell: (r) => latency(r.latencyP50), className: "num" },
  { title: "P95", cell: (r) => latency(r.latencyP95), className: "num" },
  { title: "P99", cell: (r) => latency(r.latencyP99), className: "num" },
];

const resName = (r: Resource, ns: string) => ((r.namespace ?? ns) === ns ? r.name : `${r.namespace}/${r.name}`);

const edgeColumns = (ns: string): Column<Edge>[] => [
  { title: "Source", cell: (e) => h("a", { href: hrefOf(e.src) }, resName(e.src, ns)) },
  { title: "Destination", cell: (e) => h("a", { href: hrefOf(e.dst) }, resName(e.dst, ns)) },
  { title: "Client identity", cell: (e) => e.clientId ?? "-", className: "id" },
  { title: "Server identity", cell: (e) => e.serverId ?? "-", className: "id" },
  {
    title: "mTLS",
    cell: (e) =>
      !e.noTlsReason && e.serverId
        ? h("span", { class: "mtls yes" }, "yes")
        : h("span", { class: "mtls no" }, e.noTlsReason ?? "no"),
  },
];

const edgeKey = (e: Edge) => `${e.src.kind}/${e.src.namespace}/${e.src.name}->${e.dst.kind}/${e.dst.namespace}/${e.dst.name}`;
const statKey = (s: Stat) => `${s.resource.kind}/${s.resource.name}`;

function section(title: string, id: string, ...extra: (Node | null)[]): HTMLElement {
  return h("section", { id }, h("h2", {}, title, ...extra.map((e) => e ?? "")));
}

function replace(sec: HTMLElement, content: HTMLElement): void {
  const old = sec.querySelector(":scope > :not(h2)");
  if (old) old.replaceWith(content);
  else sec.append(content);
}

function namespacesView(): View {
  crumbs.replaceChildren(h("span", {}, "Namespaces"));
  const sec = section("Namespaces", "namespaces");
  main.replaceChildren(sec);
  return {
    async refresh() {
      const rows = await api.namespaces();
      rows.sort((a, b) => a.resource.name.localeCompare(b.resource.name));
      replace(
        sec,
        table(
          "namespaces-table",
          statColumns({ title: "Namespace", cell: (s) => h("a", { href: hrefOf(s.resource) }, s.resource.name) }),
          rows,
          (s) => s.resource.name,
          "No namespace has meshed traffic yet.",
        ),
      );
    },
  };
}

function namespaceView(ns: string): View {
  crumbs.replaceChildren(h("a", { href: "#/" }, "Namespaces"), " / ", h("span", {}, ns));
  const graphBox = h("div", { id: "topology-graph", class: "graph" });
  const topo = section("Topology", "topology");
  topo.append(graphBox);
  const wl = section("Workloads", "workloads", grafanaLink({ kind: "namespace", name: ns }));
  const ed = section("Edges", "edges");
  main.replaceChildren(h("h1", {}, `namespace/${ns}`), topo, wl, ed);
  const graph = new Topology(graphBox, (href) => (location.hash = href));
  return {
    async refresh() {
      const [workloads, edges] = await Promise.all([
        Promise.all(config.workloadKinds.map((k) => api.workloads(ns, k))).then((r) => r.flat()),
        api.edges(ns),
      ]);
      workloads.sort((a, b) => statKey(a).localeCompare(statKey(b)));
      edges.sort((a, b) => edgeKey(a).localeCompare(edgeKey(b)));
      replace(
        wl,
        table(
          "workloads-table",
          statColumns({
            title: "Workload",
            cell: (s) => h("a", { href: hrefOf(s.resource) }, `${s.resource.kind}/${s.resource.name}`),
          }),
          workloads,
          statKey,
          `No workload in namespace ${ns} has traffic in the last ${config.window}.`,
        ),
      );
      replace(ed, table("edges-table", edgeColumns(ns), edges, edgeKey, "No edges: no meshed calls in the window."));
      graph.update({ namespace: ns, workloads, edges, href: hrefOf });
    },
    destroy: () => graph.destroy(),
  };
}

function workloadView(ns: string, kind: string, name: string): View {
  const res: Resource = { kind, namespace: ns, name };
  const wl = `${kind}/${name}`;
  crumbs.replaceChildren(h("a", { href: "#/" }, "Namespaces"), " / ", h("a", { href: `#/namespaces/${ns}` }, ns), " / ", h("span", {}, wl));
  const summary = section("Golden metrics", "summary", grafanaLink(res));
  const pods = section("Pods", "pods");
  const inbound = section("Top routes (inbound)", "routes-inbound");
  const outbound = section("Top routes (outbound)", "routes-outbound");
  const ed = section("Edges", "edges");
  // Live calls start with the view (each stream is bounded by the server).
  const live = new LiveCalls(ns, wl, config.tap);
  main.replaceChildren(h("h1", {}, `${wl} in ${ns}`), summary, live.el, inbound, outbound, ed, pods);
  if (config.tap) live.start();
  return {
    destroy: () => live.destroy(),
    async refresh() {
      const [stats, podRows, inRoutes, outRoutes, edges] = await Promise.all([
        api.workloads(ns, kind),
        api.pods(ns, wl),
        api.routes(ns, wl, "inbound"),
        api.routes(ns, wl, "outbound"),
        api.edges(ns, kind),
      ]);
      const mine = stats.filter((s) => s.resource.name === name);
      replace(
        summary,
        table("summary-table", statColumns({ title: "Workload", cell: () => wl }), mine, statKey, `No traffic for ${wl} in the last ${config.window}.`),
      );
      podRows.sort((a, b) => a.resource.name.localeCompare(b.resource.name));
      replace(
        pods,
        table("pods-table", statColumns({ title: "Pod", cell: (s) => s.resource.name }), podRows, (s) => s.resource.name, "No pods with traffic."),
      );
      const byRPS = (a: Route, b: Route) => b.rps - a.rps || a.route.localeCompare(b.route);
      replace(inbound, table("routes-inbound-table", routeColumns, inRoutes.sort(byRPS), (r) => r.route, "No inbound requests in the window."));
      replace(outbound, table("routes-outbound-table", routeColumns, outRoutes.sort(byRPS), (r) => `${r.authority} ${r.route}`, "No outbound requests in the window."));
      const touching = edges.filter((e) => (e.src.name === name && e.src.kind === kind) || (e.dst.name === name && e.dst.kind === kind));
      replace(ed, table("edges-table", edgeColumns(ns), touching.sort((a, b) => edgeKey(a).localeCompare(edgeKey(b))), edgeKey, "No edges in the window."));
    },
  };
}

function route(): View {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "namespaces" && parts.length === 2) return namespaceView(parts[1]);
  if (parts[0] === "namespaces" && parts.length === 4) return workloadView(parts[1], parts[2], parts[3]);
  return namespacesView();
}

let current: View | undefined;
let timer: number | undefined;
let generation = 0;

async function tick(gen: number): Promise<void> {
  if (!current) return;
  try {
    await current.refresh();
    if (gen !== generation) return;
    errorBox.hidden = true;
    status.textContent = `updated ${new Date().toLocaleTimeString()} · last ${config.window}`;
  } catch (err) {
    if (gen !== generation) return;
    errorBox.textContent = `Cannot load metrics: ${err instanceof Error ? err.message : String(err)}`;
    errorBox.hidden = false;
  }
  if (gen === generation) timer = window.setTimeout(() => void tick(gen), REFRESH_MS);
}

function navigate(): void {
  generation++;
  window.clearTimeout(timer);
  current?.destroy?.();
  current = route();
  void tick(generation);
}

async function start(): Promise<void> {
  try {
    config = await api.config();
  } catch (err) {
    errorBox.textContent = `Cannot reach the dashboard's server: ${err instanceof Error ? err.message : String(err)}`;
    errorBox.hidden = false;
  }
  window.addEventListener("hashchange", navigate);
  navigate();
}

void start();
