// Live calls: a workload's requests as its proxies see them, streamed by
// the web server (GET api/namespaces/NS/tap, Server-Sent Events) from the
// tap service. The stream is bounded by the server (a duration, a rate);
// the panel shows the newest calls first, at most MAX_ROWS of them.

import { h } from "./dom";
import { latency } from "./format";

const MAX_ROWS = 100;

// Call mirrors viz/web/tap.go's Call.
export interface Call {
  namespace: string;
  pod: string;
  direction: string;
  source: string;
  destination: string;
  dstResource?: string;
  clientId?: string;
  serverId?: string;
  tls?: string;
  method: string;
  authority: string;
  path: string;
  httpStatus?: number;
  grpcStatus?: number;
  grpcStatusName?: string;
  error?: string;
  proxyError?: boolean;
  latencyMs: number;
  failed: boolean;
}

// who names a mesh identity by its ServiceAccount and namespace
// ("web.demo.serviceaccount.identity..." -> "web.demo"), else the address.
function who(id: string | undefined, addr: string): string {
  if (id) {
    const [sa, ns] = id.split(".");
    if (sa && ns) return `${sa}.${ns}`;
  }
  return addr;
}

function peer(c: Call): [string, string] {
  const self = `pod/${c.pod}`;
  if (c.direction === "inbound") return [who(c.clientId, c.source), self];
  return [self, c.dstResource ?? (c.authority || c.destination)];
}

export function callStatus(c: Call): string {
  const parts: string[] = [];
  if (c.httpStatus) parts.push(String(c.httpStatus));
  if (c.grpcStatus !== undefined) parts.push(`${c.grpcStatusName ?? "gRPC"} (${c.grpcStatus})`);
  if (c.error) parts.push(c.proxyError ? `proxy: ${c.error}` : c.error);
  return parts.join(" · ") || "-";
}

export class LiveCalls {
  readonly el: HTMLElement;
  private readonly body: HTMLTableSectionElement;
  private readonly table: HTMLTableElement;
  private readonly empty: HTMLElement;
  private readonly state: HTMLElement;
  private readonly button: HTMLButtonElement;
  private abort?: AbortController;
  private seq = 0;

  constructor(
    private readonly ns: string,
    private readonly resource: string,
    available: boolean,
  ) {
    this.button = h("button", { id: "tap-toggle", type: "button" }, "Start");
    this.button.addEventListener("click", () => (this.abort ? this.stop("stopped") : this.start()));
    this.state = h("span", { id: "tap-state", class: "tap-state" });
    this.body = h("tbody");
    const cols = ["Direction", "Source", "Destination", "Method", "Path", "Status", "Latency"];
    this.table = h(
      "table",
      { id: "tap-table" },
      h("thead", {}, h("tr", {}, ...cols.map((t) => h("th", { class: t === "Latency" ? "num" : undefined }, t)))),
      this.body,
    );
    this.table.hidden = true;
    this.empty = h("p", { class: "empty" }, "No calls yet.");
    this.el = h("section", { id: "live-calls" }, h("h2", {}, "Live calls", this.button, this.state), this.empty, h("div", { class: "calls" }, this.table));
    if (!available) {
      this.button.disabled = true;
      this.empty.textContent = "Live calls need the tap service, which this dashboard's server is not configured with.";
    }
  }

  start(): void {
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    this.button.textContent = "Stop";
    this.setState("connecting…", "");
    void this.run(abort).catch((err: unknown) => {
      if (abort.signal.aborted) return;
      this.stop(err instanceof Error ? err.message : String(err), true);
    });
  }

  stop(why: string, failed = false): void {
    this.abort?.abort();
    this.abort = undefined;
    this.button.textContent = "Start";
    this.setState(why, failed ? "bad" : "");
  }

  private setState(text: string, cls: string): void {
    this.state.textContent = text;
    this.state.className = `tap-state ${cls}`;
  }

  private async run(abort: AbortController): Promise<void> {
    const q = new URLSearchParams({ resource: this.resource });
    const resp = await fetch(`api/namespaces/${encodeURIComponent(this.ns)}/tap?${q}`, {
      headers: { Accept: "text/event-stream" },
      signal: abort.signal,
    });
    if (!resp.ok || !resp.body) {
      let msg = `${resp.status} ${resp.statusText}`;
      try {
        msg = ((await resp.json()) as { error?: string }).error ?? msg;
      } catch {
        // not JSON: the status says it
      }
      throw new Error(msg);
    }
    this.setState("live", "live");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (!data) continue;
        const v = JSON.parse(data) as Record<string, unknown>;
        if (event === "call") this.add(v as unknown as Call);
        else if (event === "end") {
          const dropped = Number(v.dropped ?? 0);
          this.stop(String(v.reason) + (dropped ? ` (${dropped} calls over the rate not shown)` : ""));
          return;
        } else if (event === "error") {
          this.stop(String(v.error), true);
          return;
        }
      }
    }
    if (this.abort === abort) this.stop("the stream ended");
  }

  private add(c: Call): void {
    const [src, dst] = peer(c);
    const row = h(
      "tr",
      { "data-key": String(++this.seq), class: c.failed ? "failed" : undefined },
      h("td", {}, c.direction),
      h("td", { title: c.source }, src),
      h("td", { title: c.destination }, dst),
      h("td", {}, c.method),
      h("td", { title: c.authority }, h("code", {}, c.path)),
      h("td", { class: `call-status ${c.failed ? "bad" : "good"}` }, callStatus(c)),
      h("td", { class: "num" }, latency(c.latencyMs)),
    );
    this.body.prepend(row);
    while (this.body.rows.length > MAX_ROWS) this.body.lastElementChild?.remove();
    this.table.hidden = false;
    this.empty.hidden = true;
  }

  destroy(): void {
    this.abort?.abort();
    this.abort = undefined;
  }
}
