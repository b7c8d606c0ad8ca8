// Drawing helpers of the dlvr_jax Playground: colour scales, heatmaps, points,
// the loss chart, the gradient heatmap and the sweep heatmap. Canvas only.

// The TF Playground's diverging scale: orange (-1), light grey (0), blue (+1).
const NEGATIVE = [245, 147, 34];
const MIDDLE = [232, 234, 235];
const POSITIVE = [8, 119, 189];
// Class colours for multi-class output (class 0 and 1 as in the binary case).
export const CLASS_COLOURS = [
  [245, 147, 34], [8, 119, 189], [46, 160, 67], [200, 60, 150],
  [140, 100, 40], [90, 90, 200], [220, 60, 60], [40, 170, 170],
  [120, 120, 120], [180, 180, 40],
];

/** The diverging colour of v in [-1, 1] (clamped), as [r, g, b]. */
export function diverging(v) {
  if (!(v === v)) return [0, 0, 0]; // NaN: black
  const t = Math.max(-1, Math.min(1, v));
  const a = t < 0 ? NEGATIVE : POSITIVE;
  const w = Math.abs(t);
  return [
    MIDDLE[0] + (a[0] - MIDDLE[0]) * w,
    MIDDLE[1] + (a[1] - MIDDLE[1]) * w,
    MIDDLE[2] + (a[2] - MIDDLE[2]) * w,
  ];
}

export function rgb(c, alpha = 1) {
  return `rgba(${c[0] | 0},${c[1] | 0},${c[2] | 0},${alpha})`;
}

/** A sequential scale (light yellow -> dark blue) for t in [0, 1]. */
export function sequential(t) {
  const stops = [[255, 247, 188], [161, 218, 180], [65, 182, 196], [44, 127, 184], [37, 52, 148]];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return [0, 1, 2].map((k) => stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f);
}

const scratch = new Map();
function scratchCanvas(w, h) {
  const key = `${w}x${h}`;
  let c = scratch.get(key);
  if (!c) {
    c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    scratch.set(key, c);
  }
  return c;
}

/**
 * Paints an R x R grid onto a canvas, scaled to its size. colourOf(i) gives
 * [r, g, b] (or [r, g, b, a]) of cell i (row 0 = top).
 */
export function paintGrid(canvas, rows, cols, colourOf, smooth = true) {
  const tmp = scratchCanvas(cols, rows);
  const tctx = tmp.getContext("2d");
  const image = tctx.createImageData(cols, rows);
  const px = image.data;
  for (let i = 0; i < rows * cols; i++) {
    const c = colourOf(i);
    px[4 * i] = c[0];
    px[4 * i + 1] = c[1];
    px[4 * i + 2] = c[2];
    px[4 * i + 3] = c.length > 3 ? c[3] : 255;
  }
  tctx.putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = smooth;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

// The diverging scale as a lookup table of packed RGBA pixels (the byte order of
// the platform, through a Uint8ClampedArray view): heatmaps are drawn often.
const LUT_STEPS = 1023;
const LUT = (() => {
  const bytes = new Uint8ClampedArray(4 * (LUT_STEPS + 1));
  for (let i = 0; i <= LUT_STEPS; i++) {
    const c = diverging((2 * i) / LUT_STEPS - 1);
    bytes.set([c[0], c[1], c[2], 255], 4 * i);
  }
  return new Uint32Array(bytes.buffer);
})();
const NAN_PIXEL = new Uint32Array(new Uint8ClampedArray([0, 0, 0, 255]).buffer)[0];
const images = new Map();

/** A map of values, coloured by the diverging scale after dividing by `scale`. */
export function paintValues(canvas, values, rows, cols, scale, discretize = false) {
  const inv = scale > 0 ? 1 / scale : 1;
  const tmp = scratchCanvas(cols, rows);
  const tctx = tmp.getContext("2d");
  const key = `${cols}x${rows}`;
  let image = images.get(key);
  if (!image) {
    image = tctx.createImageData(cols, rows);
    images.set(key, image);
  }
  const px = new Uint32Array(image.data.buffer);
  const half = LUT_STEPS / 2;
  for (let i = 0; i < rows * cols; i++) {
    let v = values[i] * inv;
    if (v !== v) {
      px[i] = NAN_PIXEL;
      continue;
    }
    if (discretize) v = v > 0 ? 1 : v < 0 ? -1 : 0;
    else if (v > 1) v = 1;
    else if (v < -1) v = -1;
    px[i] = LUT[Math.round((v + 1) * half)];
  }
  tctx.putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
}

/** The multi-class output: class colour, lighter where the confidence is low. */
export function paintClasses(canvas, classes, confidence, rows, cols, k, discretize) {
  paintGrid(canvas, rows, cols, (i) => {
    const c = CLASS_COLOURS[(classes[i] | 0) % CLASS_COLOURS.length];
    let w = discretize || !confidence ? 1 : (confidence[i] - 1 / k) / (1 - 1 / k);
    w = Math.max(0, Math.min(1, w)) * 0.85 + 0.15;
    return [
      MIDDLE[0] + (c[0] - MIDDLE[0]) * w,
      MIDDLE[1] + (c[1] - MIDDLE[1]) * w,
      MIDDLE[2] + (c[2] - MIDDLE[2]) * w,
    ];
  });
}

/** Max |v| of an array (1 if it is all zeros or empty). */
export function maxAbs(values) {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (a > m) m = a;
  }
  return m > 0 ? m : 1;
}

