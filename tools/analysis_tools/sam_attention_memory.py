"""Peak memory and time of one ViT-H global-attention block: SAM's attention vs lisakit's
query-chunked attention (``model.sam_encoder.attention_query_rows``).

``python tools/analysis_tools/sam_attention_memory.py --rows 16 --dtype bfloat16`` runs each
variant in a fresh process on a (1, 64, 64, 1280) input (a 1024-px image) and prints the
peak (CUDA max allocated on a GPU, else the peak RSS growth of the process) and the time.
"""

import argparse
import json
import os.path as osp
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

KIB = 1024
GIB = 1024**3
VIT_H = dict(dim=1280, num_heads=16, grid=64)  # grid: 1024 px / patch 16


def measure(rows: int, dtype: str, device: str, grid: int) -> dict:
    """Build one global block, run one forward without grad; peak memory and seconds."""
    from segment_anything.modeling.image_encoder import Block

    from lisakit.models.backbones.sam_attention import QueryChunkedAttention

    block = Block(VIT_H['dim'], VIT_H['num_heads'], use_rel_pos=True, input_size=(grid, grid))
    if rows:
        block.attn.__class__ = QueryChunkedAttention
        block.attn.query_rows = rows
    block.to(device, getattr(torch, dtype)).eval()
    x = torch.randn(1, grid, grid, VIT_H['dim'], device=device, dtype=getattr(torch, dtype))
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB
    tic = time.perf_counter()
    with torch.no_grad():
        block(x)
    if device == 'cuda':
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB - base
    return dict(rows=rows, peak_gib=peak / GIB, seconds=time.perf_counter() - tic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', type=int, default=16, help='query rows per chunk')
    parser.add_argument('--dtype', default='float32')
    parser.add_argument('--grid', type=int, default=VIT_H['grid'], help='token grid side')
    parser.add_argument('--child', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.child is not None:
        print(json.dumps(measure(args.child, args.dtype, device, args.grid)))
        return 0
    source = 'cuda_max_allocated' if device == 'cuda' else 'peak RSS growth'
    for rows in (0, args.rows):
        cmd = [sys.executable, __file__, '--child', str(rows), '--dtype', args.dtype]
        cmd += ['--grid', str(args.grid)]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        name = "SAM's attention" if rows == 0 else f'query-chunked, {rows} rows'
        print(f'{name:<28} peak {out["peak_gib"]:.3f} GiB ({source}), {out["seconds"]:.2f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
