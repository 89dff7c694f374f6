"""Necks: project ``<SEG>`` hidden states (N, D) into SAM's prompt space (N, C)."""

from __future__ import annotations

from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import nn

from lisakit.registry import MODELS


@MODELS.register_module()
class SegProjector(BaseModule):
    """LISA's ``text_hidden_fcs``: Linear(D, D) -> ReLU -> Linear(D, C) -> Dropout.

    Args:
        in_channels: LLM hidden size D.
        out_channels: SAM prompt dim C.
        hidden_channels: Width of the hidden layer (D in LISA).
        dropout: Dropout after the last layer (0.0 in LISA).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        hidden_channels: Optional[int] = None,
        dropout: float = 0.0,
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        hidden = hidden_channels or in_channels
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_channels),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, C)."""
        return self.fc(x)


@MODELS.register_module()
class LinearProjector(BaseModule):
    """A single Linear(D, C) projector, a lighter alternative to :class:`SegProjector`.

    Args:
        in_channels: LLM hidden size D.
        out_channels: SAM prompt dim C.
        init_cfg: mmengine init config.
    """

    def __init__(
        self, in_channels: int, out_channels: int = 256, init_cfg: Optional[dict] = None
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.fc = nn.Linear(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, C)."""
        return self.fc(x)
