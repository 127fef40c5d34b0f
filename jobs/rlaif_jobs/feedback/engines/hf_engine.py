"""The transformers engine: labels in this process with ``AutoModelForCausalLM``, no vLLM.

Scoring reads the log-softmax at the answer positions (teacher forcing over multi-token continuations).
With ``enablePrefixCaching`` (the default) the prompts of one call go through ``prefix_tree``: the
prefix they all share runs once, and the rest is packed into rows where every shared token (a pair's
text before its candidates, the prompt before "1" and "2") is computed once, without padding. Rows run
through ``tree_runner`` for Llama-family models (one GEMM per matmul per row, attention per trie node),
else through ``model(...)`` with a 4-D mask and a transformers KV cache (``_ModelRows``). Without
it, left-padded batches of ``batchSize`` prompts run one forward each; ``batchSize`` 1 is the plain
loop (one prompt, i.e. one pair in one order, per pass), the benchmark's baseline.
Generation uses ``model.generate`` (greedy at temperature 0).
"""

from __future__ import annotations

import time
from typing import Any

from rlaif_jobs import progress
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines import tree_runner
from rlaif_jobs.feedback.engines.base import (
    EngineError,
    EngineLoadError,
    encode_continuation,
    encode_prompt,
)
from rlaif_jobs.feedback.engines.loading import load_tokenizer, resolve_weights
from rlaif_jobs.feedback.engines.prefix_tree import Pop, Row, plan
from rlaif_jobs.packed_attention import additive_mask

# Tokens per packed row: big enough for efficient matrix products (CPU GEMMs lose much of their speed
# under ~1000 rows), small enough that a row's activations stay small. With model(...) (no
# tree_runner) each row also builds a dense [T, T] mask per layer: there 512 is cheaper.
ROW_TOKENS = 2048
MODEL_ROW_TOKENS = 512


def _crop(cache: Any, keep: int) -> None:
    """Shortens a transformers KV cache to its first ``keep`` tokens (no-op for None or a shorter one)."""
    if cache is not None and cache.get_seq_length() > keep:
        cache.crop(keep - cache.get_seq_length())  # a negative count: remove that many from the end


class _ModelRows:
    """prefix_tree rows through ``model(...)`` (any decoder that takes position ids and a 4-D mask): the
    cache is a transformers KV cache; a row appends its keys and values, then all but its kept tokens'
    are cropped. Same interface as tree_runner.TreeRunner."""

    def __init__(self, model: Any, device: Any) -> None:
        self.model, self.device = model, device
        self.dtype = next(model.parameters()).dtype
        self.cache: Any = None
        self.ctx = 0

    def start(self, ops: list[Row | Pop]) -> None:
        self.cache, self.ctx = None, 0

    def pop(self, n: int) -> None:
        self.ctx -= n
        _crop(self.cache, self.ctx)

    def finish(self) -> None:
        self.cache = None

    def row(self, op: Row, keep: list[int]) -> Any:
        """Logits [len(keep), vocab] at the row's positions ``keep``."""
        import torch

        allowed = op.allowed().to(self.device)
        if self.ctx:
            allowed = torch.cat([allowed.new_ones(allowed.shape[0], self.ctx), allowed], dim=1)
        result = self.model(
            input_ids=torch.tensor([op.input_ids], device=self.device),
            position_ids=torch.tensor([op.position_ids], device=self.device),
            attention_mask=additive_mask(allowed, self.dtype), past_key_values=self.cache, use_cache=True,
            logits_to_keep=torch.tensor(keep or [len(op.input_ids) - 1], device=self.device))
        self.cache = result.past_key_values
        self.ctx += op.keep
        _crop(self.cache, self.ctx)  # the row's other keys and values: no later op may see them
        return result.logits[0, :len(keep)]


