// /docs page (api/docs.html): renders /openapi.json.
"use strict";
// Renders /openapi.json with DOM text nodes only (no innerHTML of document text).
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
function refName(r) { return r.replace("#/components/schemas/", ""); }
// typeText is a one-line type of a schema, with links to referenced schemas.
function typeNode(s) {
  if (!s) return "any";
  if (s.nullable) {
    const {nullable, ...rest} = s;
    const span = el("span", {}, typeNode(rest.allOf && rest.allOf.length === 1 ? rest.allOf[0] : rest));
    span.append(" | null");
    return span;
  }
  if (s.$ref) return el("a", {href: "#schema-" + refName(s.$ref)}, refName(s.$ref));
  if (s.anyOf || s.oneOf || s.allOf) {
    const span = el("span");
    (s.anyOf || s.oneOf || s.allOf).forEach((x, i) => { if (i) span.append(" | "); span.append(typeNode(x)); });
    return span;
  }
  if (s.type === "array") { const span = el("span", {}, "["); span.append(typeNode(s.items), "]"); return span; }
  if (s.enum) return s.enum.map(x => JSON.stringify(x)).join(" | ");
  if (s.const) return JSON.stringify(s.const);
  if (s.type === "object" && s.properties) return schemaTable(s);
  return s.type || "any";
}
function schemaTable(s) {
  const t = el("table", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"), el("th", {}, "")));
  const req = new Set(s.required || []);
  for (const [k, v] of Object.entries(s.properties || {})) {
    t.append(el("tr", {}, el("td", {}, el("code", {}, k), req.has(k) ? el("span", {class: "req"}, " *") : null),
      el("td", {}, typeNode(v)), el("td", {class: "s"}, v.description || "")));
  }
  return t;
}
function render(doc) {
  document.getElementById("ver").textContent = "OpenAPI " + doc.openapi;
  document.getElementById("intro").textContent = doc.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method === "head") continue; // every GET answers HEAD too
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({path, method, op, head: !!item.head && method === "get"});
    }
  }
  const ops = document.getElementById("ops");
  const order = (doc.tags || []).map(t => t.name);
  const desc = Object.fromEntries((doc.tags || []).map(t => [t.name, t.description || ""]));
  const tags = [...byTag.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  for (const tag of tags) {
    const list = byTag.get(tag);
    const group = el("section", {class: "tag", "data-tag": tag}, el("h2", {}, tag), desc[tag] ? el("p", {class: "s"}, desc[tag]) : null);
    ops.append(group);
    list.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
    for (const {path, method, op, head} of list) {
      const sec = op.security ? (op.security.some(x => Object.keys(x).length === 0) ? "key optional" : "key") : "open";
      const sum = el("summary", {}, el("span", {class: "m " + method}, method.toUpperCase() + (head ? "+HEAD" : "")),
        el("span", {class: "p"}, path), el("span", {class: "s"}, op.summary || ""), el("span", {class: "lock"}, sec));
      const body = el("div", {class: "body"});
      if (op.description) body.append(el("p", {}, op.description));
      if (op.parameters) {
        const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "")));
        for (const p of op.parameters) {
          t.append(el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", {class: "req"}, " *") : null),
            el("td", {}, p.in), el("td", {}, typeNode(p.schema)), el("td", {class: "s"}, p.description || "")));
        }
        body.append(t);
      }
      if (op.requestBody) {
        body.append(el("h4", {}, "Request body (" + Object.keys(op.requestBody.content).join(", ") + ")"));
        body.append(typeNode(op.requestBody.content["application/json"].schema));
      }
      body.append(el("h4", {}, "Responses"));
      for (const [code, r] of Object.entries(op.responses || {})) {
        const c = r.content ? Object.entries(r.content)[0] : null;
        body.append(el("div", {}, el("b", {}, code + " "), r.description + (c ? " — " + c[0] + ": " : ""), c ? typeNode(c[1].schema) : null));
      }
      const d = el("details", {class: "op", "data-search": (tag + " " + method + " " + path + " " + (op.summary || "")).toLowerCase()}, sum, body);
      group.append(d);
    }
  }
  const sch = document.getElementById("schemas");
  for (const [name, s] of Object.entries(doc.components.schemas).sort()) {
    sch.append(el("h3", {id: "schema-" + name}, name), typeNode(s.type === "object" ? s : {anyOf: [s]}));
  }
}
document.getElementById("filter").addEventListener("input", e => {
  const f = e.target.value.toLowerCase();
  for (const d of document.querySelectorAll("details.op")) d.style.display = d.dataset.search.includes(f) ? "" : "none";
  for (const g of document.querySelectorAll("section.tag")) {
    g.style.display = g.querySelector('details.op:not([style*="none"])') ? "" : "none";
  }
});
fetch("/openapi.json").then(r => r.json()).then(render).catch(err => {
  document.getElementById("intro").textContent = "Could not load /openapi.json: " + err;
});
