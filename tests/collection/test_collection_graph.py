import numpy as np
import scipy.sparse

from segswap.collection.descriptor import DescriptorIndex, mean_descriptor, region_boxes, regional_descriptors
from segswap.collection.graph import (MIN_EDGE, NODE_THRESHOLD, correspondence_graph, graph_nodes,
                                      leading_eigenvectors, prediction_flows)
from segswap.collection.predictions import PairPrediction

GRID = (6, 7)  # h, w


def identity_flow(h, w, shift=(0, 0)):
    """Each cell's own centre, moved by ``shift`` cells, as (x, y) in [0, 1]."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([(xs + 0.5 + shift[0]) / w, (ys + 0.5 + shift[1]) / h], axis=-1)


def prediction(a, b, cells, shift=(0, 0)):
    """A pair whose confident cells (in a) map to the same cell (plus ``shift``) in b, and back."""
    mask = np.zeros(GRID, np.float32)
    for x, y in cells:
        mask[y, x] = 0.95
    back = tuple(-s for s in shift)
    return PairPrediction(a, b, mask, mask.copy(), identity_flow(*GRID, shift), identity_flow(*GRID, back), 1.0, 1.0)


def test_nodes_are_the_confident_cells_of_the_busier_side():
    pred = prediction(0, 1, [(0, 0), (1, 1), (3, 2)], shift=(1, 1))
    pred.mask_b[:] = 0
    pred.mask_b[0, 0] = 0.9  # b has one confident cell, a three: nodes come from a
    nodes = graph_nodes([pred])
    assert len(nodes) == 3 and set(nodes.image_a) == {0} and set(nodes.image_b) == {1}
    assert sorted(map(tuple, nodes.cell_a)) == [(0, 0), (1, 1), (3, 2)]
    assert sorted(map(tuple, nodes.cell_b)) == [(1, 1), (2, 2), (4, 3)]
    assert (nodes.mask > NODE_THRESHOLD).all()


def test_border_to_border_matches_are_not_nodes():
    h, w = GRID
    pred = prediction(0, 1, [(0, 0), (w - 1, 2), (0, h - 1), (2, 2)])  # three border cells matched to borders
    assert sorted(map(tuple, graph_nodes([pred]).cell_a)) == [(2, 2)]
    inward = prediction(0, 1, [(0, 2)], shift=(1, 0))  # a border cell matched inside the other image stays
    assert len(graph_nodes([inward])) == 1


def test_two_cycle_edges_follow_the_formula():
    sigma = 0.8
    pred = prediction(0, 1, [(1, 1), (2, 1)])
    nodes = graph_nodes([pred])
    graph = correspondence_graph(nodes, [(0, 1)], prediction_flows([pred]), sigma=sigma).toarray()
    # one cell apart in both images: m_i m_j exp(-(1 + 1) / 2σ)
    assert np.isclose(graph[0, 1], 0.95**2 * np.exp(-2 / (2 * sigma)), rtol=1e-4)
    assert graph[0, 0] == 0 and np.allclose(graph, graph.T)


def test_three_cycle_edges_need_the_third_pair_and_reward_consistency():
    sigma = 0.8
    cells = [(1, 1)]
    p01, p02 = prediction(0, 1, cells), prediction(0, 2, cells)
    p12_consistent = prediction(1, 2, cells)
    p12_off = prediction(1, 2, cells, shift=(2, 0))  # sends 1's cell two cells away from 2's node
    for third, expected in ((p12_consistent, 0.95**2), (p12_off, 0.95**2 * np.exp(-2 / sigma))):
        nodes = graph_nodes([p01, p02])
        graph = correspondence_graph(nodes, [(0, 1), (0, 2)], prediction_flows([p01, p02, third]), sigma=sigma).toarray()
        assert np.isclose(graph[0, 1], expected, rtol=1e-4) and np.isclose(graph[1, 0], expected, rtol=1e-4)
    nodes = graph_nodes([p01, p02])
    without_third = correspondence_graph(nodes, [(0, 1), (0, 2)], prediction_flows([p01, p02]), sigma=sigma)
    assert without_third.nnz == 0


def test_light_edges_are_dropped_and_the_matrix_is_sparse():
    far = prediction(0, 1, [(1, 1), (5, 4)])
    nodes = graph_nodes([far])
    graph = correspondence_graph(nodes, [(0, 1)], prediction_flows([far]))
    assert isinstance(graph, scipy.sparse.csr_matrix) and graph.nnz == 0  # 5 cells apart: weight < MIN_EDGE
    assert 0.95**2 * np.exp(-2 * np.hypot(4, 3) / (2 * 0.8)) < MIN_EDGE


def test_leading_eigenvector_is_positive_and_localised_on_the_dense_block():
    dense = np.ones((4, 4)) - np.eye(4)
    graph = scipy.sparse.block_diag([dense, 0.2 * (np.ones((3, 3)) - np.eye(3))]).tocsr()
    values, vectors = leading_eigenvectors(graph, 2)
    assert values[0] >= values[1] and np.isclose(values[0], 3)
    assert (vectors[:4, 0] > 0.4).all() and np.allclose(vectors[4:, 0], 0, atol=1e-6)
    big = scipy.sparse.random(300, 300, density=0.02, random_state=0)
    values, vectors = leading_eigenvectors((big + big.T).tocsr(), 5)  # the sparse (ARPACK) path
    assert vectors.shape == (300, 5) and (np.diff(values) <= 1e-9).all()


def test_regional_descriptors_and_their_index():
    boxes = region_boxes(6, 8)
    assert boxes[0] == (0, 0, 6, 8) and len(boxes) == len(set(boxes))
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(16, 6, 8)).astype(np.float32) for _ in range(4)]
    regional = [regional_descriptors(f) for f in feats]
    index = DescriptorIndex(mean_descriptor(regional, 16))
    for i, d in enumerate(regional):
        assert d.shape == (len(boxes), 16) and np.allclose(np.linalg.norm(d, axis=1), 1, atol=1e-5)
        index.add(i + 1, d)
    corner = feats[2][:, :3, :4].mean(axis=(1, 2))  # a window of image 3 is found by its own content
    hits = index.search([(corner / np.linalg.norm(corner))[None]], 2)[0]
    assert hits[0][0] == 3 and len({i for i, _ in hits}) == 2 and hits[0][1] >= hits[1][1]
    assert all(i != 3 for i, _ in index.search([corner[None]], 3, exclude=[3])[0])
    # all windows of an image as one query set: its own windows come first, so exclude it
    assert index.search(regional[:1], 3, exclude=[1])[0][0][0] != 1
