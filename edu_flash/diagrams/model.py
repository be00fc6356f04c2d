"""The networks: a class-conditional diffusers UNet2DModel (one extra class id is the "no label"
class that classifier-free guidance needs), DDIM sampling with guidance, and a small reference CNN
whose pooled features define the Fréchet distance and whose predictions give conditional accuracy.
"""
from __future__ import annotations

import torch
from torch import nn


def unet_config(hp, n_classes: int, channels: int) -> dict:
    """Plain conv blocks, with self-attention only where the hyperparameters ask (slow on CPU)."""
    chans = list(hp.block_channels)
    down = ["AttnDownBlock2D" if hp.attention and i == len(chans) - 1 else "DownBlock2D" for i in range(len(chans))]
    up = ["AttnUpBlock2D" if hp.attention and i == 0 else "UpBlock2D" for i in range(len(chans))]
    return dict(sample_size=hp.image_size, in_channels=channels, out_channels=channels,
                layers_per_block=hp.layers_per_block, block_out_channels=chans, down_block_types=down,
                up_block_types=up, num_class_embeds=n_classes + 1, norm_num_groups=min(8, chans[0]),
                attention_head_dim=8)


def build_unet(config: dict, seed: int | None = None):
    from diffusers import UNet2DModel

    if seed is not None:
        torch.manual_seed(seed)
    return UNet2DModel.from_config(config)


def noise_scheduler_config(hp) -> dict:
    return dict(num_train_timesteps=hp.timesteps, beta_schedule=hp.beta_schedule,
                prediction_type=getattr(hp, "prediction_type", "epsilon"), clip_sample=True)


def target(scheduler, pixels, noise, t):
    """What the network learns to output: the noise (epsilon), the velocity (v) or the clean image (sample)."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(pixels, noise, t)
    return pixels


def diffusion_loss(model, pixels, labels, *, null_id: int, label_dropout: float, scheduler):
    """DDPM loss for the scheduler's prediction type; a fraction of labels become the null class
    (classifier-free guidance needs an unconditional model too)."""
    import torch.nn.functional as F

    noise = torch.randn_like(pixels)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (pixels.shape[0],), device=pixels.device)
    noisy = scheduler.add_noise(pixels, noise, t)
    if label_dropout > 0:
        drop = torch.rand(labels.shape, device=labels.device) < label_dropout
        labels = torch.where(drop, torch.full_like(labels, null_id), labels)
    pred = model(noisy, t, class_labels=labels, return_dict=False)[0]
    return F.mse_loss(pred.float(), target(scheduler, pixels, noise, t).float())


@torch.inference_mode()
def ddim_sample(model, labels: list[int], *, null_id: int, scheduler_config: dict, steps: int, guidance: float,
                seed: int, shape: tuple[int, int, int], batch_size: int = 64, eta: float = 0.0) -> torch.Tensor:
    """DDIM with classifier-free guidance: eps = eps_uncond + guidance * (eps_cond - eps_uncond).

    guidance=1 is plain conditional sampling (one pass); guidance=0 ignores the label.
    Returns images in [-1, 1], (n, C, H, W) on CPU.
    """
    from diffusers import DDIMScheduler

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    sched = DDIMScheduler.from_config(scheduler_config)
    sched.set_timesteps(steps)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(labels), *shape), generator=gen)  # all drawn up front: batch size does not matter
    out = []
    was_training = model.training
    model.eval()
    for s in range(0, len(labels), batch_size):
        y = torch.tensor(labels[s:s + batch_size], device=device)
        x = noise[s:s + batch_size].to(device, dtype)
        for t in sched.timesteps:
            if guidance == 1.0 or guidance == 0.0:
                cls = y if guidance == 1.0 else torch.full_like(y, null_id)
                eps = model(x, t, class_labels=cls, return_dict=False)[0]
            else:
                both = model(torch.cat([x, x]), t, class_labels=torch.cat([y, torch.full_like(y, null_id)]),
                             return_dict=False)[0]
                cond, uncond = both.chunk(2)
                eps = uncond + guidance * (cond - uncond)
            x = sched.step(eps, t, x, eta=eta).prev_sample
        out.append(x.float().clamp(-1, 1).cpu())
    model.train(was_training)
    return torch.cat(out)


class ReferenceNet(nn.Module):
    """Small CNN: 3 conv stages -> global average pool (the feature space) -> linear classifier."""

    def __init__(self, channels: int, n_classes: int, width: int = 32):
        super().__init__()
        self.config = {"channels": channels, "n_classes": n_classes, "width": width}

        def stage(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.GroupNorm(8, o), nn.SiLU(), nn.MaxPool2d(2))

        self.body = nn.Sequential(stage(channels, width), stage(width, 2 * width), stage(2 * width, 2 * width))
        self.head = nn.Linear(2 * width, n_classes)

    def features(self, x):
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.head(self.features(x))


@torch.inference_mode()
def reference_outputs(net: ReferenceNet, images: torch.Tensor, batch_size: int = 256):
    """-> (features (n, d) float64 numpy, predicted class ids numpy)."""
    net.eval()
    device = next(net.parameters()).device
    feats, preds = [], []
    for s in range(0, len(images), batch_size):
        f = net.features(images[s:s + batch_size].to(device).float())
        feats.append(f.double().cpu())
        preds.append(net.head(f).argmax(-1).cpu())
    return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula)."""
    import numpy as np
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # near-singular covariances: regularise as pytorch-fid does
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
