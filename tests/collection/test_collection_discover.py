import pytest

from segswap.collection.discover import default_clusters, discover
from segswap.collection.update import update_index
from segswap.errors import SegswapError


def inside(box, truth):
    """The fraction of ``box`` that lies inside ``truth``."""
    x0, y0, x1, y1 = box
    tx0, ty0, tx1, ty1 = truth
    inter = max(0, min(x1, tx1) - max(x0, tx0)) * max(0, min(y1, ty1) - max(y0, ty0))
    return inter / ((x1 - x0) * (y1 - y0))


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_repeats_are_grouped_each_into_its_own_cluster(tmp_path, kit, matcher, seed):
    paths, truth = kit.planted_repeats(tmp_path / "images", seed=seed)
    index, _ = update_index(tmp_path / "images", tmp_path / "idx", size=kit.SIZE, show_progress=False)
    found = discover(index, matcher, show_progress=False)
    assert len(found.clusters) >= 2
    owners = {}
    for name, copies in truth.items():
        holders = {path: box for _, path, box in copies}
        best = max(found.clusters, key=lambda c: sum(m.image.path in holders for m in c.images))
        members = {m.image.path: m for m in best.images}
        assert sum(p in members for p in holders) >= 3, name  # most copies in one cluster ...
        others = [p for _, p, _ in truth["B" if name == "A" else "A"]]
        assert not any(p in members for p in others), name  # ... which holds none of the other object
        for path, member in members.items():
            if path in holders:
                assert inside(member.box, holders[path]) > 0.6  # and it points at the object
        owners[name] = id(best)
    assert owners["A"] != owners["B"]


def test_discovery_reports_its_graph_and_checks_options(repeats, matcher):
    index, _ = repeats
    found = discover(index, matcher, top_k=3, clusters=4, show_progress=False)
    assert found.images == 16 and 0 < found.pairs <= 16 * 3 and found.nodes > 0 and found.edges > 0
    strengths = [c.strength for c in found.clusters]
    assert strengths == sorted(strengths, reverse=True)
    assert all(len(c.images) >= 2 for c in found.clusters)
    assert default_clusters(16) == 3 and default_clusters(1000) == 200 and default_clusters(10**5) == 500
    with pytest.raises(SegswapError, match="top-k"):
        discover(index, matcher, top_k=0)


def test_every_stage_of_discover_and_search_reports_progress(repeats, run_cli):
    """Item 12 of issue 21: `discover` was silent before its bar and after it reached 100 %, and `search`
    showed no progress at all."""
    index, truth = repeats
    r = run_cli("discover", "--index", index.path, "--model", "correlation")
    assert r.returncode == 0, r.stderr
    for stage in ("shortlisting neighbours", "pairs", "building the correspondence graph", "leading eigenvectors",
                  "k-means"):
        assert stage in r.stderr, stage
    query = truth["A"][0][1]
    r = run_cli("search", query, "--index", index.path, "--model", "correlation")
    assert r.returncode == 0 and "shortlisting" in r.stderr and "re-ranking" in r.stderr and "it/s" not in r.stdout
