import copy
import json
import os

import pytest

from testdata import STANDARD_INDEX


@pytest.fixture(scope="session")
def standard_index_path():
    if not os.path.exists(STANDARD_INDEX):
        pytest.skip("../shared/fixtures/attune-standard-index.json is absent (tests read the public index by path)")
    return STANDARD_INDEX


@pytest.fixture(scope="session")
def _standard_index(standard_index_path):
    with open(standard_index_path) as handle:
        return json.load(handle)


@pytest.fixture
def standard_index(_standard_index):
    return copy.deepcopy(_standard_index)
