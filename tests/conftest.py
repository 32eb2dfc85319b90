import os

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
