"""What the catalogues (``nb01`` ... ``nb10``) share: seeded random inputs, the small model configuration,
how a class answer is run, the dropout mistake and its note."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch

from ..config import GPT_CONFIG_124M
from ..model import GPTModel
from ..tokenizer import EOT_TEXT
from .spec import Mistake

EOT = {EOT_TEXT}  # allowed_special for encoding text with <|endoftext|>


def _rand(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _ids(seed: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed))


_DROPOUT_SEED = 1234


def _dropout_note(label: str, args: tuple) -> Optional[str]:
    """What a dropout case of 04.2, 05.3 or 06.1 tests, for its failure message."""
    if args[-1] == "train":
        return ("In training mode the check seeds PyTorch's random generator for your module and for the reference "
                "alike, so the same dropout masks come out only if each dropout sits where GPT-2 has it and is "
                "drawn once, in the same order (nn.Dropout or F.dropout(..., training=self.training)).")
    if "evaluation mode" in label:
        return "In evaluation mode (after model.eval()) dropout must do nothing."
    return None


def _run_module(reference_cls, takes_cfg: bool = False):
    """How a class answer runs: build it with the case's arguments, copy the reference's (randomised)
    weights into it by name, and call it. ``run.prepare`` builds the reference once, outside the time
    budget."""

    def prepare(args):
        ctor, seed, inputs, *mode = args
        torch.manual_seed(seed)
        ref = reference_cls(ctor) if takes_cfg else reference_cls(**ctor)
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in ref.named_parameters():
                if name.endswith("scale"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
                elif name.endswith(("shift", "bias")):
                    p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        return (ctor, ref.state_dict(), inputs, *mode)

    def run(answer, args):
        ctor, want, inputs, *mode = args
        mine = answer(ctor) if takes_cfg else answer(**ctor)
        have = mine.state_dict()
        missing = [k for k in want if k not in have]
        extra = [k for k in have if k not in want]
        if missing or extra:
            raise ValueError(
                f"the parameters are named differently from {reference_cls.__name__}'s: "
                + (f"missing {', '.join(missing[:3])}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {', '.join(extra[:3])}" if extra else "")
            )
        for k in want:
            if have[k].shape != want[k].shape:
                raise ValueError(f"parameter {k} has shape {tuple(have[k].shape)}, expected {tuple(want[k].shape)}")
        mine.load_state_dict(want)
        # A case marked "train" runs in training mode, where dropout is on: the same seed draws the same
        # masks as the reference's when the dropout sits where GPT-2 has it (and is drawn in the same order).
        mine.train(mode == ["train"])
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(_DROPOUT_SEED)
            return mine(*inputs)

    run.prepare = prepare
    return run


def _dropout_in_eval(module: str, answer) -> Mistake:
    """The mistake of 04.2, 05.3 and 06.1 where ``module`` (an nn.Dropout) is replaced by F.dropout(x, p)."""
    return Mistake("dropout stays on in evaluation mode",
                   f"F.dropout(x, p) drops in every mode unless you pass training=self.training; the module "
                   f"self.{module} follows model.train() / model.eval() by itself.", answer=answer)


def _run_no_grad(answer, args):
    with torch.no_grad():
        return answer(*args)


# Small random models: 100 tokens, 16 dimensions, 4 heads of 4 dimensions, 2 layers, context 8.
_GPT_CFG = {**GPT_CONFIG_124M, "vocab_size": 100, "emb_dim": 16, "n_heads": 4, "n_layers": 2,
            "context_length": 8, "drop_rate": 0.0}


@lru_cache(maxsize=4)
def _tiny_state(seed: int, n_layers: int) -> dict:
    """The weights of a small random model (cached: only tensors, copied into every model handed out)."""
    torch.manual_seed(seed)
    return GPTModel({**_GPT_CFG, "n_layers": n_layers}).state_dict()


def _tiny_model(seed: int, n_layers: int = 2) -> GPTModel:
    """A fresh small random model in evaluation mode, the same weights for the same seed. Never cached
    itself: learner code gets it, and a wrong answer that changes its weights must not reach a later check."""
    model = GPTModel({**_GPT_CFG, "n_layers": n_layers})
    model.load_state_dict(_tiny_state(seed, n_layers))
    return model.eval()
