import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from conftest import *  # noqa: F401,F403  (paths for lib/, tools/, host_tests/)
