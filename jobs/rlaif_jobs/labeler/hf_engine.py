"""Plain transformers engine: the fallback where vLLM is unavailable, and the benchmark's baseline.

Scoring runs left-padded batches of ``batch_size`` prompts through one forward pass each and reads
the last position's log-softmax; with ``batch_size=1`` it is the straightforward loop (one prompt per
forward pass). Generation uses ``model.generate`` (greedy at temperature 0).
"""

from __future__ import annotations

from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.labeler.base import (
    EngineError,
    EngineLoadError,
    Query,
    encode_continuation,
    encode_prompt,
    token_continuation_logprobs,
)
from rlaif_jobs.labeler.loading import load_tokenizer, resolve_checked

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


class TransformersEngine:
    """A labeler run by ``AutoModelForCausalLM`` in this process."""

    def __init__(self, spec: LabelerSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        path = resolve_checked(spec.model)
        self.model_name = spec.model.uri
        self.tokenizer = load_tokenizer(spec.model, path)
        self.batch_size = spec.batch_size
        dtype = "auto" if spec.model.dtype == "auto" else getattr(torch, spec.model.dtype)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                path, dtype=dtype, revision=spec.model.revision, trust_remote_code=spec.model.trust_remote_code
            )
        except Exception as err:  # OSError, ValueError, safetensors errors
            raise EngineLoadError(f"labeler model {spec.model.uri}: transformers cannot load it ({err})") from None
        self.model.eval()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

    def _batches(self, items: list) -> list[list]:
        return [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]

    def _pad_left(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
        return ids, mask

    def _next_token_logprobs(self, queries: list[Query]) -> list[dict[int, float]]:
        import torch

        answers: list[dict[int, float]] = []
        # long prompts together: less padding per batch
        order = sorted(range(len(queries)), key=lambda i: len(queries[i][0]))
        by_index: dict[int, dict[int, float]] = {}
        for chunk in self._batches(order):
            ids, mask = self._pad_left([queries[i][0] for i in chunk])
            # positions count real tokens only, so a left-padded prompt scores as it would alone
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            try:
                with torch.inference_mode():
                    logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
            except Exception as err:
                raise EngineError(f"transformers forward pass failed: {err}") from err
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, i in enumerate(chunk):
                wanted = queries[i][1]
                by_index[i] = dict(zip(wanted, logprobs[row, wanted].tolist()))
        answers = [by_index[i] for i in range(len(queries))]
        return answers

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        prompt_ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        cont_ids = [encode_continuation(self.tokenizer, c) for c in continuations]
        return token_continuation_logprobs(prompt_ids, cont_ids, self._next_token_logprobs)

    def generate(self, prompts: list[str], max_tokens: int, temperature: float = 0.0) -> list[tuple[str, int]]:
        import torch

        results: dict[int, tuple[str, int]] = {}
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        eos = self.tokenizer.eos_token_id
        for chunk in self._batches(order):
            ids, mask = self._pad_left([encoded[i] for i in chunk])
            kwargs = dict(max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                          do_sample=temperature > 0)
            if temperature > 0:
                kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
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
                results[i] = (self.tokenizer.decode(new, skip_special_tokens=True), len(new))
        return [results[i] for i in range(len(prompts))]

    def close(self) -> None:
        self.model = None
        import gc

        gc.collect()
