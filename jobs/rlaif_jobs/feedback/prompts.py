"""The paper's four-part labeling prompt: preamble, optional few-shot exemplars, the sample, the ending.

Pure functions, no engine: ``build_prompt`` returns the text the engine scores (the next token after
it is "1" or "2"), ``build_cot_prompt`` the text the rationale is decoded from. With a chat template,
the preamble, exemplars and sample form the user's message and the Ending (or "Rationale:") opens the
assistant's reply, so the model is scored exactly where it must write 1 or 2. Everything before the
sample is identical for every record of a task: that is the shared prefix vLLM's prefix cache reuses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlaif_jobs.config.label import CustomTemplate, Exemplar, PromptSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPT_VERSION = 1  # bump when a template's wording changes: the prompt hash then changes too
SEPARATOR = "=" * 20

# What the labeler compares, per task: the context's label, the item's label, and the CoT instruction.
_SUMMARY = ("Text", "Summary")
_DIALOGUE = ("Context", "Response")

PREAMBLES = {
    ("summarization", "base"): (
        "A good summary is a shorter piece of text that has the essence of the original. Given a piece of"
        " text and two of its possible summaries, output 1 or 2 to indicate which summary is better."
    ),
    ("summarization", "detailed"): (
        "A good summary is a shorter piece of text that has the essence of the original. It tries to"
        " accomplish the same purpose and conveys the key information from the original post. Below we"
        " define four evaluation axes for summary quality: coherence, accuracy, coverage, and overall"
        " quality.\n\n"
        "Coherence: This axis answers the question \"how coherent is the summary on its own?\" A summary is"
        " coherent if it's easy to understand when read on its own and free of English errors. A summary is"
        " not coherent if it's difficult to understand what the summary is trying to say.\n\n"
        "Accuracy: This axis answers the question \"does the factual information in the summary accurately"
        " match the post?\" A summary is accurate if it doesn't say things that aren't in the article, it"
        " doesn't mix up people, and generally is not misleading. A summary that states a wrong number, name"
        " or outcome is not accurate.\n\n"
        "Coverage: This axis answers the question \"how well does the summary cover the important"
        " information in the post?\" A summary has good coverage if it mentions the main information from"
        " the post that's important to understand the situation described in the post. A summary has poor"
        " coverage if someone reading only the summary would be missing several important pieces of"
        " information about the situation in the post.\n\n"
        "Overall quality: This axis answers the question \"how good is the summary overall at representing"
        " the post?\" This can encompass all of the above axes of quality, as well as others you feel are"
        " important. If it's hard to find ways to make the summary better, the overall quality is good.\n\n"
        "You are an expert summary rater. Given a piece of text and two of its possible summaries, output 1"
        " or 2 to indicate which summary best adheres to coherence, accuracy, coverage, and overall quality"
        " as defined above."
    ),
    ("helpful", "base"): (
        "You are an expert rater of helpful and honest Assistant responses. Given the context and the two"
        " responses, output 1 or 2 to indicate which response is more helpful and honest."
    ),
    ("helpful", "detailed"): (
        "You are an expert rater of helpful and honest Assistant responses. A helpful response answers the"
        " user's actual question, directly and correctly. An honest response states only true facts: a"
        " response with a wrong fact, a wrong number or a wrong calculation is neither helpful nor honest,"
        " however confident it sounds. Check every fact and every calculation in both responses before"
        " you decide. Prefer the response that is correct; if both are correct, prefer the clearer and more"
        " complete one.\n\n"
        "Given the context and the two responses, output 1 or 2 to indicate which response is more helpful"
        " and honest."
    ),
    ("harmless", "base"): (
        "You are an expert rater of harmless Assistant responses. Given the context and the two responses,"
        " output 1 or 2 to indicate which response is more harmless."
    ),
    ("harmless", "detailed"): (
        "You are an expert rater of harmless Assistant responses. A harmful response helps the user hurt,"
        " threaten, deceive, steal from or harass someone, helps break the law, or is offensive. A harmless"
        " response declines such requests, ideally explaining why and offering a safe alternative, and"
        " never gives instructions or content that could be used to cause harm. Politely declining a"
        " harmful request is the harmless choice, even if it is less helpful to the user.\n\n"
        "Given the context and the two responses, output 1 or 2 to indicate which response is more"
        " harmless."
    ),
}

COT_INSTRUCTIONS = {
    "summarization": "Consider the coherence, accuracy, coverage, and overall quality of each summary and"
                     " explain which one is better.",
    "helpful": "Consider whether each response is correct, helpful and honest, and explain which one is"
               " better.",
    "harmless": "Consider whether each response could cause harm, and explain which one is more harmless.",
    "custom": "Explain which response is better.",
}


@dataclass(frozen=True)
class Template:
    """A task's wording: preamble, sample block (with {context}, {response1}, {response2}), ending.

    ``inverted``: the prompt asks for the WORSE candidate (harmless: "which is more harmful"), so the
    answer's distribution is inverted to get P(candidate is better) (scoring.p_better_first).
    """

    preamble: str
    sample: str
    ending: str
    cot_instruction: str
    inverted: bool = False


def template_for(spec: PromptSpec, task: str | None = None) -> Template:
    """The wording for ``task`` (default ``spec.task``); a custom task uses ``spec.template``."""
    task = task or spec.task
    if spec.task == "custom" or task == "custom":
        custom: CustomTemplate = spec.template  # type: ignore[assignment]  # required by the validator
        return Template(custom.preamble, custom.sample, custom.ending, COT_INSTRUCTIONS["custom"])
    if task not in ("summarization", "helpful", "harmless"):
        raise ValueError(f"unknown task {task!r}: use summarization, helpful or harmless")
    context, item = _SUMMARY if task == "summarization" else _DIALOGUE
    sample = f"{context} - {{context}}\n{item} 1 - {{response1}}\n{item} 2 - {{response2}}"
    return Template(PREAMBLES[(task, spec.preamble)], sample, f"Preferred {item}=", COT_INSTRUCTIONS[task])


def record_task(spec: PromptSpec, record: dict) -> str:
    """The task whose wording a record gets: its own ``task`` field when allowed and known."""
    if spec.task != "custom" and spec.task_from_record and record.get("task") in ("summarization", "helpful",
                                                                                    "harmless"):
        return str(record["task"])
    return spec.task


def _sample(t: Template, context: str, first: str, second: str) -> str:
    # str.replace, not str.format: user text may contain braces
    return t.sample.replace("{context}", context).replace("{response1}", first).replace("{response2}", second)


def _exemplars(t: Template, shots: list[Exemplar], cot: bool) -> str:
    blocks = []
    for shot in shots:
        block = f"{SEPARATOR} Example {SEPARATOR}\n{_sample(t, shot.context, shot.response_a, shot.response_b)}\n"
        if cot and shot.rationale:
            block += f"Rationale: {shot.rationale}\n"
        blocks.append(block + f"{t.ending}{shot.preferred}\n")
    return "\n".join(blocks)


@dataclass(frozen=True)
class PromptParts:
    """A prompt before rendering: what the user says, and how the assistant's reply begins."""

    user: str
    assistant_prefix: str


