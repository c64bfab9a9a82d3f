"""The two Real-ESRGAN architectures, written from their papers' descriptions and laid out with the original
PyTorch checkpoints' parameter names, so the files people have (Real-ESRGAN's .pth, A1111's and ComfyUI's model
folders) load as they are: RRDBNet (ESRGAN, Wang et al. 2018: residual-in-residual dense blocks) and
SRVGGNetCompact (Real-ESRGAN's small video model: plain convolutions with PReLU, a pixel shuffle, and the input
upscaled by nearest neighbour added back). Both take RGB in [0, 1], [B, 3, H, W], and return [B, 3, sH, sW]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..interrupt import check_stop


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the block's input and every earlier output (dense connections);
    the last one's output, scaled by 0.2, is added to the input."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(features, growth, 3, 1, 1)
        self.conv2 = nn.Conv2d(features + growth, growth, 3, 1, 1)
        self.conv3 = nn.Conv2d(features + 2 * growth, growth, 3, 1, 1)
        self.conv4 = nn.Conv2d(features + 3 * growth, growth, 3, 1, 1)
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            seen.append(F.leaky_relu(conv(torch.cat(seen, 1)), 0.2))
        return self.conv5(torch.cat(seen, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks in a row; their output, scaled by 0.2, added to the input."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator. x4: features at the input size, two nearest 2x upsamplings with a convolution each.
    x2 and x1 (Real-ESRGAN's) first fold 2x2 or 4x4 pixels into channels (pixel unshuffle), then do the same."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, scale: int = 4, features: int = 64,
                 blocks: int = 23, growth: int = 32):
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scales by 1, 2 or 4, not {scale}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(in_channels * self.unshuffle ** 2, features, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(features, growth) for _ in range(blocks)])
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        body = feat
        for block in self.body:
            body = block(body)
            check_stop()  # a cancel lands between blocks (core.interrupt)
        feat = feat + self.conv_body(body)
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class SRVGGNetCompact(nn.Module):
    """`convs` 3x3 convolutions of `features` channels with PReLU (or leaky ReLU) between them; the last makes
    3 * scale² channels, shuffled into a scale-times larger image, plus the input upscaled by nearest neighbour.
    `body` holds convolutions and activations in turn (body.0 conv, body.1 act, ...), as the checkpoints do."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, features: int = 64, convs: int = 16,
                 scale: int = 4, activation: str = "prelu"):
        super().__init__()
        self.scale, self.out_channels = scale, out_channels

        def act() -> nn.Module:
            if activation == "prelu":
                return nn.PReLU(num_parameters=features)
            if activation == "leakyrelu":
                return nn.LeakyReLU(0.1)
            if activation == "relu":
                return nn.ReLU()
            raise ValueError(f"unknown activation {activation!r}")

        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, 3, 1, 1), act()]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), act()]
        layers.append(nn.Conv2d(features, out_channels * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for index, layer in enumerate(self.body):
            out = layer(out)
            if index % 8 == 7:
                check_stop()
        out = F.pixel_shuffle(out, self.scale)
        return out + F.interpolate(x[:, : self.out_channels], scale_factor=self.scale, mode="nearest")
