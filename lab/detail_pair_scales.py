"""The pair model at finer scales for detail queries (issue 39 item 0; measured beside rule G1, not shipped).

    .venv/bin/python lab/detail_pair_scales.py W/details_dev 1,2,3 region   # boxes from the matched region
    .venv/bin/python lab/detail_pair_scales.py W/details_dev 1,2,3 carry    # the query box carried by the flow

Every image's features at long side factor × the model's size, the query box cut at the same scale
(search.query_pixels); each query against every other image; box found at IoU ≥ 0.5 / 0.3 and mAP of the
top 10 by the pair score.
"""
import sys, time, numpy as np, torch
from pathlib import Path
import segswap
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.collection.search import query_pixels, landed_cells, region_box
from segswap.models.outputs import cycle_consistent_mask, similarity_score
from segswap.evaluation.details import average_precision, read_detail_truth
from segswap.grid import box_iou
MODE = sys.argv[3]; root = Path(sys.argv[1]); factors = [float(f) for f in sys.argv[2].split(",")]
queries = read_detail_truth(root)
names = sorted(p.name for p in (root/"images").iterdir())
rgbs = {n: load_image(root/"images"/n) for n in names}
m = segswap.load()
print("size", m.size)
torch.set_num_threads(2)
for f in factors:
    L = int(m.size * f)
    t0 = time.perf_counter()
    feats = {n: m.features(pixels_to_tensor(resize_for_model(rgbs[n], L)))[0] for n in names}
    t_feat = (time.perf_counter()-t0)/len(names)
    ok, aps = [], []
    t0 = time.perf_counter()
    for q in queries:
        qf = m.features(pixels_to_tensor(query_pixels(rgbs[q.image], q.box, L)))[0]
        scored = []
        for n in names:
            if n == q.image: continue
            out = m.predict(qf[None], feats[n][None])
            ma, mb, fab, fba = (out[k][0] for k in ("mask_a","mask_b","flow_ab","flow_ba"))
            region = cycle_consistent_mask(mb[None], ma[None], fba[None])[0].numpy()
            region = region * landed_cells(fab.numpy(), fba.numpy(), ma.numpy(), region.shape)
            size = (rgbs[n].shape[1], rgbs[n].shape[0])
            fl = fab.numpy().reshape(-1, 2); w8 = ma.numpy().reshape(-1)
            cx, cy = np.median(fl[w8 > 0.5], axis=0) if (w8 > 0.5).sum() >= 2 else np.median(fl, axis=0)
            k = max(size) / max(rgbs[q.image].shape[:2])
            bw, bh = (q.box[2]-q.box[0]) * k, (q.box[3]-q.box[1]) * k
            carried = (cx*size[0]-bw/2, cy*size[1]-bh/2, cx*size[0]+bw/2, cy*size[1]+bh/2)
            scored.append((float(similarity_score(out["mask_a"], out["mask_b"], out["flow_ab"], qf[None], feats[n][None])[0]), n, carried if MODE == 'carry' else region_box(region, size)))
        scored.sort(key=lambda t: -t[0])
        aps.append(average_precision([n for _, n, _ in scored[:10]], {t[0] for t in q.targets}))
        for image, tb, kind in q.targets:
            s = next(x for x in scored if x[1] == image)
            ok.append((kind, s[2] is not None and box_iou(s[2], tb) >= 0.5, s[2] is not None and box_iou(s[2], tb) >= 0.3))
    t_q = (time.perf_counter()-t0)/len(queries)
    print(f"factor {f} L {L}: box@0.5 {np.mean([o[1] for o in ok]):.3f} box@0.3 {np.mean([o[2] for o in ok]):.3f} "
          f"mAP {np.mean(aps):.3f} feat {t_feat:.3f}s query {t_q:.2f}s", {k: round(np.mean([o[1] for o in ok if o[0]==k]),3) for k in ("copy","light","depiction")}, flush=True)
