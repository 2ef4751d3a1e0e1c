// Discovery: the patterns of the last discovery (run here, or a `segswap discover --json` file), each a
// strip of crops of where it lies; a pattern opens to show its images with the region outlined.
"use strict";

const STRIP = 12;     // crops in a closed pattern's strip
const statusLine = document.getElementById("status");

function member(image) {
  if (image.id === null) return viewer.el("span", { class: "muted" }, `${image.path} (not in the index)`);
  const canvas = viewer.el("canvas", { width: 220, height: 165 });
  viewer.loadImage(`/picture/thumb/${image.id}.jpg`).then((thumb) => {
    const s = Math.min(220 / thumb.width, 165 / thumb.height);
    canvas.width = Math.round(thumb.width * s);
    canvas.height = Math.round(thumb.height * s);
    const context = canvas.getContext("2d");
    context.drawImage(thumb, 0, 0, canvas.width, canvas.height);
    return viewer.json(`/api/images/${image.id}`).then((record) => {
      const k = canvas.width / record.width, [x0, y0, x1, y1] = image.box;
      context.strokeStyle = "rgb(40, 220, 60)";
      context.lineWidth = 2;
      context.strokeRect(x0 * k, y0 * k, (x1 - x0) * k, (y1 - y0) * k);
    });
  });
  // An image fetched from a IIIF manifest: its canvas's label, and the region in canvas coordinates.
  const name = image.canvas ? `${image.canvas.label || image.path.split("/").pop()} (${image.canvas.manifest_label})` : image.path.split("/").pop();
  return viewer.el("a", { href: `/image/${image.id}`, title: image.canvas ? image.canvas.target : image.path }, canvas,
    viewer.el("div", {}, name), image.canvas && image.canvas.xywh ? viewer.el("div", { class: "muted" }, `xywh=${image.canvas.xywh.join(",")}`) : "");
}

function pattern(found, number) {
  const crops = found.images.filter((image) => image.id !== null).slice(0, STRIP).map((image) =>
    viewer.el("img", { src: `/crop/${image.id}.jpg?box=${image.box.join(",")}`, alt: image.path, title: image.path, loading: "lazy" }));
  const node = viewer.el("section", { class: "pattern", "data-number": number },
    viewer.el("div", { class: "head" }, viewer.el("strong", {}, `Pattern ${number}`),
      ` — ${found.images.length} images, ${found.nodes} correspondences, strength ${found.strength.toFixed(1)} `,
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

async function show() {
  const { result, running } = await viewer.json("/api/discovery");
  const container = document.getElementById("patterns");
  if (!result) {
    document.getElementById("summary").textContent = "No discovery yet: run one here, or start the viewer with --discovery FILE " +
      "(the output of `segswap discover --json FILE`).";
    container.replaceChildren();
  } else {
    document.getElementById("summary").textContent = `${result.patterns.length} repeated patterns in ${result.images} images ` +
      `(${result.pairs} pairs, ${result.nodes} correspondences), from ${result.source}`;
    container.replaceChildren(...result.patterns.map((found, k) => pattern(found, k + 1)));
  }
  document.body.dataset.ready = "1";
  return running;
}

async function run(job) {
  const button = document.getElementById("run");
  button.disabled = true;
  job = await viewer.follow(job, (j) => viewer.progress(statusLine, j));
  button.disabled = false;
  if (job.state === "done") statusLine.textContent = `done in ${job.seconds} s: ${job.result.patterns} patterns`;
  await show();
}

(async () => {
  await viewer.header("discovery");
  document.getElementById("run").addEventListener("click", async () => {
    const topK = parseInt(document.getElementById("top-k").value, 10) || 5;
    try { await run(await viewer.post("/api/discover", { top_k: topK })); }
    catch (error) { statusLine.textContent = error.message; statusLine.classList.add("error"); }
  });
  const running = await show();
  if (running) await run(running);   // a discovery started before this page was opened
})();
