// The web server's JSON API (viz/web/server.go); types mirror viz/web/api.go.

export interface Resource {
  kind: string;
  namespace?: string;
  name: string;
}

export interface Stat {
  resource: Resource;
  meshedPods: number;
  runningPods: number;
  failedPods?: number;
  successRate: number | null;
  rps: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
  tcpConnections: number;
}

export interface Edge {
  src: Resource;
  dst: Resource;
  clientId?: string;
  serverId?: string;
  noTlsReason?: string;
}

export interface Route {
  route: string;
  authority?: string;
  successRate: number | null;
  rps: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
}

export interface Config {
  grafanaUrl?: string;
  workloadKinds: string[];
  window: string;
  // tap: the server streams live calls.
  tap: boolean;
}

export class APIError extends Error {}

async function get<T>(path: string): Promise<T> {
  // Relative to the page, so that a path prefix (a proxy) keeps working.
  const resp = await fetch("api/" + path, { headers: { Accept: "application/json" } });
  let body: unknown;
  try {
    body = await resp.json();
  } catch {
    throw new APIError(`${resp.status} ${resp.statusText} from api/${path}`);
  }
  if (!resp.ok) {
    const msg = (body as { error?: string }).error ?? `${resp.status} ${resp.statusText}`;
    throw new APIError(msg);
  }
  return body as T;
}

// list fetches a JSON array (null, from an older server, is no rows).
async function list<T>(path: string): Promise<T[]> {
  return (await get<T[] | null>(path)) ?? [];
}

const enc = encodeURIComponent;

export const api = {
  config: () => get<Config>("config"),
  namespaces: () => list<Stat>("namespaces"),
  workloads: (ns: string, kind = "deployment") => list<Stat>(`namespaces/${enc(ns)}/workloads?kind=${enc(kind)}`),
  pods: (ns: string, workload: string) => list<Stat>(`namespaces/${enc(ns)}/pods?workload=${enc(workload)}`),
  edges: (ns: string, kind = "deployment") => list<Edge>(`namespaces/${enc(ns)}/edges?kind=${enc(kind)}`),
  routes: (ns: string, workload: string, direction: "inbound" | "outbound") =>
    list<Route>(`namespaces/${enc(ns)}/routes?workload=${enc(workload)}&direction=${direction}`),
};
