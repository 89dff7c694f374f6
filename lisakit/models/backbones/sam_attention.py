"""Query-chunked global attention for SAM's ViT image encoder.

``segment_anything``'s ``Attention`` materializes the full (B*heads, N, N) attention matrix,
and two more of its size while adding the decomposed relative positions and taking the
softmax. In ViT-H's four global blocks at 1024 px, N = 64 x 64 tokens: about 0.5 GiB per
matrix and image in bf16. :class:`QueryChunkedAttention` computes exactly the same function
for a few rows of the query grid at a time, so only a slice of each matrix exists at once.
"""

from __future__ import annotations

from typing import Optional

import torch
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch import nn


class QueryChunkedAttention(Attention):
    """SAM's ``Attention`` (same parameters, same outputs) over ``query_rows`` rows of the
    query grid at a time; set ``query_rows`` after construction."""

    query_rows: int = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * self.num_heads, h * w, -1).unbind(0)  # (BH, N, c) each
        rel_h = get_rel_pos(h, h, self.rel_pos_h) if self.use_rel_pos else None  # (h, h, c)
        rel_w = get_rel_pos(w, w, self.rel_pos_w) if self.use_rel_pos else None  # (w, w, c)
        outs = []
        for start in range(0, h, self.query_rows):
            stop = min(start + self.query_rows, h)
            q_rows = q[:, start * w : stop * w]  # (BH, r*w, c)
            attn = (q_rows * self.scale) @ k.transpose(-2, -1)  # (BH, r*w, N)
            if self.use_rel_pos:
                attn = self._add_rel_pos(attn, q_rows, rel_h[start:stop], rel_w, (h, w))
            outs.append(attn.softmax(dim=-1) @ v)  # (BH, r*w, c)
        out = torch.cat(outs, dim=1)  # (BH, N, c)
        out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(out)

    @staticmethod
    def _add_rel_pos(
        attn: torch.Tensor,
        q_rows: torch.Tensor,
        rel_h: torch.Tensor,
        rel_w: torch.Tensor,
        size: tuple[int, int],
    ) -> torch.Tensor:
        """``add_decomposed_rel_pos`` for query rows ``rel_h`` covers (r, h, c)."""
        h, w = size
        rows = rel_h.shape[0]
        r_q = q_rows.reshape(q_rows.shape[0], rows, w, -1)  # (BH, r, w, c)
        term_h = torch.einsum('bhwc,hkc->bhwk', r_q, rel_h)  # (BH, r, w, h)
        term_w = torch.einsum('bhwc,wkc->bhwk', r_q, rel_w)  # (BH, r, w, w)
        attn = attn.view(-1, rows, w, h, w) + term_h[..., None] + term_w[:, :, :, None, :]
        return attn.view(-1, rows * w, h * w)


def chunk_global_attention(encoder: nn.Module, query_rows: Optional[int]) -> None:
    """Make the global-attention blocks of a SAM ``ImageEncoderViT`` attend
    ``query_rows`` query rows at a time (``None``: SAM's own attention).

    The modules keep their parameters and checkpoint keys; only the forward changes.
    """
    if query_rows is not None and query_rows < 1:
        raise ValueError(f'model.sam_encoder.attention_query_rows={query_rows}; expected >= 1.')
    for block in encoder.blocks:
        if block.window_size == 0:  # global attention over the whole token grid
            block.attn.__class__ = Attention if query_rows is None else QueryChunkedAttention
            if query_rows is not None:
                block.attn.query_rows = query_rows
