"""Command line: continue a prompt with a trained checkpoint or with OpenAI's GPT-2 weights.

    python -m gptbook.generate runs/tiny --prompt "Once upon a time"
    python -m gptbook.generate path/to/gpt2 --prompt "Hello, I am" --temperature 0   # greedy
    python -m gptbook.generate runs/tiny --top-p 0.9 --max-new-tokens 200 --seed 7

``MODEL`` is a checkpoint folder written by ``python -m gptbook.train`` (it holds
``checkpoint.json``), or a Hugging Face GPT-2 folder (``config.json`` + ``model.safetensors``)
or model id, loaded with ``GPTModel.from_pretrained``. Text is printed as it is generated.

The library functions are in ``gptbook.generation`` (``generate``, ``generate_stream``).
``gptbook/generate.py`` only starts this module's ``main``: importing it would replace the
function ``gptbook.generate`` by a module of the same name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch

from .checkpoint import META_FILE, CheckpointError, load_checkpoint
from .generation import generate_stream
from .tokenizer import EOT_ID, get_tokenizer, text_to_token_ids
from .training import choose_device


def load_model(source: str, device: torch.device) -> torch.nn.Module:
    """A gptbook checkpoint folder, or else GPT-2 weights via ``GPTModel.from_pretrained``; in eval mode."""
    path = Path(source)
    if (path / META_FILE).is_file():
        model = load_checkpoint(path, device=device)
    else:
        from .model import GPTModel

        model = GPTModel.from_pretrained(source, device=device)
    return model.to(device).eval()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gptbook.generate",
        description="Continue a prompt with a gptbook checkpoint or GPT-2 weights.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="checkpoint folder, Hugging Face GPT-2 folder, or model id (e.g. gpt2)")
    p.add_argument("--prompt", default="Once upon a time", help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=100)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (always the most likely token)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling threshold, e.g. 0.9")
    p.add_argument("--seed", type=int, default=123, help="random seed (the same seed gives the same text)")
    p.add_argument("--no-eos", action="store_true", help="keep going past <|endoftext|>")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps, ...")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    args = build_parser().parse_args(argv)
    device = choose_device(args.device)
    try:
        model = load_model(args.model, device)
    except (CheckpointError, ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: cannot load {args.model!r}: {exc}", file=sys.stderr)
        return 2
    tokenizer = get_tokenizer()
    idx = text_to_token_ids(args.prompt, tokenizer).to(device)  # (1, n)
    context = model.cfg["context_length"]
    if idx.shape[1] > context:
        idx = idx[:, -context:]  # the model sees at most its context length
    print(args.prompt, end="", flush=True)
    new_ids: list[int] = []
    printed = ""
    stream = generate_stream(
        model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k or None,
        top_p=args.top_p, eos_id=None if args.no_eos else EOT_ID, seed=args.seed,
    )
    for token in stream:  # (1, 1) per step
        token_id = int(token[0, 0])
        if token_id == EOT_ID and not args.no_eos:
            break
        new_ids.append(token_id)
        text = tokenizer.decode(new_ids)
        if not text.endswith("\ufffd"):  # wait until a character split over tokens is complete
            print(text[len(printed):], end="", flush=True)
            printed = text
    text = tokenizer.decode(new_ids)
    print(text[len(printed):], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