/** Draws data points on a heatmap canvas: train with white edges, test with black. */
export function drawPoints(canvas, points, domain, colourOf, edge) {
  if (!points || !points.x) return;
  const ctx = canvas.getContext("2d");
  const [xmin, xmax, ymin, ymax] = domain;
  const sx = canvas.width / (xmax - xmin);
  const sy = canvas.height / (ymax - ymin);
  ctx.lineWidth = 1;
  ctx.strokeStyle = edge;
  for (let i = 0; i < points.x.length; i++) {
    const [a, b] = points.x[i];
    ctx.beginPath();
    ctx.arc((a - xmin) * sx, (ymax - b) * sy, 3, 0, 2 * Math.PI);
    ctx.fillStyle = colourOf(points.y[i]);
    ctx.fill();
    ctx.stroke();
  }
}

/** The loss chart: train (black) and test (grey) losses over all epochs so far. */
export function drawLossChart(canvas, train, test) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = train.length;
  if (n === 0) return;
  let top = 0;
  for (const series of [train, test]) {
    for (let i = 0; i < series.length; i++) {
      if (Number.isFinite(series[i]) && series[i] > top) top = series[i];
    }
  }
  if (!(top > 0)) top = 1;
  // A log-scaled epoch axis: the first epochs, where the loss falls, keep their share of the
  // width however long the run (column c shows the record at exp(c * span / (w - 1)) - 1).
  const span = Math.log1p(Math.max(1, n - 1));
  const index = (c) => Math.min(n - 1, Math.round(Math.expm1((c * span) / (w - 1))));
  ctx.fillStyle = "#ccc";
  ctx.font = "9px sans-serif";
  for (let tick = 1; tick < n; tick *= 10) {
    const x = (Math.log1p(tick) / span) * (w - 1);
    ctx.fillRect(Math.round(x), h - 4, 1, 4);
    if (tick >= 10) ctx.fillText(String(tick), Math.round(x) + 2, h - 1);
  }
  const line = (series, colour) => {
    if (!series.length) return;
    ctx.beginPath();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    let last = -1;
    for (let c = 0; c < w; c++) {
      const i = n === 1 ? 0 : index(c);
      if (i === last && c !== w - 1) continue;
      last = i;
      const x = n === 1 ? w : c;
      const v = Number.isFinite(series[i]) ? series[i] : top;
      const y = h - 2 - (v / top) * (h - 4);
      if (c === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    }
    ctx.stroke();
  };
  line(test, "#777");
  line(train, "#000");
}

