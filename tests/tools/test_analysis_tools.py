"""Smoke tests of the analysis tools (they must keep running as the code changes)."""

import re

from tool_runner import DEMO, output, run_tool


def test_shapes_baselines_stay_below_half():
    proc = run_tool('analysis_tools/shapes_baselines.py', DEMO)
    assert proc.returncode == 0, output(proc)
    every = re.search(r'every shape\s+([\d.]+)\s+([\d.]+)', proc.stdout)
    assert every and float(every.group(2)) <= 0.5  # the demo's text-free cIoU baseline
    assert re.search(r'empty mask\s+0\.0000\s+0\.0000', proc.stdout)


def test_pipeline_benchmark_reports_throughput():
    proc = run_tool(
        'analysis_tools/benchmark_pipeline.py', '--num-samples', '2', '--workers', '0',
        '--repeats', '1',
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    for preset in ('lisa7b', 'tiny'):
        rate = re.search(rf'\[{preset}\] 0 workers: ([\d.]+) samples/s', proc.stdout)
        assert rate and float(rate.group(1)) > 0
        cost = re.search(
            rf'\[{preset}\] processor in the data preprocessor: ([\d.]+) ms', proc.stdout
        )
        assert cost and float(cost.group(1)) > 0


def test_sam_attention_memory_tool_compares_both_variants():
    proc = run_tool('analysis_tools/sam_attention_memory.py', '--rows', '4', '--grid', '16')
    assert proc.returncode == 0, output(proc)
    lines = [line for line in proc.stdout.splitlines() if 'peak' in line]
    assert len(lines) == 2 and "SAM's attention" in lines[0] and '4 rows' in lines[1]
