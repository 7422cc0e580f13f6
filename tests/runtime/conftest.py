"""Runtime tests: torch on 2 threads, deterministic."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(2)
    yield
