import pytest

from tests.conftest import replicated_shop


@pytest.fixture
def world():
    with replicated_shop(seed=31):
        yield
