// Load a Web Annotation page as IIIF viewers built on IIIF Commons' parser do (Clover, Universal Viewer 4's
// vault): normalize it into the entity store, then expand each annotation's targets into canvas regions.
import { readFileSync } from "node:fs";
import { normalize } from "@iiif/parser";
import { expandTarget } from "@iiif/helpers";

const page = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { resource, entities, mapping } = normalize(page);
const out = { page: resource.id, type: resource.type, annotations: [] };
for (const ref of entities.AnnotationPage[resource.id].items) {
  const annotation = entities.Annotation[ref.id];
  const targets = (Array.isArray(annotation.target) ? annotation.target : [annotation.target]).map((t) => {
    const expanded = expandTarget(t);
    return { source: expanded.source.id, sourceType: expanded.source.type, selector: expanded.selector };
  });
  const bodies = annotation.body.map((b) => entities.ContentResource[b.id] || b);
  out.annotations.push({ id: annotation.id, motivation: annotation.motivation, targets, bodies });
}
console.log(JSON.stringify(out));