/** The gradient heatmap: one row per layer (input side on top), epochs binned across. */
export function drawGradientHeatmap(canvas, norms, layers) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const n = norms.length;
  if (n === 0 || layers === 0) return;
  const cols = Math.min(w, n);
  const logs = new Float32Array(cols * layers);
  let lo = Infinity;
  let hi = -Infinity;
  for (let c = 0; c < cols; c++) {
    const start = Math.floor((c * n) / cols);
    const end = Math.max(start + 1, Math.floor(((c + 1) * n) / cols));
    for (let l = 0; l < layers; l++) {
      let sum = 0;
      for (let e = start; e < end; e++) sum += norms[e][l];
      const v = Math.log10(sum / (end - start) + 1e-12);
      logs[l * cols + c] = v;
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  const span = hi > lo ? hi - lo : 1;
  paintGrid(canvas, layers, cols, (i) => {
    const v = logs[i];
    return Number.isFinite(v) ? sequential((v - lo) / span) : [0, 0, 0];
  }, false);
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.font = "10px sans-serif";
  ctx.fillText(`10^${lo.toFixed(1)} … 10^${hi.toFixed(1)}`, 4, h - 4);
}

/** The sweep heatmap: rows = learning rates, columns = seeds, colour = log test loss. */
export function drawSweepHeatmap(canvas, result) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width;
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const rates = result.learningRates;
  const losses = result.testLoss;
  const seeds = result.seeds;
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of losses) {
    for (const v of row) {
      if (Number.isFinite(v) && v > 0) {
        lo = Math.min(lo, Math.log10(v));
        hi = Math.max(hi, Math.log10(v));
      }
    }
  }
  if (!Number.isFinite(lo)) {
    lo = 0;
    hi = 1;
  }
  const span = hi > lo ? hi - lo : 1;
  const left = 52;
  const cw = (w - left) / seeds;
  const ch = (h - 14) / rates.length;
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "middle";
  for (let r = 0; r < rates.length; r++) {
    ctx.fillStyle = "#333";
    ctx.fillText(String(rates[r]), 2, 14 + (r + 0.5) * ch);
    for (let s = 0; s < seeds; s++) {
      const v = losses[r][s];
      const bad = (result.diverged && result.diverged[r] && result.diverged[r][s]) || !Number.isFinite(v);
      const t = bad ? 1 : 1 - (Math.log10(Math.max(v, 1e-12)) - lo) / span;
      ctx.fillStyle = bad ? "#444" : rgb(sequential(t));
      ctx.fillRect(left + s * cw + 1, 14 + r * ch + 1, cw - 2, ch - 2);
      ctx.fillStyle = bad ? "#fff" : t > 0.6 ? "#fff" : "#000";
      ctx.textAlign = "center";
      ctx.fillText(bad ? "×" : v.toFixed(3), left + (s + 0.5) * cw, 14 + (r + 0.5) * ch);
      ctx.textAlign = "start";
    }
  }
  ctx.fillStyle = "#333";
  ctx.fillText("lr \\ seed", 2, 6);
  for (let s = 0; s < seeds; s++) {
    ctx.textAlign = "center";
    ctx.fillText(String(s), left + (s + 0.5) * cw, 6);
    ctx.textAlign = "start";
  }
}

// Illustrative thumbnails of the datasets (drawn here, like the TF Playground's
// dataset buttons; the data trained on always comes from the server).
function thumbnailPoints(name) {
  let seed = 7;
  const rand = () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
  const u = (a, b) => a + (b - a) * rand();
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const points = [];
  for (let i = 0; i < 120; i++) {
    let x = 0;
    let y = 0;
    let v = 0;
    if (name === "circle") {
      const inner = i % 2 === 0;
      const r = inner ? u(0, 2) : u(3.5, 5);
      const t = u(0, 2 * Math.PI);
      [x, y, v] = [r * Math.cos(t), r * Math.sin(t), inner ? 1 : -1];
    } else if (name === "xor") {
      [x, y] = [u(-5, 5), u(-5, 5)];
      v = x * y >= 0 ? 1 : -1;
    } else if (name === "gaussian") {
      v = i % 2 === 0 ? 1 : -1;
      [x, y] = [2 * v + normal(), 2 * v + normal()];
    } else if (name === "spiral") {
      const n = i >> 1;
      v = i % 2 === 0 ? 1 : -1;
      const r = (n / 60) * 5;
      const t = (1.75 * n / 60) * 2 * Math.PI + (v > 0 ? 0 : Math.PI);
      [x, y] = [r * Math.sin(t), r * Math.cos(t)];
    } else if (name === "linear") {
      [x, y] = [u(-5, 5), u(-5, 5)];
      v = x + y >= 0 ? 1 : -1;
    } else if (name === "moons") {
      v = i % 2 === 0 ? 1 : -1;
      const t = u(0, Math.PI);
      [x, y] = v > 0 ? [3 * Math.cos(t) - 1.5, 3 * Math.sin(t) - 1] : [3 - 3 * Math.cos(t) - 1.5, 1 - 3 * Math.sin(t) + 0.5];
    } else if (name === "plane") {
      [x, y] = [u(-5, 5), u(-5, 5)];
      v = (x + y) / 10;
    } else if (name === "multi_gaussian") {
      [x, y] = [u(-5, 5), u(-5, 5)];
      v = Math.exp(-((x - 2) ** 2 + (y - 2) ** 2) / 4) - Math.exp(-((x + 2) ** 2 + (y + 2) ** 2) / 4);
    } else {
      return null;
    }
    points.push([x, y, v]);
  }
  return points;
}

/** Draws a dataset's thumbnail; false if the name has none. */
export function drawThumbnail(canvas, name) {
  const points = thumbnailPoints(name);
  if (!points) return false;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#f7f7f7";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (const [x, y, v] of points) {
    ctx.beginPath();
    ctx.arc(((x + 6) / 12) * canvas.width, ((6 - y) / 12) * canvas.height, 1.6, 0, 2 * Math.PI);
    ctx.fillStyle = rgb(diverging(v));
    ctx.fill();
  }
  return true;
}
