import pytest

from tests.tiny import tiny_loaded_model, write_tiny_pack


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_loaded_model()


@pytest.fixture
def tiny_pack(tmp_path, tiny_model):
    return write_tiny_pack(tmp_path / "tiny-pack", tiny_model)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model):
    """The tiny model saved as safetensors, so the CLI loads it through the real local path."""
    folder = tmp_path_factory.mktemp("tiny-model")
    tiny_model.model.save_pretrained(folder, safe_serialization=True)
    tiny_model.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Tests never read or write the user's own cache (converted models, activations)."""
    import os

    previous = os.environ.get("EMOLAB_CACHE")
    os.environ["EMOLAB_CACHE"] = str(tmp_path_factory.mktemp("isolated-cache"))
    yield
    if previous is None:
        os.environ.pop("EMOLAB_CACHE", None)
    else:
        os.environ["EMOLAB_CACHE"] = previous


@pytest.fixture(scope="session")
def bundled_cache(tmp_path_factory):
    """A fresh EMOLAB_CACHE with the bundled model converted by two processes racing each other."""
    import os
    import subprocess
    import sys

    cache = tmp_path_factory.mktemp("emolab-cache")
    env = {**os.environ, "EMOLAB_CACHE": str(cache)}
    script = "from emolab.core.models import load_model; load_model('bundled')"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    for racer in racers:
        _, err = racer.communicate(timeout=600)
        assert racer.returncode == 0, err
    leftovers = [p.name for p in (cache / "models").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    previous = os.environ.get("EMOLAB_CACHE")
    os.environ["EMOLAB_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("EMOLAB_CACHE", None)
    else:
        os.environ["EMOLAB_CACHE"] = previous


@pytest.fixture(scope="session")
def bundled_model(bundled_cache):
    from emolab.core.models import load_model

    return load_model("bundled")
