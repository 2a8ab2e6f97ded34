#!/usr/bin/env python3
"""Inference speed and memory of gptbook's GPT-2 against Hugging Face transformers, side by side.

    python bench/bench_generate.py            # the full run (~3-4 minutes on 2 CPU cores)
    python bench/bench_generate.py --quick    # fewer tokens, to try it out

Both models hold the same weights (a randomly initialised 124M GPT-2 with qkv bias, built by
transformers and loaded into gptbook through GPTModel.from_pretrained), so they do the same work.
Prints figures only; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from gptbook import GPT_CONFIG_124M, GPTModel, generate  # noqa: E402


def best_of(fn, repeats: int) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by other processes)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_memory_child() -> None:
    """Run in a fresh process: build the 124M model, run a no-grad pass on 1x1024 tokens."""
    torch.manual_seed(123)
    model = GPTModel(GPT_CONFIG_124M).eval()
    with torch.no_grad():
        model(torch.randint(0, 50257, (1, 1024)))
    print(peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM; unlike ru_maxrss it does not count the
    memory of the parent that forked this process before exec)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 new tokens and one repeat")
    parser.add_argument("--peak-memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_child:
        peak_memory_child()
        return

    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    new_tokens, repeats = (50, 1) if args.quick else (200, 3)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 124M, random weights, qkv bias on
    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        ours = GPTModel.from_pretrained(folder)
    prompt = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(1))

    # --- Generation: batch 1, 16-token prompt, greedy -------------------------------------------
    ours_bf16 = copy.deepcopy(ours).to(torch.bfloat16)  # bf16 weights: half the bytes to stream per token

    def bf16_unpacked():  # the same bf16 model through plain F.linear (what prepack.py improves on)
        with mock.patch("gptbook.generation.prepacked_linears", contextlib.nullcontext):
            return generate(ours_bf16, prompt, new_tokens)

    runs = {
        "transformers generate (fp32)": lambda: hf.generate(
            prompt, max_new_tokens=new_tokens, do_sample=False, pad_token_id=50256),
        "gptbook, KV cache (fp32)": lambda: generate(ours, prompt, new_tokens),
        "gptbook, KV cache (bf16)": lambda: generate(ours_bf16, prompt, new_tokens),
        "gptbook, bf16, no prepacking": bf16_unpacked,
    }
    # Interleaved rounds, best of each: a slow spell of the machine hits every contender alike.
    results = {name: float("inf") for name in runs}
    outputs = {}
    with torch.no_grad():
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                outputs[name] = run()
                results[name] = min(results[name], time.perf_counter() - start)
    out_ours, out_hf = outputs["gptbook, KV cache (fp32)"], outputs["transformers generate (fp32)"]
    out_bf16 = outputs["gptbook, KV cache (bf16)"]
    results["gptbook, no cache (fp32)"] = best_of(lambda: generate(ours, prompt, new_tokens, use_cache=False), 1)

    print(f"\nGeneration: 124M GPT-2 (qkv bias), batch 1, 16-token prompt, {new_tokens} new tokens, greedy, best of {repeats} interleaved rounds")
    for name, seconds in results.items():
        print(f"  {name:<32} {seconds:6.2f} s   {new_tokens / seconds:6.1f} new tokens/s")
    hf_rate = new_tokens / results["transformers generate (fp32)"]
    print(f"  gptbook cache / transformers        {results['transformers generate (fp32)'] / results['gptbook, KV cache (fp32)']:.2f}x")
    print(f"  gptbook cache / gptbook no cache    {results['gptbook, no cache (fp32)'] / results['gptbook, KV cache (fp32)']:.2f}x")
    print(f"  gptbook bf16 / transformers fp32    {new_tokens / results['gptbook, KV cache (bf16)'] / hf_rate:.2f}x")
    print(f"  bf16 prepacked / bf16 plain         {results['gptbook, bf16, no prepacking'] / results['gptbook, KV cache (bf16)']:.2f}x")
    print(f"  same tokens as transformers: {out_ours.tolist() == out_hf.tolist()}")
    same = (out_bf16[0, 16:] == out_ours[0, 16:]).tolist()
    first_diff = same.index(False) if False in same else len(same)
    print(f"  bf16 greedy tokens equal to fp32: {sum(same)}/{new_tokens} (identical up to token {first_diff})")

    # --- One forward pass over a full context ----------------------------------------------------
    long = torch.randint(0, 50257, (1, 1024), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        t_ours = best_of(lambda: ours(long), repeats + 1)
        t_hf = best_of(lambda: hf(long), repeats + 1)
    print("\nNo-grad forward pass, 1 x 1024 tokens, best of", repeats + 1)
    print(f"  gptbook {t_ours:.3f} s, transformers {t_hf:.3f} s, ratio gptbook/transformers {t_ours / t_hf:.2f}")

    peak = subprocess.run([sys.executable, __file__, "--peak-memory-child"], capture_output=True, text=True, check=True)
    print(f"\nPeak memory (RSS) building GPTModel(GPT_CONFIG_124M) + that forward pass: {float(peak.stdout):.0f} MB")


if __name__ == "__main__":
    main()
