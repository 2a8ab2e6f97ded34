"""``gptbook generate``: its options, the model a name means, and the continuation printed as it comes
(``gptbook.generation.generate_stream``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .args import AT_LEAST_0, PROBABILITY, SEED, WHOLE_0, WHOLE_1, UsageError, _formatter, resolve_device

if TYPE_CHECKING:
    import torch


def _generate_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "generate", help="continue a prompt with a checkpoint or GPT-2's weights", formatter_class=_formatter,
        description="Continue a prompt with a gptbook checkpoint or GPT-2's weights; the text is printed "
                    "as it is generated.")
    p.add_argument("model", metavar="MODEL",
                   help="a checkpoint folder (gptbook train --out), a Hugging Face GPT-2 folder "
                        "(config.json + model.safetensors), or a hub id such as gpt2 (hf:ORG/NAME for one with a slash)")
    p.add_argument("--prompt", default="Once upon a time", metavar="TEXT",
                   help="the text to continue (default: 'Once upon a time')")
    p.add_argument("--max-new-tokens", type=WHOLE_1, default=100, metavar="N",
                   help="tokens to generate at most (default: 100)")
    p.add_argument("--temperature", type=AT_LEAST_0, default=0.8, metavar="T",
                   help="0: greedy (always the most likely token); higher: more varied (default: 0.8)")
    p.add_argument("--top-k", type=WHOLE_0, default=50, metavar="K",
                   help="sample among the K most likely tokens; 0: among all (default: 50)")
    p.add_argument("--top-p", type=PROBABILITY, default=None, metavar="P",
                   help="sample among the most likely tokens that together have probability P (default: off)")
    p.add_argument("--seed", type=SEED, default=123, metavar="N",
                   help="random seed: the same seed gives the same text (default: 123)")
    p.add_argument("--no-eos", action="store_true", help="keep going past <|endoftext|> (default: stop there)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)")
    p.set_defaults(run=run_generate)


def load_model(source: str, device: "torch.device") -> "torch.nn.Module":
    """The model ``generate`` names, in eval mode on ``device``: a gptbook checkpoint folder, a Hugging
    Face GPT-2 folder, or a hub id (``hf:ORG/NAME`` for one with a slash; the rule is
    ``gptbook.loading.source.locate_model``). ``UsageError`` otherwise."""
    from ..loading.checkpoint import load_checkpoint
    from ..loading.source import locate_model
    from ..model import GPTModel

    try:
        where = locate_model(source, slash_hub_ids=False)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if where.kind == "checkpoint":
            model = load_checkpoint(where.where, device=device)
        else:
            model = GPTModel.from_pretrained(where.where if where.kind == "hf-folder" else f"hf:{where.where}",
                                             device=device)
    except (ValueError, OSError) as exc:  # CheckpointError is a ValueError; so are the hub's errors
        raise UsageError(f"cannot load {source!r}: {exc}") from None
    return model.to(device).eval()


def run_generate(args: argparse.Namespace) -> int:
    """``gptbook generate``: check every option, load the model, print the continuation as it comes."""
    from ..generation import generate_stream
    from ..tokenizer import EOT_ID, get_tokenizer, text_to_token_ids

    if not args.prompt:
        raise UsageError("--prompt is empty: give some text to continue, e.g. --prompt 'Once upon a time'")
    device = resolve_device(args.device)
    model = load_model(args.model, device)
    tokenizer = get_tokenizer()
    idx = text_to_token_ids(args.prompt, tokenizer).to(device)  # (1, n)
    context = model.cfg["context_length"]
    if idx.shape[1] > context:
        print(f"note: the prompt is {idx.shape[1]} tokens long; the model sees only its last {context} "
              "(its context length)", file=sys.stderr, flush=True)
        idx = idx[:, -context:]  # (1, context)
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
    print(tokenizer.decode(new_ids)[len(printed):], flush=True)
    return 0