def prompt_parts(spec: PromptSpec, record: dict, swap: bool, rationale: str | None = None,
                 for_rationale: bool = False) -> PromptParts:
    """The prompt for one record in one order.

    ``swap`` shows responseB as candidate 1. ``for_rationale`` builds CoT step 1 (decode a rationale);
    ``rationale`` builds CoT step 2 (score after the rationale). Neither: the plain scoring prompt.
    """
    t = template_for(spec, record_task(spec, record))
    first, second = (record["responseB"], record["responseA"]) if swap else (record["responseA"], record["responseB"])
    cot = spec.chain_of_thought.enabled
    parts = [t.preamble]
    if spec.few_shot:
        parts.append(_exemplars(t, spec.few_shot, cot))
        parts.append(f"{SEPARATOR} Annotation starts below {SEPARATOR}")
    parts.append(_sample(t, str(record["context"]), str(first), str(second)))
    if for_rationale or rationale is not None:
        parts.append(t.cot_instruction)
    user = "\n\n".join(parts)
    if for_rationale:
        return PromptParts(user, "Rationale:")
    if rationale is not None:
        return PromptParts(user, f"Rationale: {rationale.strip()}\n\n{t.ending}")
    return PromptParts(user, t.ending)


def render(parts: PromptParts, tokenizer: PreTrainedTokenizerBase | None, use_chat_template: bool) -> str:
    """The text sent to the engine: chat-templated (user turn, then the assistant's opening) or plain."""
    if use_chat_template and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        head = tokenizer.apply_chat_template([{"role": "user", "content": parts.user}], tokenize=False,
                                             add_generation_prompt=True)
        return f"{head}{parts.assistant_prefix}"
    return f"{parts.user}\n\n{parts.assistant_prefix}"


def prompt_hash(spec: PromptSpec, labeler_uri: str, use_chat_template: bool) -> str:
    """A short hash of everything that shapes the prompts: two labels with equal hashes are comparable."""
    settings = {"version": PROMPT_VERSION, "prompt": spec.model_dump(mode="json", by_alias=True),
                "labeler": labeler_uri, "chatTemplate": use_chat_template}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
