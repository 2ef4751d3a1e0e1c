// Collection: a page of thumbnails (about 100), filtered by folder; the state lives in the URL.
"use strict";

const PAGE = 100;
const folderSelect = document.getElementById("folder");
const grid = document.getElementById("grid");

function state() {
  const query = new URLSearchParams(location.search);
  return { folder: query.get("folder"), page: Math.max(0, parseInt(query.get("page") || "0", 10) || 0) };
}

function go(folder, page) {
  const query = new URLSearchParams();
  if (folder !== null && folder !== undefined) query.set("folder", folder);
  if (page) query.set("page", page);
  history.pushState(null, "", `/collection${query.toString() ? "?" + query : ""}`);
  show();
}

async function show() {
  const { folder, page } = state();
  folderSelect.value = folder === null ? "" : `=${folder}`;
  const query = new URLSearchParams({ offset: page * PAGE, limit: PAGE });
  if (folder !== null) query.set("folder", folder);
  const data = await viewer.json(`/api/images?${query}`);
  const last = Math.max(0, Math.ceil(data.total / PAGE) - 1);
  document.getElementById("range").textContent = data.total
    ? `${data.offset + 1}–${data.offset + data.images.length} of ${data.total}` : "no images";
  document.getElementById("previous").disabled = page <= 0;
  document.getElementById("next").disabled = page >= last;
  // An image fetched from a IIIF manifest is captioned by its canvas's label (its file and canvas in the title).
  const caption = (image) => image.canvas ? (image.canvas.label || image.path) : image.path;
  const title = (image) => image.canvas ? `${image.path}\n${image.canvas.manifest_label}: ${image.canvas.canvas}` : image.path;
  grid.replaceChildren(...data.images.map((image) => viewer.el("a", { class: "tile", href: `/image/${image.id}`, title: title(image) },
    viewer.el("img", { src: `/picture/thumb/${image.id}.jpg`, alt: image.path, loading: "lazy", width: 150, height: 120 }),
    viewer.el("div", { class: "caption" }, caption(image)))));
}

(async () => {
  const info = await viewer.header("collection");
  for (const folder of info.folders) {
    // "=" marks a folder value, so the folder named "" (images directly in the indexed folder) differs from "all".
    folderSelect.append(viewer.el("option", { value: `=${folder.name}` }, `${folder.name || "(top level)"} — ${folder.count}`));
  }
  folderSelect.addEventListener("change", () => go(folderSelect.value ? folderSelect.value.slice(1) : null, 0));
  document.getElementById("previous").addEventListener("click", () => go(state().folder, state().page - 1));
  document.getElementById("next").addEventListener("click", () => go(state().folder, state().page + 1));
  window.addEventListener("popstate", show);
  await show();
  document.body.dataset.ready = "1";
})();
