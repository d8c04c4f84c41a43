"""The DDPM chapter at full scale: the post's Fashion-MNIST recipe (``annotated.ddpm.full_config()``).

    python -m scripts.full_scale.ddpm [--out DIR] [--smoke]
    accelerate launch -m scripts.full_scale.ddpm          # not yet: fails at its first step (book/how_to_run.md)

Loads Fashion-MNIST with ``annotated.ddpm.load_fashion_mnist`` (train and test splits), trains with
``annotated.ddpm.train_ddpm`` (tqdm progress, safetensors checkpoints every 500 steps in ``--out``; a second call
resumes), then reports the held-out noise-prediction loss of the last weights and of the EMA on the test split and
saves a grid of DDPM samples from the EMA. ``--smoke`` runs the same path for two steps on whatever the loader
returns, one held-out evaluation on at most 64 images and two samples (5 DDIM steps instead of 300 DDPM steps,
which take minutes on a CPU).
"""

from __future__ import annotations

import dataclasses

import torch

from annotated.ddpm import FASHION_MNIST_HUB_ID, full_config, held_out_loss, load_fashion_mnist, train_ddpm
from annotated.utils import image_grid
from scripts.full_scale import common


CHAPTER = "ddpm"


def main(argv: list[str] | None = None) -> dict | None:
    arguments = common.parser(CHAPTER, __doc__.splitlines()[0]).parse_args(argv)
    from accelerate import Accelerator

    stopwatch = common.Stopwatch()
    accelerator = Accelerator()
    config = full_config()
    with common.reaching(common.hub_dataset(FASHION_MNIST_HUB_ID), common.HUB_CACHE_REMEDY):
        train_images, _ = load_fashion_mnist("train")
        test_images, _ = load_fashion_mnist("test")
    n_samples, checkpoint_every = 64, 500
    if arguments.smoke:
        config = dataclasses.replace(config, steps=2, batch_size=min(config.batch_size, len(train_images)))
        test_images, n_samples, checkpoint_every = test_images[:64], 2, 1
    trained = train_ddpm(config, train_images, checkpoint_dir=arguments.out / "checkpoints",
                         checkpoint_every=checkpoint_every, accelerator=accelerator)
    if not accelerator.is_main_process:
        return None
    device = accelerator.device
    model, ema = trained.model.to(device).eval(), trained.ema.to(device).eval()
    metrics = {
        "held_out_loss_last_weights": held_out_loss(trained.diffusion, model, test_images, config.loss_type),
        "held_out_loss_ema": held_out_loss(trained.diffusion, ema, test_images, config.loss_type),
        "train_loss_last_100_steps": float(torch.tensor(trained.history.losses[-100:]).mean()),
    }
    generator = torch.Generator().manual_seed(1)
    if arguments.smoke:  # 300 reverse steps of the full U-Net take minutes on a loaded CPU: 5 DDIM steps instead
        samples = trained.diffusion.ddim_sample(ema, config.image_size, n_samples, config.channels, num_steps=5,
                                                generator=generator)
    else:
        samples = trained.diffusion.sample(ema, config.image_size, batch_size=n_samples, channels=config.channels,
                                           generator=generator)
    arguments.out.mkdir(parents=True, exist_ok=True)
    image_grid(samples.clamp(-1, 1).cpu(), ncols=8, title=f"DDPM samples, {config.timesteps} steps (EMA)").savefig(
        arguments.out / "samples.png", dpi=100)
    return common.write_results(
        CHAPTER, arguments.out, metrics=metrics, steps=len(trained.history.losses),
        wall_seconds=stopwatch.seconds(), smoke=arguments.smoke,
        settings={**dataclasses.asdict(config), "train_images": len(train_images), "test_images": len(test_images),
                  "samples": n_samples, "source": "annotated.ddpm.full_config() (The Annotated Diffusion Model)"})


if __name__ == "__main__":
    common.run(CHAPTER, main)
