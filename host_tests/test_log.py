import pytest

from cases import log_cases as cases


@pytest.mark.parametrize("name", sorted(n for n in dir(cases) if n.startswith("case_")))
def test_log(name):
    getattr(cases, name)()
