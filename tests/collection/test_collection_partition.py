"""Discovery's bounded memory (issue 26): predictions streamed into nodes and a flow file, none kept; the
graph split into parts of at most NODE_BUDGET nodes; one part gives the answers of the unsplit graph."""

import gc
import weakref

import numpy as np
import pytest
import scipy.sparse

from segswap.collection import discover as discover_module
from segswap.collection.discover import discover, find_patterns
from segswap.collection.graph import (StreamedPairs, correspondence_graph, graph_nodes, part_graph,
                                      prediction_flows)
from segswap.collection.predictions import PairPrediction, neighbour_pairs, predict_pairs
from segswap.collection.partition import pair_links, partition


@pytest.fixture(scope="module")
def predicted(repeats, matcher):
    """Every pair discovery runs on the planted collection, predicted in memory."""
    index, _ = repeats
    ids, regional = index.regional_descriptors()
    pairs = neighbour_pairs(index.descriptor_index(), regional, ids, 5)
    return pairs, predict_pairs(matcher, index.features, pairs, show_progress=False)


def streamed(pairs, predictions, folder):
    stream = StreamedPairs(pairs, folder)
    for position in reversed(range(len(pairs))):  # out of order, as a cluster's tasks may arrive
        stream(position, predictions[position])
    return stream


def test_streamed_pairs_keep_no_prediction_and_give_back_their_nodes_and_flows(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [(0, 1), (0, 2), (1, 2), (2, 5)]

    def prediction(a, b):
        ha, wa, hb, wb = 5, 7, 6, 4
        mask_a, mask_b = rng.uniform(0.5, 1, (ha, wa)).astype(np.float32), rng.uniform(0.5, 1, (hb, wb)).astype(np.float32)
        return PairPrediction(a, b, mask_a, mask_b, rng.random((ha, wa, 2), np.float32), rng.random((hb, wb, 2), np.float32),
                              0.0, 0.0)

    predictions = [prediction(a, b) for a, b in pairs]
    expected = graph_nodes(predictions)
    flows = {(p.a, p.b): p.flow_ab.copy() for p in predictions} | {(p.b, p.a): p.flow_ba.copy() for p in predictions}
    alive = [weakref.ref(p) for p in predictions] + [weakref.ref(p.flow_ab) for p in predictions]
    stream = streamed(pairs, predictions, tmp_path)
    del predictions
    gc.collect()
    assert not any(ref() is not None for ref in alive)  # nothing of a prediction is kept
    nodes = stream.nodes()
    for field in ("pair", "image_a", "image_b", "cell_a", "cell_b", "mask"):
        np.testing.assert_array_equal(getattr(nodes, field), getattr(expected, field))
    for (source, target), flow in flows.items():
        np.testing.assert_array_equal(stream.flow(source, target), flow)
    assert stream.flow(0, 5) is None and not stream.ran(0, 5) and stream.ran(5, 2)
    assert list(tmp_path.iterdir()) == []  # the flow file has no name: nothing is left behind
    stream.close()


def test_predict_pairs_hands_each_prediction_to_a_sink_and_keeps_none(repeats, matcher, predicted):
    index, _ = repeats
    pairs, predictions = predicted
    taken = {}
    alive = []

    def sink(position, prediction):
        taken[position] = (prediction.mask_a.copy(), prediction.flow_ba.copy(), prediction.score_ab)
        alive.append(weakref.ref(prediction))

    assert predict_pairs(matcher, index.features, pairs, show_progress=False, sink=sink, batch_size=4) == []
    gc.collect()
    assert sorted(taken) == list(range(len(pairs))) and not any(ref() is not None for ref in alive)
    for position, (mask_a, flow_ba, score_ab) in taken.items():
        np.testing.assert_array_equal(mask_a, predictions[position].mask_a)
        np.testing.assert_array_equal(flow_ba, predictions[position].flow_ba)
        assert score_ab == predictions[position].score_ab


def test_one_part_is_the_unsplit_graph_with_its_answers(predicted, tmp_path):
    pairs, predictions = predicted
    nodes = graph_nodes(predictions)
    whole = correspondence_graph(nodes, pairs, prediction_flows(predictions))
    stream = streamed(pairs, predictions, tmp_path)
    assert len(stream.nodes()) == len(nodes) and whole.nnz > 0
    one = part_graph(stream.nodes(), pairs, stream.flow, np.flatnonzero(np.bincount(nodes.pair, minlength=len(pairs))))
    assert one.dropped == 0 and (one.matrix != whole).nnz == 0
    np.testing.assert_array_equal(one.rows, np.arange(len(nodes)))
    exact, unbounded = (find_patterns(stream.nodes(), pairs, stream, 4, budget=budget) for budget in (len(nodes), 10**9))
    assert len(exact.parts) == len(unbounded.parts) == 1 and exact.edges == unbounded.edges == whole.nnz
    assert [s for s, _ in exact.clusters] == [s for s, _ in unbounded.clusters]
    for (_, a), (_, b) in zip(exact.clusters, unbounded.clusters):
        np.testing.assert_array_equal(a, b)
    split = find_patterns(stream.nodes(), pairs, stream, 4, budget=len(nodes) - 1)
    assert len(split.parts) >= 2  # one node fewer than the graph: split
    stream.close()


def test_a_graph_over_the_budget_is_split_and_its_planted_patterns_still_found(repeats, matcher, monkeypatch):
    """Each object's copies pair with each other, so their nodes lie in separate parts once the budget
    is below the graph; each part's share of eigenvectors and clusters still finds its object."""
    index, truth = repeats
    whole = discover(index, matcher, show_progress=False)
    monkeypatch.setattr(discover_module, "NODE_BUDGET", whole.nodes // 3)
    found = discover(index, matcher, show_progress=False)
    assert whole.parts == 1 and found.parts >= 3 and found.nodes == whole.nodes
    assert found.edges + found.dropped_edges == whole.edges  # every edge is in a part or counted as dropped
    for name, copies in truth.items():
        holders = {path for _, path, _ in copies}
        best = max(found.clusters, key=lambda c: sum(m.image.path in holders for m in c.images))
        members = {m.image.path for m in best.images}
        assert len(members & holders) >= 3, name
        others = {p for _, p, _ in truth["B" if name == "A" else "A"]}
        assert not members & others, name


def test_partition_keeps_components_whole_when_they_fit_and_cuts_the_ones_that_do_not():
    # pairs 0-3: a chain of four (mass 10 each); 4-5: two linked; 6: alone; 7: no nodes
    mass = np.array([10, 10, 10, 10, 6, 6, 3, 0])
    links = pair_links(len(mass), np.array([[0, 1], [1, 2], [2, 3], [4, 5]]), mass)
    parts = partition(mass, links, budget=25)
    assert sorted(np.concatenate(parts).tolist()) == list(range(7))  # each pair with nodes once
    assert all(mass[part].sum() <= 25 for part in parts)
    homes = {int(p): k for k, part in enumerate(parts) for p in part}
    assert homes[4] == homes[5]  # a component within the budget stays whole
    assert len({homes[p] for p in range(4)}) == 2  # the chain (40) in two, cut in its middle
    assert homes[0] == homes[1] and homes[2] == homes[3]
    assert isinstance(links, scipy.sparse.csr_matrix) and links[0, 1] == 10
    assert [p.tolist() for p in partition(mass, links, budget=25)] == [p.tolist() for p in parts]  # deterministic
