"""Write-tree helpers shared by the use-case property tests (test_cevc, test_evcs): a valid
tree with a few values replaced, and what an emitter renders."""
import copy

from hypothesis import strategies as st

from eejson.writer import Writer


def mutate(tree, data, arbitrary):
    """tree with 1-3 values somewhere inside it replaced by ones drawn from arbitrary."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, 3))):
        node = tree
        while True:
            if isinstance(node, dict) and node:
                k = data.draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                k = data.draw(st.integers(0, len(node) - 1))
            else:
                break
            if data.draw(st.booleans()) or not isinstance(node[k], (dict, list)):
                node[k] = data.draw(arbitrary)
                break
            node = node[k]
    return tree


def rendered(emit):
    """The bytes emit streams through a 256 B writer, checked against what it measures."""
    w = Writer(256)
    n = w.measure(emit)
    buf = bytearray()
    w.stream(emit, lambda mv: buf.extend(mv))
    assert len(buf) == n
    return bytes(buf)
