// Small time-series charts drawn as plain SVG: no library, crisp at any width.

const NS = "http://www.w3.org/2000/svg";
const PAD = { left: 34, right: 8, top: 8, bottom: 18 };

function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

/** The smallest of 1, 2, 5 x 10^n that is >= value (axis maximum; its half is round too). */
export function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

function formatTick(value) {
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return `${+value.toFixed(value < 10 && value % 1 ? 1 : 0)}`;
}

/** Paths [{d, x0}] for points [[t, v|null], ...]; a null breaks the line. */
function linePaths(points, x, y, step) {
  const paths = [];
  let current = null;
  for (const [t, v] of points) {
    if (v === null || v === undefined || Number.isNaN(v)) {
      if (current) paths.push(current);
      current = null;
      continue;
    }
    const px = x(t).toFixed(1);
    const py = y(v).toFixed(1);
    if (!current) current = { d: `M${px},${py}`, x0: px };
    else current.d += step ? `H${px}V${py}` : `L${px},${py}`;
  }
  if (current) paths.push(current);
  return paths;
}

/**
 * Draw series into an <svg> over the time window [tMin, tMax] (seconds).
 * series: [{points: [[t, v]], cls, area?, step?}]; minMax: the smallest y-axis maximum;
 * integer: whole-number axis (counts).
 */
export function drawChart(svg, { series, tMin, tMax, minMax = 1, integer = false, height = 84 }) {
  const width = Math.max(160, Math.round(svg.clientWidth || svg.parentNode.clientWidth || 320));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", String(height));
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  let peak = 0;
  for (const s of series) {
    for (const [t, v] of s.points) if (t >= tMin && v > peak) peak = v;
  }
  const top = Math.max(minMax, peak);
  // Counts of workers read best on whole numbers: an even maximum keeps the middle line whole.
  const yMax = integer && top <= 10 ? Math.max(2, Math.ceil(top / 2) * 2) : niceCeil(top);
  const x = (t) => PAD.left + ((t - tMin) / (tMax - tMin)) * innerW;
  const y = (v) => PAD.top + innerH - (Math.min(v, yMax) / yMax) * innerH;

  const nodes = [];
  for (const frac of [0, 0.5, 1]) {
    const gy = y(yMax * frac).toFixed(1);
    nodes.push(svgEl("line", { class: frac ? "grid" : "axis", x1: PAD.left, x2: width - PAD.right,
      y1: gy, y2: gy }));
    const label = svgEl("text", { class: "tick", x: PAD.left - 6, y: gy, "text-anchor": "end",
      "dominant-baseline": "middle" });
    label.textContent = formatTick(yMax * frac);
    nodes.push(label);
  }
  const minutes = Math.round((tMax - tMin) / 60);
  for (const [t, text, anchor] of [[tMin, `−${minutes} min`, "start"], [tMax, "now", "end"]]) {
    const label = svgEl("text", { class: "tick", x: x(t), y: height - 4, "text-anchor": anchor });
    label.textContent = text;
    nodes.push(label);
  }
  const baseY = y(0).toFixed(1);
  for (const s of series) {
    const points = s.points.filter(([t]) => t >= tMin && t <= tMax);
    for (const { d, x0 } of linePaths(points, x, y, s.step)) {
      if (s.area) nodes.push(svgEl("path", { class: `area ${s.cls}`, d: `${d}V${baseY}H${x0}Z` }));
      nodes.push(svgEl("path", { class: `line ${s.cls}`, d }));
    }
  }
  svg.replaceChildren(...nodes);
}
