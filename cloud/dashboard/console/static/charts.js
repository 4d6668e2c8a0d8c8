// Charts as inline SVG built here (no library, nothing from a CDN). Colours are presentation
// attributes, not style attributes, so the page's CSP (default-src 'self') allows them.

const SVG = "http://www.w3.org/2000/svg";
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LOW = [239, 244, 251];
const HIGH = [8, 48, 107];

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function chart(width, height, label) {
  // intrinsic size as width/height: a chart never grows past it, CSS only shrinks it to fit
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img", "aria-label": label });
  svg.append(s("title", {}, label));
  return svg;
}

export function shade(ratio) {
  const t = Math.max(0, Math.min(1, Number(ratio) || 0));
  const rgb = LOW.map((low, i) => Math.round(low + (HIGH[i] - low) * t));
  return `rgb(${rgb.join(",")})`;
}

/** Weekday x hour grid; `cells` as the analytics occupancy endpoint returns them. */
export function heatmap(cells, label) {
  const size = 26;
  const left = 40;
  const top = 22;
  const svg = chart(left + 24 * size + 4, top + 7 * size + 34, label);
  for (let hour = 0; hour < 24; hour += 3) {
    svg.append(s("text", { x: left + hour * size + size / 2, y: 14, "text-anchor": "middle", class: "axis" }, `${String(hour).padStart(2, "0")}h`));
  }
  WEEKDAYS.forEach((day, row) => {
    svg.append(s("text", { x: left - 6, y: top + row * size + size / 2 + 4, "text-anchor": "end", class: "axis" }, day));
  });
  for (const cell of cells) {
    const rect = s("rect", {
      x: left + cell.hour * size + 1,
      y: top + cell.weekday * size + 1,
      width: size - 2,
      height: size - 2,
      rx: 3,
      fill: shade(cell.occupancy_ratio),
      class: "cell",
      "data-weekday": cell.weekday,
      "data-hour": cell.hour,
    });
    const pct = (cell.occupancy_ratio * 100).toFixed(0);
    rect.append(s("title", {}, `${WEEKDAYS[cell.weekday]} ${String(cell.hour).padStart(2, "0")}:00 — ${pct}% full (${cell.avg_occupied.toFixed(1)} seats on average)`));
    svg.append(rect);
  }
  const legendY = top + 7 * size + 12;
  [0, 0.25, 0.5, 0.75, 1].forEach((ratio, i) => {
    svg.append(s("rect", { x: left + i * 60, y: legendY, width: 18, height: 14, rx: 2, fill: shade(ratio) }));
    svg.append(s("text", { x: left + i * 60 + 22, y: legendY + 11, class: "axis" }, `${ratio * 100}%`));
  });
  return svg;
}

/** Vertical bars: rows [{label, value, text}], e.g. revenue by month. */
export function columns(rows, label) {
  const longest = Math.max(0, ...rows.map((row) => Math.max(row.label.length, row.text.length)));
  const band = Math.max(56, Math.ceil(longest * 6.6) + 12);  // ~6.6 px per character at 11 px
  const height = 190;
  const base = 150;
  const width = Math.max(320, rows.length * band + 20);
  const svg = chart(width, height, label);
  const max = Math.max(1, ...rows.map((row) => row.value));
  rows.forEach((row, i) => {
    const barHeight = Math.max(0, (row.value / max) * 120);
    const x = 10 + i * band;
    const bar = s("rect", { x: x + 8, y: base - barHeight, width: band - 16, height: barHeight, rx: 2, class: "bar" });
    bar.append(s("title", {}, `${row.label}: ${row.text}${row.tip || ""}`));
    svg.append(bar);
    svg.append(s("text", { x: x + band / 2, y: base - barHeight - 6, "text-anchor": "middle", class: "value" }, row.text));
    svg.append(s("text", { x: x + band / 2, y: base + 16, "text-anchor": "middle", class: "axis" }, row.label));
  });
  svg.append(s("line", { x1: 10, x2: width - 10, y1: base, y2: base, class: "baseline" }));
  return svg;
}

/** Horizontal bars with the label on the left: revenue by plan or by tenant, kWh. */
export function bars(rows, label) {
  const line = 30;
  const labelWidth = 150;
  const width = 520;
  const svg = chart(width, rows.length * line + 10, label);
  const max = Math.max(1, ...rows.map((row) => row.value));
  rows.forEach((row, i) => {
    const y = 6 + i * line;
    const barWidth = Math.max(0, (row.value / max) * (width - labelWidth - 110));
    const name = row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label;
    svg.append(s("text", { x: labelWidth - 8, y: y + 16, "text-anchor": "end", class: "axis" }, name));
    const bar = s("rect", { x: labelWidth, y: y + 2, width: barWidth, height: line - 10, rx: 2, class: "bar" });
    bar.append(s("title", {}, `${row.label}: ${row.text}`));
    svg.append(bar);
    svg.append(s("text", { x: labelWidth + barWidth + 6, y: y + 16, class: "value" }, row.text));
  });
  return svg;
}
