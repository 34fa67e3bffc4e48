// The dashboard page: opens the node's live feed (GET /events, Server-Sent Events; the client
// token as ?token= when the node requires one) and draws each frame. Frames arrive computed by
// the node (lib/http/dashboard-view.ts): this file holds rendering only.
import { drawRing } from './ring.js';
import { addPoints } from './charts.js';

const $ = (id) => document.getElementById(id);
const tokenKey = 'ringkv-token';

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderNodes(frame) {
  const rows = frame.nodes.map((n) => {
    const tr = document.createElement('tr');
    tr.dataset.node = n.id;
    tr.className = n.state.startsWith('U') ? 'up' : 'down';
    tr.append(
      cell(n.state, 'state'),
      cell(n.id + (n.id === frame.node ? ' (this node)' : '')),
      cell(n.address),
      cell(`${n.dc} / ${n.rack}`),
      cell(n.load),
      cell(`${n.ownershipPercent.toFixed(1)}%`),
      cell(String(n.partitions)),
      cell(n.version ?? '-'),
      cell(n.uptime),
    );
    return tr;
  });
  $('nodes').tBodies[0].replaceChildren(...rows);
}

function renderTransfers(frame) {
  if (frame.transfers.length === 0) {
    const p = document.createElement('p');
    p.className = 'none';
    p.textContent = 'none in progress';
    $('transfers').replaceChildren(p);
    return;
  }
  $('transfers').replaceChildren(
    ...frame.transfers.map((t) => {
      const div = document.createElement('div');
      div.className = 'bar';
      const label = document.createElement('div');
      label.className = 'label';
      const what = document.createElement('span');
      what.textContent = `${t.node}: ${t.what}`;
      const count = document.createElement('span');
      count.textContent = `${t.done}/${t.total}`;
      label.append(what, count);
      const bar = document.createElement('progress');
      bar.max = Math.max(1, t.total);
      bar.value = t.done;
      div.append(label, bar);
      return div;
    }),
  );
}

function renderHints(frame) {
  const body = $('hints').tBodies[0];
  if (frame.hints.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'none';
    const td = cell('none');
    td.colSpan = 5;
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...frame.hints.map((h) => {
      const tr = document.createElement('tr');
      tr.append(cell(h.holder), cell(h.target), cell(String(h.hints)), cell(h.bytes), cell(h.oldest));
      return tr;
    }),
  );
}

function renderWarnings(frame) {
  const items = frame.warnings.length === 0 ? [Object.assign(document.createElement('li'), { className: 'none', textContent: 'none' })] : frame.warnings.map((w) => Object.assign(document.createElement('li'), { textContent: w }));
  $('warnings').replaceChildren(...items);
}

function renderAutoscale(frame) {
  const a = frame.autoscale;
  $('autoscale-section').hidden = a === null || a === undefined;
  if (!a) return;
  $('autoscale-leader').textContent = `leader ${a.leader}: ${a.reason}`;
  const items = a.decisions.length === 0 ? [Object.assign(document.createElement('li'), { className: 'none', textContent: 'no decisions yet' })] : a.decisions.map((d) => Object.assign(document.createElement('li'), { textContent: d }));
  $('autoscale-decisions').replaceChildren(...items);
}

function render(frame) {
  const up = frame.nodes.filter((n) => n.state.startsWith('U')).length;
  $('seen-from').textContent = `seen from ${frame.node}: ${up}/${frame.nodes.length} nodes up`;
  renderNodes(frame);
  drawRing($('ring'), $('ring-legend'), $('ring-caption'), frame);
  renderTransfers(frame);
  renderHints(frame);
  renderWarnings(frame);
  renderAutoscale(frame);
  addPoints([frame.point]);
}

function token() {
  return new URLSearchParams(location.search).get('token') ?? sessionStorage.getItem(tokenKey) ?? '';
}

function askForToken() {
  $('token-form').hidden = false;
  $('token-form').onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(tokenKey, $('token-input').value);
    $('token-form').hidden = true;
    connect();
  };
}

async function connect() {
  const query = token() ? `?token=${encodeURIComponent(token())}` : '';
  const probe = await fetch(`/feed/local${query}`).catch(() => undefined);
  if (probe?.status === 401) return askForToken();
  const feed = new EventSource(`/events${query}`);
  feed.addEventListener('history', (event) => addPoints(JSON.parse(event.data)));
  feed.addEventListener('frame', (event) => {
    $('feed-state').textContent = 'live';
    $('feed-state').className = 'feed-state live';
    render(JSON.parse(event.data));
  });
  feed.onerror = () => {
    $('feed-state').textContent = 'reconnecting';
    $('feed-state').className = 'feed-state';
  };
}

connect();
