// The ring drawn as a ring: one SVG arc per partition, coloured by its primary owner, and an
// outer arc on each partition moving (join, leave, removal) in the colour of its new owner.
// Draws what the frame says; computes nothing about placement.
const svgNs = 'http://www.w3.org/2000/svg';

/** A colour per member index, spread around the hue circle. */
export function colourOf(index, count) {
  if (index < 0) return '#bbb';
  return `hsl(${Math.round((index * 360) / Math.max(1, count))}, 62%, 52%)`;
}

function arc(cx, cy, r1, r2, a0, a1) {
  const p = (r, a) => `${(cx + r * Math.sin(a)).toFixed(2)},${(cy - r * Math.cos(a)).toFixed(2)}`;
  return `M${p(r2, a0)}A${r2},${r2} 0 0 1 ${p(r2, a1)}L${p(r1, a1)}A${r1},${r1} 0 0 0 ${p(r1, a0)}Z`;
}

let drawn = { count: -1, key: '' };

export function drawRing(container, legend, caption, frame) {
  const { members, owners, moves } = frame.ring;
  const count = owners.length;
  const key = `${members.join(',')}|${owners.join(',')}|${moves.map((m) => `${m.partition}>${m.to}`).join(',')}`;
  if (drawn.key === key) return;
  drawn = { count, key };
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', '0 0 200 200');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `ring of ${count} partitions`);
  const step = (2 * Math.PI) / Math.max(1, count);
  owners.forEach((owner, partition) => {
    const path = document.createElementNS(svgNs, 'path');
    path.setAttribute('class', 'partition');
    path.setAttribute('d', arc(100, 100, 62, 88, partition * step, (partition + 1) * step));
    path.setAttribute('fill', colourOf(owner, members.length));
    path.dataset.partition = String(partition);
    path.dataset.owner = members[owner] ?? '';
    const title = document.createElementNS(svgNs, 'title');
    title.textContent = `partition ${partition}: ${members[owner] ?? 'no owner'}`;
    path.appendChild(title);
    svg.appendChild(path);
  });
  for (const move of moves) {
    const path = document.createElementNS(svgNs, 'path');
    path.setAttribute('class', 'move');
    path.setAttribute('d', arc(100, 100, 90, 97, move.partition * step, (move.partition + 1) * step));
    path.setAttribute('fill', colourOf(members.indexOf(move.to), members.length));
    const title = document.createElementNS(svgNs, 'title');
    title.textContent = `partition ${move.partition}: ${move.from} → ${move.to} (${move.state})`;
    path.appendChild(title);
    svg.appendChild(path);
  }
  const label = document.createElementNS(svgNs, 'text');
  label.setAttribute('x', '100');
  label.setAttribute('y', '104');
  label.setAttribute('text-anchor', 'middle');
  label.setAttribute('font-size', '12');
  label.textContent = `${count} partitions`;
  svg.appendChild(label);
  container.replaceChildren(svg);
  caption.textContent = moves.length > 0 ? `${moves.length} partition(s) moving` : '';
  legend.replaceChildren(
    ...members.map((id, i) => {
      const li = document.createElement('li');
      const swatch = document.createElement('i');
      swatch.style.background = colourOf(i, members.length);
      li.append(swatch, `${id} (${owners.filter((o) => o === i).length})`);
      return li;
    }),
  );
}
