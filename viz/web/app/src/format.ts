// Number formats as `linkerd viz stat` prints them.

import { h } from "./dom";

export function successRate(sr: number | null): HTMLElement {
  if (sr === null) return h("span", { class: "sr none", title: "no requests in the window" }, "-");
  const cls = sr >= 0.99 ? "good" : sr >= 0.9 ? "warn" : "bad";
  return h("span", { class: `sr ${cls}` }, `${(sr * 100).toFixed(2)}%`);
}

export function rps(v: number): string {
  return `${v.toFixed(1)} rps`;
}

export function latency(ms: number | null): string {
  if (ms === null) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function meshed(meshedPods: number, runningPods: number): string {
  return `${meshedPods}/${runningPods}`;
}
