import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The tests' tensors are small: one intra-op thread is faster than two fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
