"""The DDPM chapter's full-scale command, run end to end on CPU with a local stand-in for Fashion-MNIST.

Only the download is replaced: ``datasets.load_dataset`` returns a small ``datasets.Dataset`` with Fashion-MNIST's
real columns and features (``image`` as ``datasets.Image`` holding 28x28 grey PNGs, ``label`` as a ten-class
``ClassLabel``). The model is the full configuration's U-Net (dim 28, three levels) at the real image size; only
the number of steps (2), images and samples is reduced by ``--smoke``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def fashion_mnist_standin(n: int, seed: int, image_column: str = "image"):
    """``n`` random 28x28 grey images in the hub data set's format (PIL images in a ``datasets.Image`` column)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(seed)
    features = datasets.Features({image_column: datasets.Image(), "label": datasets.ClassLabel(names=FASHION_CLASSES)})
    return datasets.Dataset.from_dict(
        {image_column: [Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L") for _ in range(n)],
         "label": [int(i % 10) for i in range(n)]},
        features=features,
    )


@pytest.fixture
def offline_fashion_mnist(monkeypatch):
    import datasets

    calls = []

    def load_dataset(name, split=None, **kwargs):
        calls.append((name, split))
        assert name == "fashion_mnist", name
        return fashion_mnist_standin(16 if split == "train" else 8, seed=0 if split == "train" else 1)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_full_config_matches_the_post():
    """The values the chapter cites from The Annotated Diffusion Model (its Fashion-MNIST training code)."""
    from annotated.ddpm import full_config

    config = full_config()
    assert (config.image_size, config.channels) == (28, 1)
    assert (config.dim, config.dim_mults) == (28, (1, 2, 4))  # Unet(dim=image_size, channels=1, dim_mults=(1, 2, 4))
    # linear, T = 300, the post's endpoints 1e-4 and 0.02 scaled by 1000/T so that almost no signal is left at T
    assert config.timesteps == 300 and (config.beta_start, config.beta_end) == (1e-4 * 1000 / 300, 0.02 * 1000 / 300)
    from annotated.ddpm import linear_beta_schedule

    betas = linear_beta_schedule(config.timesteps, config.beta_start, config.beta_end).double()
    assert torch.prod(1 - betas) < 1e-4
    assert config.loss_type == "huber" and config.horizontal_flip
    assert (config.batch_size, config.learning_rate, config.lr_schedule) == (128, 1e-3, "constant")
    assert config.steps == 6 * (60_000 // 128)  # 6 epochs


def test_loader_reads_the_real_format(offline_fashion_mnist):
    from annotated.ddpm import load_fashion_mnist

    images, labels = load_fashion_mnist("test")
    assert images.shape == (8, 1, 28, 28) and labels.shape == (8,)
    assert images.min() >= -1 and images.max() <= 1 and images.dtype == torch.float32
    assert offline_fashion_mnist == [("fashion_mnist", "test")]


def test_renamed_column_is_refused():
    from annotated.ddpm import fashion_mnist_tensors

    with pytest.raises(ValueError, match=r"columns \['image', 'label'\].*missing \['image'\]"):
        fashion_mnist_tensors(fashion_mnist_standin(4, seed=0, image_column="img"))


def test_wrong_image_size_is_refused():
    import datasets
    from PIL import Image

    from annotated.ddpm import fashion_mnist_tensors

    small = datasets.Dataset.from_dict({"image": [Image.new("L", (32, 32))], "label": [0]},
                                       features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=FASHION_CLASSES)}))
    with pytest.raises(ValueError, match="28x28"):
        fashion_mnist_tensors(small)


def test_smoke_run_writes_results_and_resumes(offline_fashion_mnist, tmp_path):
    from scripts.full_scale import ddpm

    record = ddpm.main(["--smoke", "--out", str(tmp_path)])
    assert record["smoke"] and record["steps"] == 2
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["metrics"] == record["metrics"]
    assert all(np.isfinite(value) for value in stored["metrics"].values())
    assert (tmp_path / "samples.png").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000001.safetensors", "step_00000002.safetensors"]
    again = ddpm.main(["--smoke", "--out", str(tmp_path)])  # resumes at step 2: no further training
    assert again["metrics"]["train_loss_last_100_steps"] == record["metrics"]["train_loss_last_100_steps"]
