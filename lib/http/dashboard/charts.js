// Live charts (uPlot, served from node_modules): cluster ops/s by operation, cluster p50/p99,
// and per node ops/s and p99. Points come computed from the node's feed; this file only keeps
// the last minutes of them and hands them to uPlot.
const historyPoints = 300;
const points = [];
let charts = [];
let nodeKey = '';

function size(el) {
  return { width: Math.max(200, el.clientWidth || 300), height: 140 };
}

function chart(el, title, seriesNames, unit) {
  el.replaceChildren();
  const opts = {
    title,
    ...size(el),
    series: [{}, ...seriesNames.map((label, i) => ({ label, stroke: `hsl(${(i * 137) % 360}, 60%, 45%)`, width: 1.5, value: (u, v) => (v == null ? '-' : `${v.toFixed(unit === 'ms' ? 2 : 0)} ${unit}`) }))],
    axes: [{}, { size: 50 }],
    legend: { live: false },
  };
  return new uPlot(opts, [[], ...seriesNames.map(() => [])], el);
}

function nodesOf() {
  const ids = new Set();
  for (const p of points) for (const id of Object.keys(p.nodes)) ids.add(id);
  return [...ids].sort();
}

function build() {
  const nodes = nodesOf();
  nodeKey = nodes.join(',');
  charts = [
    { u: chart(document.getElementById('chart-ops'), 'cluster ops/s', ['get', 'put', 'delete'], '/s'), data: (p) => ['get', 'put', 'delete'].map((op) => p.cluster.ops[op] ?? 0) },
    { u: chart(document.getElementById('chart-latency'), 'cluster latency', ['p50', 'p99'], 'ms'), data: (p) => [p.cluster.p50Ms, p.cluster.p99Ms] },
    { u: chart(document.getElementById('chart-node-ops'), 'ops/s per node', nodes, '/s'), data: (p) => nodes.map((id) => (p.nodes[id] ? Object.values(p.nodes[id].ops).reduce((a, b) => a + b, 0) : null)) },
    { u: chart(document.getElementById('chart-node-p99'), 'p99 per node', nodes, 'ms'), data: (p) => nodes.map((id) => p.nodes[id]?.p99Ms ?? null) },
  ];
}

function redraw() {
  if (nodesOf().join(',') !== nodeKey || charts.length === 0) build();
  const xs = points.map((p) => p.t / 1000);
  for (const c of charts) {
    const columns = points.map(c.data);
    const series = columns.length === 0 ? [] : columns[0].map((_, i) => columns.map((col) => col[i]));
    c.u.setData([xs, ...(series.length > 0 ? series : c.u.series.slice(1).map(() => []))]);
  }
  document.getElementById('charts').dataset.points = String(points.length);
}

export function addPoints(list) {
  points.push(...list);
  points.splice(0, Math.max(0, points.length - historyPoints));
  redraw();
}

// Charts follow their container's width (phone, tablet, desktop; rotation included).
new ResizeObserver(() => {
  for (const c of charts) c.u.setSize(size(c.u.root.parentElement));
}).observe(document.getElementById('charts'));
