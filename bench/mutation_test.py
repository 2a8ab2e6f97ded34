"""Mutation testing for gptbook's core: plant one small bug at a time and check that a fast test fails.

    python bench/mutation_test.py                      # every mutant of the core modules (slow: hours on 2 cores)
    python bench/mutation_test.py --sample 20          # 20 mutants per module, drawn with a fixed seed
    python bench/mutation_test.py --module attention   # one module
    python bench/mutation_test.py --planted            # the six bugs the fast tests must catch (a few minutes)
    python bench/mutation_test.py --list --module layers   # show the mutants, run nothing

A developer's tool, not run in CI. Each mutant is one change to the syntax tree of one function
(``+`` <-> ``-``, ``*`` <-> ``/``, ``<`` <-> ``<=``, ``and`` <-> ``or``, ``not x`` -> ``x``, ``-x`` -> ``x``,
an integer ``n`` -> ``n + 1``, a float ``x`` -> ``2 x``, ``True`` <-> ``False``, ``x[a:b]`` -> ``x[:b]`` / ``x[a:]``);
strings and docstrings are left alone. The mutated module is written into a copy of the repository
(the working tree is never touched) and only the fast library tests of that module run there
(no notebooks, no browser), stopping at the first failure. A mutant that no test kills is printed
with its line: either a test is missing, or the mutant is equivalent (same behaviour).
Keep the surviving count at zero for attention, generation, model, layers, the loading of GPT-2 weights
(loading/hf_gpt2, loading/state) and the loss.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: module -> (the fast tests that guard it, the functions to mutate; None = all of them)
MODULES = {
    "attention": (["tests/test_model.py", "tests/test_generation.py"], None),
    "generation": (["tests/test_generation.py"], None),
    "model": (["tests/test_model.py", "tests/test_generation.py", "tests/test_weights.py"], None),  # from_pretrained
    "layers": (["tests/test_model.py"], None),
    "loading/hf_gpt2": (["tests/test_weights.py"], None),  # was weights.py
    "loading/state": (["tests/test_weights.py", "tests/test_loading.py", "tests/test_checkpoint.py"], None),
    "training/loss": (["tests/test_training.py"],  # the loss only (training.py became a package, issue 19)
                      {"forward", "backward", "chunked_cross_entropy", "hidden_states", "model_loss"}),
    "training/trainer": (["tests/test_ddp.py"], {"_all_reduce_mean"}),  # the DDP mean only
}
TEST_SELECTION = {"training/loss": ["-k", "loss or chunk or several"], "training/trainer": ["-k", "ddp_steps"]}

#: The six bugs the fast library tests alone must catch: (module, text, replacement, what it breaks, tests).
PLANTED = [
    ("attention", "torch.ones(context_length, context_length, dtype=torch.bool, device=device), diagonal=1)",
     "torch.ones(context_length, context_length, dtype=torch.bool, device=device), diagonal=2)", "a broken causal mask",
     ["tests/test_model.py"]),
    ("attention", "mask = self.mask[n_keys - num_tokens:n_keys, :n_keys]", "mask = self.mask[:num_tokens, :n_keys]",
     "a broken cache (new tokens masked as if they came first)", ["tests/test_generation.py", "-k", "cache"]),
    ("generation", "drop = drop_sorted.scatter(-1, sorted_idx, drop_sorted)", "drop = drop_sorted",
     "a broken sampler (the nucleus not mapped back to vocabulary order)",
     ["tests/test_generation.py", "-k", "top_p or top_k or filter"]),
    ("training/loss", "grad_w.addmm_(probs.T, h.float(), alpha=1.0 / n)", "grad_w.addmm_(probs.T, h.float(), alpha=1.0 / len(t))",
     "a broken loss gradient (the weight's gradient averaged per chunk)",
     ["tests/test_training.py", "-k", "chunk or several"]),
    ("loading/hf_gpt2", 'sd[ours + "norm1.scale"], sd[ours + "norm1.shift"] = get(h + "ln_1.weight"), get(h + "ln_1.bias")',
     'sd[ours + "norm1.scale"], sd[ours + "norm1.shift"] = get(h + "ln_2.weight"), get(h + "ln_1.bias")',
     "a broken weight mapping (ln_2 loaded into norm1)", ["tests/test_weights.py", "-k", "logits"]),
    ("training/trainer", "return float(t.item()) / self.world_size", "return float(t.item())", "a broken DDP mean",
     ["tests/test_ddp.py", "-k", "ddp_steps"]),
]


#: Mutants reviewed as equivalent: no input the code can receive behaves differently, so no test can
#: catch them. Key: (module, the source line stripped, the change, which such change on that line).
#: They still run; one that survives is reported as "equivalent", not counted as a survivor. When a
#: line is edited its key no longer matches and the mutant shows up as a survivor again: review it anew.
_LAST_DIM = "dim=-1 -> dim=1 on a 2-D (batch, vocab) tensor: the same axis"
EQUIVALENT = {
    ("generation", "probas = torch.softmax(logits, dim=-1)", "drop USub", 1): _LAST_DIM,
    ("generation", "idx_next = torch.argmax(probas, dim=-1, keepdim=True)  # (b, 1)", "drop USub", 1): _LAST_DIM,
    ("generation", "if top_k is not None and top_k < logits.shape[-1]:", "drop USub", 1): _LAST_DIM,
    ("generation", "if top_k is not None and top_k < logits.shape[-1]:", "Lt -> LtE", 1):
        "top-k of the whole vocabulary: the k-th largest is the smallest logit, so nothing is masked either way",
    ("generation", "kth_largest = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (b, 1)", "drop USub", 1): _LAST_DIM,
    ("generation", "sorted_logits, sorted_idx = torch.sort(logits, descending=True, stable=True, dim=-1)",
     "drop USub", 1): _LAST_DIM,
    ("generation", "cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)", "drop USub", 1): _LAST_DIM,
    ("generation", "cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)", "drop USub", 2): _LAST_DIM,
    ("generation", "drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p", "drop USub", 1):
        _LAST_DIM,
    ("generation", "drop = drop_sorted.scatter(-1, sorted_idx, drop_sorted)", "drop USub", 1): _LAST_DIM,
    ("generation", "elif use_cache and seq.shape[1] <= context_size:", "LtE -> Lt", 1):
        "a prompt exactly as long as the context: its first token is computed without a cache, the same tokens "
        "(the next step slides past the context anyway)",
    ("generation", "idx_next = torch.argmax(logits, dim=-1, keepdim=True)  # greedy: (b, 1)", "drop USub", 1): _LAST_DIM,
    ("generation", "probs = torch.softmax(logits, dim=-1)", "drop USub", 1): _LAST_DIM,
    ("generation", "yield (idx_next, torch.softmax(logits, dim=-1)) if return_probs else idx_next", "drop USub", 1):
        _LAST_DIM,
    ("attention", "if num_tokens == 1:  # one new token: it may see every cached key", "1 -> 2", 1):
        "one new token then takes the masked branch, whose mask row hides no cached key: the same result",
    ("attention", "elif self.training and self.dropout.p > 0 and self.dropout.generator is not None:", "Gt -> GtE", 1):
        "dropout rate 0 with a generator then takes the explicit path, which computes the same attention (slower)",
    ("attention", "elif self.training and self.dropout.p > 0 and self.dropout.generator is not None:", "And -> Or", 1):
        "more cases take the explicit path (eval mode, or dropout from the global generator): it computes what the "
        "fused kernel does, with the same dropout masks on the CPU, only slower",
    ("attention", "scores = (queries * scale) @ (keys.transpose(-2, -1) * scale)  # (b, num_heads, num_tokens, n_keys)",
     "drop USub", 1): "keys are 4-D here, so dimension 2 is dimension -2",
    ("training/loss", "probs = log_probs.clamp_(min=-70.0).exp_()", "70.0 -> 140.0", 1):
        "a lower floor for the probabilities: below e^-70 they change the gradient by < 1e-25 either way; "
        "only the speed differs (denormal floats)",
    ("model", "if dtype is not None or device is not None:", "IsNot -> Is", 2):
        "with device None and dtype None, model.to() changes nothing",
    ("layers", "if self.generator is None or not self.training or self.p == 0:", "0 -> 1", 1):
        "rate 0 then multiplies by a mask of ones (the same output; only the private generator moves on), and rate "
        "1 takes nn.Dropout's path, which drops everything as dropout_noise does",
}


class _Mutator(ast.NodeTransformer):
    """Visits the tree; the ``target``-th mutation point is changed, the others are only counted."""

    SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
             ast.Pow: ast.Mult, ast.MatMult: ast.Mult, ast.Mod: ast.FloorDiv,
             ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In,
             ast.And: ast.Or, ast.Or: ast.And}

    def __init__(self, functions, target=-1):
        self.functions, self.target, self.count, self.where = functions, target, 0, None
        self._stack: list[str] = []

    def _point(self, node, description):
        hit = self.count == self.target
        if hit:
            self.where = (node.lineno, description)
        self.count += 1
        return hit

    def _active(self):
        return self.functions is None or bool(set(self._stack) & self.functions)

    def visit_FunctionDef(self, node):
        self._stack.append(node.name)
        if ast.get_docstring(node) is not None:  # leave the docstring alone
            node.body = node.body[:1] + [self.visit(s) for s in node.body[1:]]
        else:
            self.generic_visit(node)
        self._stack.pop()
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._stack.append(node.name)
        self.generic_visit(node)
        self._stack.pop()
        return node

    def visit_Raise(self, node):  # error messages and their formatting are not what the tests pin
        return node

    def visit_JoinedStr(self, node):
        return node

    def _swap_op(self, node, attr):
        op = getattr(node, attr)
        new = self.SWAPS.get(type(op))
        if new is not None and self._active() and self._point(node, f"{type(op).__name__} -> {new.__name__}"):
            setattr(node, attr, new())
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return self._swap_op(node, "op")

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        return self._swap_op(node, "op")

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        return self._swap_op(node, "op")

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1:
            new = self.SWAPS.get(type(node.ops[0]))
            if new is not None and self._active() and self._point(node, f"{type(node.ops[0]).__name__} -> {new.__name__}"):
                node.ops = [new()]
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Not, ast.USub)) and self._active() and self._point(node, f"drop {type(node.op).__name__}"):
            return node.operand
        return node

    def visit_Constant(self, node):
        if not self._active() or isinstance(node.value, str) or node.value is None:
            return node
        if isinstance(node.value, bool):
            if self._point(node, f"{node.value} -> {not node.value}"):
                return ast.copy_location(ast.Constant(not node.value), node)
        elif isinstance(node.value, int):
            if self._point(node, f"{node.value} -> {node.value + 1}"):
                return ast.copy_location(ast.Constant(node.value + 1), node)
        elif isinstance(node.value, float):
            if self._point(node, f"{node.value} -> {node.value * 2 or 1.0}"):
                return ast.copy_location(ast.Constant(node.value * 2 or 1.0), node)
        return node

    def visit_Slice(self, node):
        self.generic_visit(node)
        if self._active() and node.lower is not None and self._point(node, "drop the slice's start"):
            node.lower = None
        elif self._active() and node.upper is not None and self._point(node, "drop the slice's end"):
            node.upper = None
        return node


def mutants(source: str, functions):
    """Every (line, description, mutated source) of one module."""
    tree = ast.parse(source)
    counter = _Mutator(functions)
    counter.visit(copy.deepcopy(tree))
    for i in range(counter.count):
        mutator = _Mutator(functions, target=i)
        new = ast.fix_missing_locations(mutator.visit(copy.deepcopy(tree)))
        yield mutator.where[0], mutator.where[1], ast.unparse(new)


def run_tests(copy_root: Path, tests: list[str], timeout: float) -> bool:
    """True if the fast tests (pytest arguments) pass on the copy (the mutant survives)."""
    env = {**os.environ, "PYTHONPATH": str(copy_root), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", *tests]
    try:
        run = subprocess.run(cmd, cwd=copy_root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False  # a mutant that hangs is caught (by the time limit)
    return run.returncode == 0


def make_copy() -> Path:
    root = Path(tempfile.mkdtemp(prefix="gptbook-mutants-"))
    for name in ("gptbook", "tests"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--module", action="append", choices=sorted(MODULES), help="module(s) to mutate (default: all)")
    p.add_argument("--sample", type=int, default=None, help="at most this many mutants per module (fixed seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant before it counts as caught")
    p.add_argument("--list", action="store_true", help="print the mutants and run nothing")
    p.add_argument("--planted", action="store_true", help="run the six planted bugs only")
    args = p.parse_args(argv)

    root = make_copy()
    try:
        if args.planted:
            unplanted = [tests for *_, tests in PLANTED if not run_tests(root, tests, args.timeout)]
            if unplanted:  # the control: without a planted bug every selection must pass
                print(f"the tests fail without any planted bug: {unplanted}")
                return 2
            missed = 0
            for module, old, new, what, tests in PLANTED:
                path = root / "gptbook" / f"{module}.py"
                original = path.read_text(encoding="utf-8")
                assert original.count(old) == 1, f"planted bug for {what!r} no longer applies: update PLANTED"
                path.write_text(original.replace(old, new), encoding="utf-8")
                started = time.perf_counter()
                survived = run_tests(root, tests, args.timeout)
                path.write_text(original, encoding="utf-8")
                missed += survived
                print(f"{'MISSED' if survived else 'caught'}: {what} ({module}, {time.perf_counter() - started:.0f} s)",
                      flush=True)
            return 1 if missed else 0

        total_survivors = 0
        for module in args.module or list(MODULES):
            tests, functions = MODULES[module]
            path = root / "gptbook" / f"{module}.py"
            original = path.read_text(encoding="utf-8")
            found = list(mutants(original, functions))
            if args.sample is not None and len(found) > args.sample:
                found = sorted(random.Random(args.seed).sample(found, args.sample))
            survivors, equivalent, seen = [], [], {}
            lines = original.splitlines()
            for i, (line, what, source) in enumerate(found, 1):
                seen[line, what] = seen.get((line, what), 0) + 1  # the k-th such change on this line
                reason = EQUIVALENT.get((module, lines[line - 1].strip(), what, seen[line, what]))
                if args.list:
                    print(f"{module}.py:{line}: {what}" + (f"  (equivalent: {reason})" if reason else ""))
                    continue
                path.write_text(source, encoding="utf-8")
                started = time.perf_counter()
                survived = run_tests(root, [*tests, *TEST_SELECTION.get(module, [])], args.timeout)
                verdict = ("equivalent" if reason else "SURVIVED") if survived else "caught"
                print(f"  [{i}/{len(found)}] {verdict}: {module}.py:{line}: {what} ({time.perf_counter() - started:.0f} s)"
                      + (f" -- {reason}" if survived and reason else ""), flush=True)
                if survived:
                    (equivalent if reason else survivors).append((line, what))
            path.write_text(original, encoding="utf-8")
            if not args.list:
                print(f"{module}: {len(found)} mutants, {len(survivors)} survived, "
                      f"{len(equivalent)} reviewed as equivalent", flush=True)
            total_survivors += len(survivors)
        return 1 if total_survivors else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
