"""Head scores and ablations of a model the lab trained: which heads copy, and what breaks without them.

    python tools/induction_lab/circuit.py runs/induction_lab/S2.pt [--layers 4 --emb 128 --heads 4]

Prints the previous-token scores (on a v2 validation story) and induction scores of every head, the induction
accuracy and the probes, then the same with the strongest induction heads switched off one, two and three at a
time, and with the strongest previous-token head switched off (``gptbook.interpret.ablate``).
"""

from __future__ import annotations

import argparse

import torch

from gptbook import GPTModel, get_config
from gptbook.training import probes
from gptbook.training.corpus import STORY_SEPARATOR, load_corpus
from gptbook.interpret import ablate, head_scores
from gptbook.tokenizer import EOT_ID, get_tokenizer


def measure(model: GPTModel) -> str:
    found = probes.run_probes(model, n_stories=40)
    return (f"induction {probes.induction_accuracy(model)['second']:.0%} | "
            + " | ".join(f"{name} {value:.0%}" for name, value in found.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--emb", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    a = ap.parse_args()
    tokenizer = get_tokenizer()
    val = load_corpus("val")  # the bundled stories (v2 since 2026-12-05)
    cfg = get_config("tiny")
    cfg.update(emb_dim=a.emb, n_layers=a.layers, n_heads=a.heads, drop_rate=0.0)
    model = GPTModel(cfg)
    model.load_state_dict(torch.load(a.weights, weights_only=True))
    model.eval()
    story = torch.tensor(([EOT_ID] + tokenizer.encode(val.split(STORY_SEPARATOR)[0]))[:256]).unsqueeze(0)
    scores = head_scores(model, text_ids=story, n_tokens=40)
    torch.set_printoptions(precision=2)
    print("previous-token scores (layer x head):\n", scores["previous_token"])
    print("induction scores (layer x head):\n", scores["induction"])
    print("nothing off:", measure(model))
    induction = scores["induction"]
    ranked = sorted(((float(induction[l, h]), (l, h)) for l in range(a.layers) for h in range(a.heads)),
                    reverse=True)
    for k in (1, 2, 3):
        heads = [head for _, head in ranked[:k]]
        with ablate(model, heads=heads):
            print(f"induction heads {heads} off:", measure(model))
    previous = scores["previous_token"]
    head = divmod(int(previous.argmax()), a.heads)
    with ablate(model, heads=[head]):
        print(f"previous-token head {head} off:", measure(model))


if __name__ == "__main__":
    main()
