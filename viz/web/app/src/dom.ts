// Small DOM helpers: every text goes through textContent, never innerHTML.

type Attrs = Record<string, string | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined) el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c);
  }
  return el;
}

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
  className?: string;
}

// table renders rows as a table with a header; empty says what no rows mean.
export function table<T>(id: string, columns: Column<T>[], rows: T[], key: (row: T) => string, empty: string): HTMLElement {
  if (rows.length === 0) {
    return h("p", { id, class: "empty" }, empty);
  }
  return h(
    "table",
    { id },
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { class: c.className }, c.title)))),
    h(
      "tbody",
      {},
      ...rows.map((r) => h("tr", { "data-key": key(r) }, ...columns.map((c) => h("td", { class: c.className }, c.cell(r))))),
    ),
  );
}
