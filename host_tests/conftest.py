import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# host_tests helpers; lib/ for the sans-IO cores under CPython; tools/ for the test peers.
for p in (HERE, os.path.join(ROOT, "lib"), os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

# ../shared beside the checkout holds the reference material and wire captures (CI puts it there)
SHARED = os.environ.get("GW_SHARED") or os.path.join(os.path.dirname(ROOT), "shared")
CAPTURES = os.path.join(SHARED, "reference", "eebus-captures")
