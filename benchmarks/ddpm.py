"""Speed of annotated.ddpm next to diffusers, on this machine (printed, never asserted).

    python benchmarks/ddpm.py              # the chapter's embedded size: 8x8 digits, dim 32, two levels
    python benchmarks/ddpm.py --threads 2 --steps 20 --timesteps 1000

1. Training throughput (images/s) of the annotated U-Net and of diffusers' UNet2DModel of comparable size.
2. Sampling: time of one denoising call on a batch, for both networks.
3. DDIM (50 steps) against DDPM (all T steps) wall time, with the annotated U-Net. Sample *quality* of the two is
   measured in the chapter (notebooks/01_ddpm.ipynb, section 8) on a trained network.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from annotated.ddpm import GaussianDiffusion, Unet, linear_beta_schedule


def diffusers_unet(size: int, dim: int) -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=size, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=(dim, 2 * dim),
        down_block_types=("AttnDownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "AttnUpBlock2D"),
        norm_num_groups=8, attention_head_dim=8,
    )


def as_eps_model(net: torch.nn.Module):
    if net.__class__.__name__ == "UNet2DModel":
        return lambda x, t: net(x, t).sample
    return net


def train_throughput(net, size: int, batch: int, steps: int) -> float:
    model = as_eps_model(net)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x, t = torch.randn(batch, 1, size, size), torch.randint(0, 300, (batch,))
    for warm in range(2 + steps):
        if warm == 2:
            start = time.perf_counter()
        loss = F.mse_loss(model(x, t), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - start)


@torch.no_grad()
def call_seconds(net, size: int, batch: int, repeats: int) -> float:
    model = as_eps_model(net)
    x, t = torch.randn(batch, 1, size, size), torch.randint(0, 300, (batch,))
    model(x, t)
    start = time.perf_counter()
    for _ in range(repeats):
        model(x, t)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--timesteps", type=int, default=300)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours, theirs = Unet(args.dim, dim_mults=(1, 2), channels=1), diffusers_unet(args.size, args.dim)
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    print(f"machine: {torch.get_num_threads()} threads | images {args.size}x{args.size} | batch {args.batch}")
    print(f"parameters: annotated Unet {count(ours):,} | diffusers UNet2DModel {count(theirs):,}")
    ours_ips = train_throughput(ours, args.size, args.batch, args.steps)
    theirs_ips = train_throughput(theirs, args.size, args.batch, args.steps)
    print(f"training: annotated {ours_ips:7.1f} img/s | diffusers {theirs_ips:7.1f} img/s | ratio {ours_ips / theirs_ips:.2f}x")
    ours_s = call_seconds(ours.eval(), args.size, args.samples, 5)
    theirs_s = call_seconds(theirs.eval(), args.size, args.samples, 5)
    print(f"one denoising call on {args.samples} images: annotated {ours_s * 1e3:.1f} ms | diffusers {theirs_s * 1e3:.1f} ms"
          f" | speed ratio {theirs_s / ours_s:.2f}x")
    diffusion = GaussianDiffusion(linear_beta_schedule(args.timesteps, 1e-4 * 1000 / args.timesteps, 0.02 * 1000 / args.timesteps))
    start = time.perf_counter()
    diffusion.ddim_sample(ours, args.size, args.samples, 1, num_steps=50)
    ddim = time.perf_counter() - start
    start = time.perf_counter()
    diffusion.sample(ours, args.size, args.samples, 1)
    ddpm = time.perf_counter() - start
    print(f"sampling {args.samples} images: DDPM {args.timesteps} steps {ddpm:.1f} s | DDIM 50 steps {ddim:.1f} s"
          f" | DDIM speed-up {ddpm / ddim:.1f}x")


if __name__ == "__main__":
    main()
