// Discovery: the patterns of the last discovery (run here, or a `segswap discover --json` file, of either
// design). The repeated patterns come first, in the file's order, each a strip of crops of where it lies
// that opens to show its images with the region outlined; then the groups of near-identical images, folded.
"use strict";

const STRIP = 12;     // crops in a closed pattern's strip
const statusLine = document.getElementById("status");
const designSelect = document.getElementById("design");

// A file written before patterns had a kind (spectral) holds repeats only.
const isGroup = (found) => found.kind === "near-duplicates";
const folded = (image) => image.near_duplicates || [];
const fileName = (path) => path.split("/").pop();

function member(image) {
  if (image.id === null) return viewer.el("span", { class: "muted" }, `${image.path} (not in the index)`);
  const canvas = viewer.el("canvas", { width: 220, height: 165 });
  viewer.loadImage(`/picture/thumb/${image.id}.jpg`).then((thumb) => {
    const s = Math.min(220 / thumb.width, 165 / thumb.height);
    canvas.width = Math.round(thumb.width * s);
    canvas.height = Math.round(thumb.height * s);
    const context = canvas.getContext("2d");
    context.drawImage(thumb, 0, 0, canvas.width, canvas.height);
    if (!image.box) return;   // a near-identical image folded into another: no region of its own
    return viewer.json(`/api/images/${image.id}`).then((record) => {
      const k = canvas.width / record.width, [x0, y0, x1, y1] = image.box;
      context.strokeStyle = "rgb(40, 220, 60)";
      context.lineWidth = 2;
      context.strokeRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
    });
  });
  // An image fetched from a IIIF manifest: its canvas's label, and the region in canvas coordinates.
  const name = image.canvas ? `${image.canvas.label || fileName(image.path)} (${image.canvas.manifest_label})` : fileName(image.path);
  const others = folded(image);
  return viewer.el("a", { href: `/image/${image.id}`, title: image.canvas ? image.canvas.target : image.path }, canvas,
    viewer.el("div", {}, name), image.canvas && image.canvas.xywh ? viewer.el("div", { class: "muted" }, `xywh=${image.canvas.xywh.join(",")}`) : "",
    others.length ? viewer.el("div", { class: "muted near", title: others.map(fileName).join("\n") }, `+${others.length} near-identical`) : "");
}

function pattern(found, number) {
  const crops = found.images.filter((image) => image.id !== null).slice(0, STRIP).map((image) => {
    const note = folded(image).length ? ` (+${folded(image).length} near-identical)` : "";
    return viewer.el("img", { src: `/crop/${image.id}.jpg?box=${image.box.join(",")}`, alt: image.path, title: image.path + note, loading: "lazy" });
  });
  const extra = found.images.reduce((n, image) => n + folded(image).length, 0);
  const evidence = found.nodes !== undefined ? `${found.nodes} correspondences` : `${found.edges} verified edges`;
  const node = viewer.el("section", { class: "pattern", "data-number": number },
    viewer.el("div", { class: "head" }, viewer.el("strong", {}, `Pattern ${number}`),
      ` — ${found.images.length} images${extra ? ` (+${extra} near-identical)` : ""}, ${evidence}, strength ${found.strength.toFixed(1)} `,
      viewer.el("span", { class: "muted" }, "(click to open)")),
    viewer.el("div", { class: "strip" }, ...crops),
    viewer.el("div", { class: "members" }));
  node.querySelector(".head").addEventListener("click", () => {
    const members = node.querySelector(".members");
    if (!members.childElementCount) members.append(...found.images.map(member));
    node.classList.toggle("open");
  });
  return node;
}

// A group of near-identical images, folded: opened, each of its images (the first with its region).
function group(found) {
  const images = found.images.flatMap((image) => [{ ...image, near_duplicates: [] },
    ...folded(image).map((path, k) => ({ path, id: (image.near_duplicate_ids || [])[k] ?? null, box: null }))]);
  const members = viewer.el("div", { class: "members" });
  const node = viewer.el("details", { class: "pattern group" },
    viewer.el("summary", { class: "head" }, viewer.el("strong", {}, `Near-identical images: ${images.length}`),
      ` — strength ${found.strength.toFixed(1)} `, viewer.el("span", { class: "muted" }, "(click to open)")),
    members);
  node.addEventListener("toggle", () => {
    if (node.open && !members.childElementCount) members.append(...images.map(member));
  });
  return node;
}

async function show() {
  const { result, running } = await viewer.json("/api/discovery");
  const container = document.getElementById("patterns");
  if (!result) {
    document.getElementById("summary").textContent = "No discovery yet: run one here, or start the viewer with --discovery FILE " +
      "(the output of `segswap discover --json FILE`).";
    container.replaceChildren();
  } else {
    const repeats = result.patterns.filter((found) => !isGroup(found)), groups = result.patterns.filter(isGroup);
    const how = result.design === "regions" ? `regions: ${result.pairs} pairs judged, ${result.edges} verified edges`
      : `spectral: ${result.pairs} pairs, ${result.nodes} correspondences`;
    document.getElementById("summary").textContent = `${repeats.length} repeated patterns and ${groups.length} groups of ` +
      `near-identical images in ${result.images} images (${how}), from ${result.source}`;
    container.replaceChildren(...repeats.map((found, k) => pattern(found, k + 1)), ...groups.map(group));
  }
  document.body.dataset.ready = "1";
  return running;
}

async function run(job) {
  const button = document.getElementById("run");
  button.disabled = true;
  job = await viewer.follow(job, (j) => viewer.progress(statusLine, j));
  button.disabled = false;
  if (job.state === "done") {
    statusLine.textContent = `done in ${job.seconds} s: ${job.result.repeats} repeated patterns, ` +
      `${job.result.near_duplicates} groups of near-identical images`;
  }
  await show();
}

(async () => {
  const info = await viewer.header("discovery");
  designSelect.append(...info.designs.map((design) => viewer.el("option", { value: design }, design)));
  const evidence = document.getElementById("min-evidence-option");
  designSelect.addEventListener("change", () => { evidence.hidden = designSelect.value !== "regions"; });
  document.getElementById("run").addEventListener("click", async () => {
    // Empty neighbours: the design's own default, as `segswap discover`; min evidence is the regions design's.
    const body = { design: designSelect.value }, topK = parseInt(document.getElementById("top-k").value, 10);
    if (topK > 0) body.top_k = topK;
    if (!evidence.hidden) body.min_evidence = parseFloat(document.getElementById("min-evidence").value) || 1;
    statusLine.classList.remove("error");
    try { await run(await viewer.post("/api/discover", body)); }
    catch (error) { statusLine.textContent = error.message; statusLine.classList.add("error"); }
  });
  const running = await show();
  if (running) await run(running);   // a discovery started before this page was opened
})();
