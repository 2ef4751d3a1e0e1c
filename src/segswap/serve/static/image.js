// Image: the picture large; a box drawn on it (or the whole image) is searched in the background;
// results ranked with their verdict and matched region; one result side by side with the query.
"use strict";

const imageId = parseInt(location.pathname.split("/").pop(), 10);
const picture = document.getElementById("picture");
const overlay = document.getElementById("boxes");
const statusLine = document.getElementById("status");
const hitsList = document.getElementById("hits");
const THUMB = 120;           // result thumbnails, px wide
const PAIR_HEIGHT = 360;     // each image of the side-by-side view, px high
const REGION = "rgba(40, 220, 60, 0.35)", OUTLINE = "rgb(40, 220, 60)", QUERY_BOX = "rgb(31, 111, 235)";
const GUESSED_BOX = ["keypoint inliers", "template", "pair flow"];   // box_from values that are best guesses, drawn dashed
let image = null;            // this image's record: id, path, width, height
let box = null;              // the query box in the image's own pixels, or null for the whole image
let currentJob = 0;          // the search whose answers the page shows; older ones are dropped
let lastResult = null;

// -- drawing the query box ----------------------------------------------------------------------------
function scale() { return image.width / overlay.width; }  // image pixels per overlay pixel

function fitOverlay() {
  // As large as half the window allows (small images too: a box is easier to draw on them enlarged).
  const k = Math.min(Math.min(innerWidth * 0.5, 800) / picture.naturalWidth, (innerHeight * 0.75) / picture.naturalHeight);
  picture.style.width = `${Math.round(picture.naturalWidth * k)}px`;
  picture.style.height = `${Math.round(picture.naturalHeight * k)}px`;
  overlay.width = picture.clientWidth;
  overlay.height = picture.clientHeight;
  drawBox(box && box.map((v) => v / scale()));
}

function drawBox(rect) {
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  if (!rect) return;
  const [x0, y0, x1, y1] = rect;
  context.fillStyle = "rgba(0, 0, 0, 0.35)";   // dim what is outside the detail
  context.fillRect(0, 0, overlay.width, overlay.height);
  context.clearRect(x0, y0, x1 - x0, y1 - y0);
  context.strokeStyle = QUERY_BOX;
  context.lineWidth = 2;
  context.strokeRect(x0, y0, x1 - x0, y1 - y0);
}

function pointer(event) {
  const bounds = overlay.getBoundingClientRect();
  return [Math.min(Math.max(event.clientX - bounds.left, 0), overlay.width),
          Math.min(Math.max(event.clientY - bounds.top, 0), overlay.height)];
}

let dragStart = null;
overlay.addEventListener("mousedown", (event) => { dragStart = pointer(event); event.preventDefault(); });
window.addEventListener("mousemove", (event) => {
  if (!dragStart) return;
  const [x, y] = pointer(event);
  drawBox([Math.min(dragStart[0], x), Math.min(dragStart[1], y), Math.max(dragStart[0], x), Math.max(dragStart[1], y)]);
});
window.addEventListener("mouseup", (event) => {
  if (!dragStart) return;
  const [x, y] = pointer(event);
  const rect = [Math.min(dragStart[0], x), Math.min(dragStart[1], y), Math.max(dragStart[0], x), Math.max(dragStart[1], y)];
  dragStart = null;
  if (rect[2] - rect[0] < 6 || rect[3] - rect[1] < 6) { drawBox(box && box.map((v) => v / scale())); return; }  // a click
  box = rect.map((v) => Math.round(v * scale()));
  drawBox(rect);
  search();
});

// -- the search ---------------------------------------------------------------------------------------
async function search() {
  document.getElementById("pair").hidden = true;
  hitsList.replaceChildren();
  delete hitsList.dataset.count;
  let job;
  try {
    job = await viewer.post("/api/search", { image: imageId, box, top: 12 });
  } catch (error) { statusLine.textContent = error.message; statusLine.classList.add("error"); return; }
  currentJob = job.id;
  const cancel = document.getElementById("cancel");
  cancel.disabled = false;
  cancel.onclick = () => fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
  job = await viewer.follow(job, (j) => viewer.progress(statusLine, j), () => currentJob === job.id);
  if (currentJob !== job.id) return;           // a newer search took over
  cancel.disabled = true;
  if (job.state === "done") showHits(job.result);
}