class TransformersEngine:
    """A labeler run by ``AutoModelForCausalLM`` in this process."""

    def __init__(self, spec: LabelerSpec) -> None:
        path = resolve_weights(spec.model)  # before the heavy imports: a wrong path fails in a second

        import torch
        from transformers import AutoModelForCausalLM

        self.model_name = spec.model.uri
        self.tokenizer = load_tokenizer(spec.model, path)
        self.batch_size = spec.batch_size
        self.prefix_sharing = spec.enable_prefix_caching
        # scoring tokens asked for and tokens run through the model (fewer with prefix sharing; pads count)
        self.prompt_tokens = self.computed_tokens = 0
        dtype = "auto" if spec.model.dtype == "auto" else getattr(torch, spec.model.dtype)
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype, revision=spec.model.revision, trust_remote_code=spec.model.trust_remote_code
            )
        except Exception as err:  # OSError, ValueError, safetensors errors
            raise EngineLoadError(f"labeler model {spec.model.uri}: transformers cannot load it ({err})") from None
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model: Any = model.eval().to(self.device)
        # the fast row runner where the model's layers are the plain Llama kind (it fuses q|k|v and gate|up
        # in place: same weights, generate unchanged); why not, else (kept for the log and tests)
        self.runner_problem = tree_runner.problem(self.model)
        self.runner: Any = tree_runner.TreeRunner(self.model) if self.runner_problem is None else None

    def _batches(self, items: list) -> list[list]:
        return [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]

    def _pad_left(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _forward_logprobs(self, seqs: list[list[int]], last: int, per_prompt: int = 1) -> list:
        """log-softmax rows [last, vocab] for the final ``last`` positions of each sequence (``per_prompt``
        consecutive sequences belong to one prompt: progress counts prompts)."""
        if self.prefix_sharing:
            return self._shared_prefix_logprobs(seqs, last, per_prompt)
        return self._padded_logprobs(seqs, last)

    def _shared_prefix_logprobs(self, seqs: list[list[int]], last: int, per_prompt: int = 1) -> list:
        """As _padded_logprobs, each shared token computed once: runs prefix_tree's plan (a Row reads the
        cache and keeps its first ``keep`` tokens there, Pop drops them) on tree_runner or _ModelRows."""
        import torch

        out: list[list] = [[None] * last for _ in seqs]
        self.prompt_tokens += sum(len(s) for s in seqs)
        total, missing, reported = len(seqs) // per_prompt, [last] * len(seqs), 0.0
        done = 0
        progress.report("scoring", 0, total, "prompts")
        runner = self.runner or _ModelRows(self.model, self.device)
        ops = plan(seqs, last, ROW_TOKENS if self.runner is not None else MODEL_ROW_TOKENS)
        try:
            with torch.inference_mode():
                runner.start(ops)
                for op in ops:
                    if isinstance(op, Pop):
                        runner.pop(op.n)
                        continue
                    self.computed_tokens += len(op.input_ids)
                    keep = sorted({idx for _, _, idx in op.reads})
                    logprobs = torch.log_softmax(runner.row(op, keep).float(), dim=-1)
                    at = {idx: j for j, idx in enumerate(keep)}
                    for i, slot, idx in op.reads:
                        out[i][slot] = logprobs[at[idx]]
                        missing[i] -= 1
                        done += missing[i] == 0
                    if time.monotonic() - reported > 1.0:  # the console's "scoring 40/96 prompts"
                        progress.report("scoring", done // per_prompt, total, "prompts")
                        reported = time.monotonic()
            progress.report("scoring", total, total, "prompts")
        except Exception as err:
            raise EngineError(f"transformers forward pass failed: {err}") from err
        finally:
            runner.finish()
        return [torch.stack(rows) for rows in out]

    def _padded_logprobs(self, seqs: list[list[int]], last: int) -> list:
        """log-softmax rows for the final ``last`` positions of each sequence, in left-padded batches."""
        import torch

        rows: dict[int, torch.Tensor] = {}
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # similar lengths: less padding
        for chunk in self._batches(order):
            ids, mask = self._pad_left([seqs[i] for i in chunk])
            self.prompt_tokens += int(mask.sum())
            self.computed_tokens += ids.numel()
            # positions count real tokens only, so a left-padded prompt scores as it would alone
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            try:
                with torch.inference_mode():
                    logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                                        logits_to_keep=last).logits[:, -last:]
            except Exception as err:
                raise EngineError(f"transformers forward pass failed: {err}") from err
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(chunk):
                rows[i] = logprobs[row]
        return [rows[i] for i in range(len(seqs))]

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        """Teacher forcing: one forward pass over prompt + the longest shared token path reads every
        continuation on that path, e.g. prompt + [" "] scores "1", "2" (at the prompt's end) and
        " 1", " 2" (one position later) at once: one pass per prompt, as a plain loop would do."""
        cont_ids = [encode_continuation(self.tokenizer, c) for c in continuations]
        heads = {tuple(c[:-1]) for c in cont_ids}
        paths = sorted(h for h in heads if not any(o != h and o[:len(h)] == h for o in heads))
        path_of = [next(i for i, m in enumerate(paths) if m[:len(c) - 1] == tuple(c[:-1])) for c in cont_ids]
        depth = max(len(m) for m in paths) + 1
        seqs: list[list[int]] = []
        where: dict[tuple[int, int], int] = {}
        for p, text in enumerate(prompts):
            ids = encode_prompt(self.tokenizer, text)
            for m, path in enumerate(paths):
                where[(p, m)] = len(seqs)
                seqs.append([*ids, *path])
        rows = self._forward_logprobs(seqs, depth, per_prompt=len(paths))
        out: list[list[float | None]] = []
        for p in range(len(prompts)):
            row_out: list[float | None] = []
            for c, cont in enumerate(cont_ids):
                m = path_of[c]
                table = rows[where[(p, m)]]
                start = depth - 1 - len(paths[m])  # the row that predicts the token after the prompt
                row_out.append(float(sum(table[start + k, t] for k, t in enumerate(cont))))
            out.append(row_out)
        return out

    def generate(self, prompts: list[str], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 seed: int = 0) -> list[tuple[str, int]]:
        import torch

        if temperature > 0:
            torch.manual_seed(seed)

        results: dict[int, tuple[str, int]] = {}
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        eos = self.tokenizer.eos_token_id
        for chunk in self._batches(order):
            ids, mask = self._pad_left([encoded[i] for i in chunk])
            kwargs = dict(max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                          do_sample=temperature > 0)
            if temperature > 0:
                kwargs.update(temperature=temperature, top_p=1.0, top_k=top_k)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            try:
                with torch.inference_mode():
                    out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            except Exception as err:
                raise EngineError(f"transformers generate failed: {err}") from err
            for row, i in enumerate(chunk):
                new = out[row, ids.shape[1]:].tolist()
                if eos is not None and eos in new:
                    new = new[:new.index(eos) + 1]  # count the EOS it produced, like vLLM does
                results[i] = (str(self.tokenizer.decode(new, skip_special_tokens=True)), len(new))
        return [results[i] for i in range(len(prompts))]

    def close(self) -> None:
        self.model = None
        import gc

        gc.collect()
