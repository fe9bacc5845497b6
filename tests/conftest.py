import pytest

from tests.tiny import tiny_loaded_model, write_tiny_pack


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_loaded_model()


@pytest.fixture
def tiny_pack(tmp_path, tiny_model):
    return write_tiny_pack(tmp_path / "tiny-pack", tiny_model)