function verdictBadge(hit) {
  const [kind, text] = hit.match === true ? ["match", "match"] : hit.match === false ? ["nomatch", "no match"] : ["none", "ranked"];
  return viewer.el("span", { class: `verdict ${kind}` }, text);
}

async function showHits(result) {
  lastResult = result;
  const what = result.box ? `the detail ${result.box.join(",")}` : "the whole image";
  const threshold = (result.threshold === null ? "no calibrated threshold: a ranking only"
    : `match from ${(100 * result.threshold).toFixed(1)} % of the query matched (${result.threshold_source})`)
    + (result.inlier_threshold ? ` or ${result.inlier_threshold} keypoint inliers` : "");
  statusLine.classList.remove("error");
  statusLine.textContent = `${result.hits.length} best of ${result.shortlisted} shortlisted for ${what}; ${threshold}`;
  hitsList.replaceChildren(...result.hits.map((hit, k) => {
    const canvas = viewer.el("canvas", { width: THUMB, height: THUMB });
    const item = viewer.el("li", { class: "hit", "data-id": hit.id, onclick: () => showPair(hit, item) }, canvas,
      viewer.el("div", { class: "about" },
        viewer.el("div", {}, viewer.el("span", { class: "rank" }, `#${k + 1} `), verdictBadge(hit),
          hit.id === result.query ? viewer.el("span", { class: "muted" }, " (the query image)") : ""),
        viewer.el("div", {}, `score ${hit.score.toFixed(2)}` + (hit.matched === null ? "" : ` · ${(100 * hit.matched).toFixed(1)} % of the query matched`)
          + (hit.inliers === null || hit.inliers === undefined ? "" : ` · ${hit.inliers} keypoint inliers`)
          + (hit.match && hit.decided_by && hit.decided_by.length ? ` (by ${hit.decided_by.join(" + ")})` : "")),
        viewer.el("div", { class: "muted" }, viewer.el("a", { href: `/image/${hit.id}`, onclick: (e) => e.stopPropagation() }, hit.path)),
        hit.canvas ? viewer.el("div", { class: "muted canvas" }, canvasText(hit.canvas)) : ""));
    drawHit(canvas, hit);
    return item;
  }));
  hitsList.dataset.count = result.hits.length;
}

async function drawHit(canvas, hit) {
  const thumb = await viewer.loadImage(`/picture/thumb/${hit.id}.jpg`);
  const s = Math.min(THUMB / thumb.width, THUMB / thumb.height);
  canvas.width = Math.round(thumb.width * s);
  canvas.height = Math.round(thumb.height * s);
  const context = canvas.getContext("2d");
  context.drawImage(thumb, 0, 0, canvas.width, canvas.height);
  viewer.drawCells(context, hit.mask, 0, 0, canvas.width, canvas.height, REGION);
  if (hit.box) {
    const k = canvas.width / hit.width;
    context.strokeStyle = OUTLINE;
    context.lineWidth = 2;
    // a best guess (evidence under its threshold) is dashed, a box the evidence decided is solid
    context.setLineDash(GUESSED_BOX.includes(hit.box_from) ? [5, 4] : []);
    context.strokeRect(hit.box[0] * k, hit.box[1] * k, (hit.box[2] - hit.box[0]) * k, (hit.box[3] - hit.box[1]) * k);
    canvas.dataset.region = hit.box.join(",");
  }
}

// -- side by side ------------------------------------------------------------------------------------
let pair = null;   // {data, query, target, hit}

