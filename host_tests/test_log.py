import pytest

from cases import caserun
from cases import log_cases as cases


@pytest.mark.parametrize("name", caserun.names(cases))
def test_log(name):
    getattr(cases, name)()
