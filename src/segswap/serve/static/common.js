// segswap viewer: what every page shares. Plain JS, no build step.
"use strict";

const viewer = {
  async json(url, options = {}) {
    const response = await fetch(url, options);
    const data = await response.json().catch(() => ({ error: response.statusText }));
    // A value the API refuses by its type or range (422): "min_evidence: Input should be greater than 0".
    const refused = Array.isArray(data.detail) ? data.detail.map((d) => `${(d.loc || []).slice(-1)}: ${d.msg}`).join("; ") : null;
    if (!response.ok) throw new Error(data.error || refused || response.statusText);
    return data;
  },

  post(url, body) {
    return viewer.json(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  },

  // The header: brand, the page links with the current one marked, the index and its size.
  async header(current) {
    const header = document.querySelector("header");
    const links = [["collection", "Collection"], ["discovery", "Discovery"], ["cosegment", "Co-segmentation"]];
    header.innerHTML = `<span class="brand">segswap</span><nav>${links.map(([page, label]) =>
      `<a href="/${page}" class="${page === current ? "current" : ""}">${label}</a>`).join("")}</nav><span class="where"></span>`;
    const info = await viewer.json("/api/info");
    header.querySelector(".where").textContent = `${info.images} images in ${info.root}`;
    return info;
  },

  el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== null && value !== undefined) node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  },

  // Poll a background job until it ends; `onProgress(job)` on each answer. Stops early when
  // `isCurrent()` turns false (a newer job replaced it). Resolves with the final job.
  async follow(job, onProgress, isCurrent = () => true) {
    while (isCurrent()) {
      onProgress(job);
      if (!["queued", "running"].includes(job.state)) return job;
      await new Promise((resolve) => setTimeout(resolve, 250));
      job = await viewer.json(`/api/jobs/${job.id}`);
    }
    return job;
  },

  // "re-ranking 32/100" and a progress bar for a job's state.
  progress(element, job) {
    element.classList.toggle("error", job.state === "failed");
    if (job.state === "failed") { element.textContent = job.error; return; }
    if (job.state === "cancelled") { element.textContent = "cancelled"; return; }
    if (job.state === "queued") { element.textContent = "waiting for the previous job…"; return; }
    const bar = job.total ? `<progress value="${job.done}" max="${job.total}"></progress> ${job.done}/${job.total}` : "";
    element.innerHTML = `${job.step || "starting"}… ${bar} <span class="muted">${job.seconds} s</span>`;
  },

  // The outline of a token-grid mask's cells above 0.5, tinted, on a canvas context; the image is
  // drawn at (x, y) with size (w, h).
  drawCells(context, mask, x, y, w, h, colour) {
    const rows = mask.length, cols = mask[0].length;
    context.fillStyle = colour;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      if (mask[r][c] > 0.5) context.fillRect(x + (c * w) / cols, y + (r * h) / rows, w / cols + 0.5, h / rows + 0.5);
    }
  },

  loadImage(src) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`could not load ${src}`));
      image.src = src;
    });
  },
};
