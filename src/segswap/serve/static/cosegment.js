// Co-segmentation: each group's images with their masks laid over (toggle), and a per-image
// "mark wrong" that the server saves beside the index.
"use strict";

function figure(entry) {
  const layers = viewer.el("div", { class: "layers" });
  if (entry.id !== null) layers.append(viewer.el("img", { src: `/picture/thumb/${entry.id}.jpg`, alt: entry.name, loading: "lazy" }));
  else layers.append(viewer.el("div", { class: "muted", style: "height: 160px; width: 160px" }, "not in the index"));
  if (entry.has_mask && entry.id !== null) layers.append(viewer.el("img", { class: "mask", src: `/cosegment/overlay/${entry.key}.png`, alt: "" }));
  const button = viewer.el("button", {}, entry.wrong ? "Wrong ✓" : "Mark wrong");
  const node = viewer.el("figure", { class: entry.wrong ? "wrong" : "", "data-key": entry.key }, layers,
    viewer.el("figcaption", {}, viewer.el("span", { title: entry.name }, entry.name + (entry.fallback ? " (fallback)" : "")), button));
  button.addEventListener("click", async () => {
    const wrong = !node.classList.contains("wrong");
    button.disabled = true;
    try {
      await viewer.post("/api/cosegment/mark", { key: entry.key, wrong });
      node.classList.toggle("wrong", wrong);
      button.textContent = wrong ? "Wrong ✓" : "Mark wrong";
    } catch (error) { button.textContent = error.message; }
    button.disabled = false;
  });
  return node;
}

(async () => {
  await viewer.header("cosegment");
  const data = await viewer.json("/api/cosegment");
  const summary = document.getElementById("summary");
  if (!data.folder) {
    summary.textContent = "No co-segmentation shown: run `segswap cosegment DIR --out OUT`, then start the viewer with --cosegment OUT.";
  } else {
    const count = data.groups.reduce((n, group) => n + group.images.length, 0);
    summary.textContent = `${count} masks (${data.method}) from ${data.folder}; marks are saved to ${data.overrides}`;
  }
  document.getElementById("groups").replaceChildren(...data.groups.map((group) =>
    viewer.el("section", {}, viewer.el("h2", {}, `${group.name} — ${group.images.length} images`),
      viewer.el("div", { class: "coseg" }, ...group.images.map(figure)))));
  const toggle = document.getElementById("show-masks");
  toggle.addEventListener("change", () => document.body.classList.toggle("hide-masks", !toggle.checked));
  document.body.dataset.ready = "1";
})();
