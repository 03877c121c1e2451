// The topology graph: one node per workload, one edge per caller -> callee
// pair the metrics saw, drawn by cytoscape. Meshed workloads have solid
// borders, unmeshed ones dashed; mTLS edges are solid and labelled, plain
// ones dashed and red.

import cytoscape from "cytoscape";
import type { Core, ElementDefinition } from "cytoscape";
import type { Edge, Resource, Stat } from "./api";

declare global {
  interface Window {
    // The live graph, for the browser tests (and the curious).
    vizTopology?: Core;
  }
}

const key = (r: Resource) => `${r.kind}/${r.namespace ?? ""}/${r.name}`;

function srColor(sr: number | null | undefined): string {
  if (sr === null || sr === undefined) return "#9aa5b1";
  if (sr >= 0.99) return "#2f9e44";
  if (sr >= 0.9) return "#e8a400";
  return "#d64545";
}

export interface TopologyInput {
  namespace: string;
  workloads: Stat[];
  edges: Edge[];
  href: (r: Resource) => string;
}

export class Topology {
  private cy: Core;
  private shape = "";

  constructor(container: HTMLElement, onOpen: (href: string) => void) {
    this.cy = cytoscape({
      container,
      minZoom: 0.3,
      maxZoom: 1.5,
      wheelSensitivity: 0.3,
      boxSelectionEnabled: false,
      style: [
        {
          selector: "node",
          style: {
            shape: "round-rectangle",
            width: "data(width)",
            height: 34,
            label: "data(label)",
            "text-valign": "center",
            "font-size": 13,
            "font-family": "system-ui, sans-serif",
            color: "#fff",
            "background-color": "data(color)",
            "border-width": 2,
            "border-color": "#1f2933",
          },
        },
        { selector: "node[?unmeshed]", style: { "border-style": "dashed", "background-color": "#cbd2d9", color: "#1f2933" } },
        { selector: "node[?external]", style: { "background-opacity": 0.55 } },
        {
          selector: "edge",
          style: {
            width: 2,
            "curve-style": "bezier",
            "target-arrow-shape": "triangle",
            "line-color": "#52606d",
            "target-arrow-color": "#52606d",
            label: "data(label)",
            "font-size": 10,
            "text-background-color": "#fff",
            "text-background-opacity": 0.9,
            "text-background-padding": "2px",
          },
        },
        { selector: "edge[!mtls]", style: { "line-style": "dashed", "line-color": "#d64545", "target-arrow-color": "#d64545" } },
      ],
    });
    this.cy.on("tap", "node", (ev) => {
      const href = ev.target.data("href") as string | undefined;
      if (href) onOpen(href);
    });
    window.vizTopology = this.cy;
  }

  update(input: TopologyInput): void {
    const stats = new Map(input.workloads.map((s) => [key(s.resource), s]));
    const nodes = new Map<string, ElementDefinition>();
    const addNode = (r: Resource) => {
      const id = key(r);
      if (nodes.has(id)) return;
      const s = stats.get(id);
      const external = (r.namespace ?? input.namespace) !== input.namespace;
      const label = external ? `${r.namespace}/${r.name}` : r.name;
      nodes.set(id, {
        group: "nodes",
        data: {
          id,
          label,
          // Room for the label (13px sans: ~8px a character).
          width: Math.max(60, label.length * 8 + 24),
          color: srColor(s?.successRate),
          unmeshed: s !== undefined ? s.meshedPods === 0 : false,
          external,
          href: input.href(r),
        },
      });
    };
    for (const s of input.workloads) addNode(s.resource);
    const edges: ElementDefinition[] = [];
    for (const e of input.edges) {
      addNode(e.src);
      addNode(e.dst);
      const mtls = !e.noTlsReason && !!e.serverId;
      edges.push({
        group: "edges",
        data: {
          id: `${key(e.src)}->${key(e.dst)}`,
          source: key(e.src),
          target: key(e.dst),
          mtls,
          label: mtls ? "mTLS" : (e.noTlsReason ?? "no TLS"),
        },
      });
    }
    // An edge's source that no stat row knows has no proxy we scraped: unmeshed.
    for (const [id, n] of nodes) {
      if (!stats.has(id) && !n.data.external && input.edges.some((e) => key(e.src) === id && !e.clientId)) {
        n.data.unmeshed = true;
      }
    }
    const all = [...nodes.values(), ...edges];
    const shape = all.map((el) => el.data.id).sort().join(",");
    if (shape === this.shape) {
      // Same graph: refresh colours and labels in place, keep the layout.
      this.cy.batch(() => {
        for (const el of all) {
          // id, source and target are the element's identity: never reset.
          const { id, source: _s, target: _t, ...rest } = el.data;
          this.cy.getElementById(id as string).data(rest);
        }
      });
      return;
    }
    this.shape = shape;
    // Callers on the left, callees on the right: a node's column is its
    // longest call path from a node nobody calls; a column's nodes are
    // stacked in name order.
    const ids = [...nodes.keys()];
    const links = edges.map((e) => [e.data.source as string, e.data.target as string] as const).filter(([a, b]) => a !== b);
    const depth = new Map<string, number>(ids.filter((id) => !links.some(([, b]) => b === id)).map((id) => [id, 0]));
    for (let pass = 0, changed = true; changed && pass < ids.length; pass++) {
      changed = false;
      for (const [a, b] of links) {
        const d = depth.get(a);
        if (d !== undefined && (depth.get(b) ?? -1) < d + 1 && d + 1 < ids.length) {
          depth.set(b, d + 1);
          changed = true;
        }
      }
    }
    const columns = new Map<number, string[]>();
    for (const id of ids) {
      const d = depth.get(id) ?? 0; // in a cycle nobody enters: first column
      columns.set(d, [...(columns.get(d) ?? []), id]);
    }
    const rows = Math.max(...[...columns.values()].map((c) => c.length));
    for (const [d, col] of columns) {
      col.sort((a, b) => String(nodes.get(a)!.data.label).localeCompare(String(nodes.get(b)!.data.label)));
      col.forEach((id, i) => {
        nodes.get(id)!.position = { x: 100 + d * 200, y: 100 + (i + (rows - col.length) / 2) * 80 };
      });
    }
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add([...nodes.values(), ...edges]);
    });
    this.cy.fit(undefined, 20);
  }

  destroy(): void {
    if (window.vizTopology === this.cy) window.vizTopology = undefined;
    this.cy.destroy();
  }
}