async function showPair(hit, item) {
  for (const other of hitsList.children) other.classList.toggle("selected", other === item);
  const section = document.getElementById("pair");
  section.hidden = false;
  document.getElementById("pair-title").textContent = `The query and #${[...hitsList.children].indexOf(item) + 1}, ${hit.path}`;
  const status = document.getElementById("pair-status");
  status.textContent = "matching…";
  const query = new URLSearchParams({ query: imageId, target: hit.id });
  if (lastResult.box) query.set("box", lastResult.box.join(","));
  try {
    const [data, queryPicture, targetPicture] = await Promise.all([viewer.json(`/api/pair?${query}`),
      viewer.loadImage(`/picture/view/${imageId}.jpg`), viewer.loadImage(`/picture/view/${hit.id}.jpg`)]);
    pair = { data, queryPicture, targetPicture, hit };
    status.textContent = `${data.lines.length} confident correspondences both ways`;
    drawPair();
  } catch (error) { status.textContent = error.message; }
}

function drawPair() {
  if (!pair) return;
  const { data, queryPicture, targetPicture, hit } = pair;
  const canvas = document.getElementById("pair-canvas");
  const gap = 24;
  const wq = (queryPicture.width * PAIR_HEIGHT) / queryPicture.height, wt = (targetPicture.width * PAIR_HEIGHT) / targetPicture.height;
  canvas.width = Math.round(wq + gap + wt);
  canvas.height = PAIR_HEIGHT;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(queryPicture, 0, 0, wq, PAIR_HEIGHT);
  context.drawImage(targetPicture, wq + gap, 0, wt, PAIR_HEIGHT);
  const kq = wq / image.width, kt = wt / hit.width;       // own pixels → canvas
  const [bx0, by0, bx1, by1] = data.box || [0, 0, image.width, image.height];
  const showMasks = document.getElementById("show-masks").checked;
  const showLines = document.getElementById("show-lines").checked;
  if (showMasks) {
    viewer.drawCells(context, data.mask_query, bx0 * kq, by0 * kq, (bx1 - bx0) * kq, (by1 - by0) * kq, "rgba(255, 60, 200, 0.4)");
    viewer.drawCells(context, data.mask_target, wq + gap, 0, wt, PAIR_HEIGHT, "rgba(255, 60, 200, 0.4)");
  }
  if (data.box) {
    context.strokeStyle = QUERY_BOX;
    context.lineWidth = 2;
    context.strokeRect(bx0 * kq, by0 * kq, (bx1 - bx0) * kq, (by1 - by0) * kq);
  }
  if (showLines) {
    context.lineWidth = 1.2;
    data.lines.forEach(([xq, yq, xt, yt], k) => {
      context.strokeStyle = `hsl(${(k * 47) % 360}, 85%, 50%)`;
      context.beginPath();
      context.moveTo(xq * kq, yq * kq);
      context.lineTo(wq + gap + xt * kt, yt * kt);
      context.stroke();
    });
  }
  canvas.dataset.masks = showMasks ? "shown" : "hidden";
  canvas.dataset.lines = showLines ? String(data.lines.length) : "hidden";
}

// A IIIF canvas as a line: its label, its manifest's, its id, and the region in canvas coordinates.
function canvasText(canvas) {
  const region = canvas.xywh ? ` xywh=${canvas.xywh.join(",")}` : "";
  return `canvas ${canvas.label || "(no label)"} of ${canvas.manifest_label || canvas.manifest}: ${canvas.canvas}${region}`;
}

document.getElementById("show-lines").addEventListener("change", drawPair);
document.getElementById("show-masks").addEventListener("change", drawPair);

// -- start ------------------------------------------------------------------------------------------
(async () => {
  await viewer.header(null);
  image = await viewer.json(`/api/images/${imageId}`);
  document.title = `${image.path} — segswap`;
  document.getElementById("path").textContent = `${image.path} (${image.width}×${image.height})`
    + (image.canvas ? ` — ${canvasText(image.canvas)}` : "");
  for (const [id, link] of [[image.previous, "previous"], [image.next, "next"]]) {
    const anchor = document.getElementById(link);
    if (id === null) anchor.hidden = true; else anchor.href = `/image/${id}`;
  }
  document.getElementById("whole").addEventListener("click", () => { box = null; drawBox(null); search(); });
  picture.addEventListener("load", () => { fitOverlay(); document.body.dataset.ready = "1"; });
  window.addEventListener("resize", fitOverlay);
  picture.src = `/picture/view/${imageId}.jpg`;
  picture.alt = image.path;
})();
