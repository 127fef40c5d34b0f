"""The paper's four-part labeling prompt: preamble, optional few-shot exemplars, the sample, the ending.

The wording follows the paper's content in the project's own words: per task a rater line, for the
Detailed preamble the task's quality axes, and the question (summaries: which is better; helpful:
which is more helpful and honest; harmless: which is MORE HARMFUL, inverted by the scorer). With
chain-of-thought the preamble asks for an explanation and step 1 ends with an instruction to weigh the
axes, then "Rationale:". Nothing is tuned to a dataset: a custom template is the place for that.

Pure functions, no engine: ``prompt_parts`` builds the prompt of one record in one order (the
scoring prompt, after which the next token is "1" or "2", or CoT step 1 or 2) and ``render`` turns it
into the text sent to the engine. With a chat template, the preamble, exemplars and sample form the
user's message and the Ending (or "Rationale:") opens the assistant's reply, so the model is scored
exactly where it must write 1 or 2. Everything before the sample is identical for every record of a
task: that is the shared prefix vLLM's prefix cache reuses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rlaif_jobs.config.label import CustomTemplate, Exemplar, PromptSpec

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPT_VERSION = 2  # bump when a template's wording changes: the prompt hash then changes too
# Exemplars are fenced by one kind of separator line; a different one marks where the sample to
# annotate begins, so the labeler cannot take the sample for one more example.
EXAMPLE_SEPARATOR = "-" * 12 + " Example " + "-" * 12
SAMPLE_SEPARATOR = "=" * 12 + " Sample to rate " + "=" * 12

# What the labeler compares, per task: the context's label and the item's label.
_SUMMARY = ("Text", "Summary")
_DIALOGUE = ("Context", "Response")

_RATER = {
    "summarization": "You are an expert at rating summaries. Below is a text followed by two candidate"
                     " summaries of it.",
    "helpful": "You are an expert at rating the responses of an AI Assistant. Below is a conversation followed"
               " by two candidate responses of the Assistant.",
    "harmless": "You are an expert at rating the responses of an AI Assistant. Below is a conversation followed"
                " by two candidate responses of the Assistant.",
}

# Detailed preambles: full rater instructions after the rater line (the task's quality axes, with
# what makes each good and bad). Base preambles have none.
_INSTRUCTIONS = {
    "summarization": (
        "A summary should be much shorter than the text it summarizes and still carry its point: the"
        " purpose of the text and the information that matters in it. Judge a summary on four axes.\n\n"
        "Coherence: can the summary be understood on its own? A coherent summary reads clearly and is"
        " written in correct English. An incoherent one is confusing or garbled, so that a reader cannot"
        " tell what it is trying to say.\n\n"
        "Accuracy: is everything the summary states supported by the text? An accurate summary adds"
        " nothing the text does not say, keeps straight who did what, and does not mislead. An inaccurate"
        " one invents, distorts or confuses facts.\n\n"
        "Coverage: does the summary keep what matters? With good coverage, someone who reads only the"
        " summary understands the situation in the text. With poor coverage, that reader misses important"
        " parts of it.\n\n"
        "Overall quality: all things considered, including anything else you find important, how well"
        " does the summary stand in for the text? A summary that is hard to improve on is of high overall"
        " quality; one with many ways to make it better is of low quality."
    ),
    "helpful": (
        "A helpful response deals with what the user actually asked and gives them what they need, clearly"
        " and completely enough to act on. An unhelpful response dodges the request, answers a different"
        " question, or leaves out what matters. An honest response says only what is true and does not claim"
        " knowledge it lacks; a dishonest one misleads the user, whether on purpose or through errors."
    ),
    "harmless": (
        "A harmful response helps someone hurt, threaten, deceive, steal from or harass other people, helps"
        " break the law, or is offensive, hateful or dangerous. A harmless response does none of this: it"
        " avoids giving content that could be used to cause harm, for instance by declining a dangerous"
        " request, even if that makes it less useful to the person asking."
    ),
}

# What the labeler is asked to pick. Harmless asks for the MORE HARMFUL response (the answer is inverted
# to P(more harmless): Template.inverted).
_QUESTIONS = {
    ("summarization", "base"): "which summary is better",
    ("summarization", "detailed"): "which summary is better on coherence, accuracy, coverage and overall"
                                   " quality as described above",
    ("helpful", "base"): "which response is more helpful and honest",
    ("helpful", "detailed"): "which response is more helpful and honest as described above",
    ("harmless", "base"): "which response is more harmful",
    ("harmless", "detailed"): "which response is more harmful as described above",
}
_ENDINGS = {"summarization": "Preferred Summary=", "helpful": "Preferred Response=",
            "harmless": "More Harmful Response="}

# CoT step 1: replaces the Ending and asks for the reasoning that "Rationale:" then opens.
COT_INSTRUCTIONS = {
    "summarization": "Weigh the coherence, accuracy, coverage and overall quality of each summary, and"
                     " explain which of the two is better.",
    "helpful": "Weigh how helpful and how honest each response is, and explain which of the two is more helpful"
               " and honest.",
    "harmless": "Weigh how harmful each response could be, and explain which of the two is more harmful.",
    "custom": "Explain which response is better.",
    "custom-worse": "Explain which response is worse.",  # a custom template with asks: worse
}


def preamble(task: str, variant: str, cot: bool) -> str:
    """The preamble for a built-in task: rater line, full instructions (detailed), and the question.

    A chain-of-thought prompt asks for an explanation first; a plain one for the answer only.
    """
    question = _QUESTIONS[(task, variant)]
    ask = (f"First explain your reasoning, then answer with 1 or 2 to say {question}." if cot
           else f"Answer with 1 or 2 only, to say {question}.")
    parts = [_RATER[task], *([_INSTRUCTIONS[task]] if variant == "detailed" else []), ask]
    return "\n\n".join(parts)


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
        worse = custom.asks == "worse"
        return Template(custom.preamble, custom.sample, custom.ending,
                        COT_INSTRUCTIONS["custom-worse" if worse else "custom"], inverted=worse)
    if task not in ("summarization", "helpful", "harmless"):
        raise ValueError(f"unknown task {task!r}: use summarization, helpful or harmless")
    context, item = _SUMMARY if task == "summarization" else _DIALOGUE
    sample = f"{context} - {{context}}\n{item} 1 - {{response1}}\n{item} 2 - {{response2}}"
    return Template(preamble(task, spec.preamble, spec.chain_of_thought.enabled), sample, _ENDINGS[task],
                    COT_INSTRUCTIONS[task], inverted=task == "harmless")


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
    """The exemplars, each after an example separator line; an exemplar names the better candidate,
    so where the prompt asks for the worse one (harmless) the answer shown is the other candidate."""
    blocks = []
    for shot in shots:
        block = f"{EXAMPLE_SEPARATOR}\n{_sample(t, shot.context, shot.response_a, shot.response_b)}\n"
        if cot and shot.rationale:
            block += f"Rationale: {shot.rationale}\n"
        answer = 3 - shot.preferred if t.inverted else shot.preferred
        blocks.append(block + f"{t.ending}{answer}")
    return "\n\n".join(blocks)


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
        parts.append(SAMPLE_SEPARATOR + "\n" + _sample(t, str(record["context"]), str(first), str(second)))
    else:
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


def prompt_hash(spec: PromptSpec, labeler_uri: str, use_chat_template: bool, api: str = "completions") -> str:
    """A short hash of everything that shapes the prompts: two labels with equal hashes are comparable.

    ``api``: the endpoint's API; "chat" (one user message, the server's chat template, the first answer
    token only) changes the hash, the default keeps the hashes written before the field."""
    prompt = spec.model_dump(mode="json", by_alias=True)
    if isinstance(prompt.get("template"), dict) and prompt["template"].get("asks") == "better":
        del prompt["template"]["asks"]  # the default: a template written before the field keeps its hash
    settings = {"version": PROMPT_VERSION, "prompt": prompt,
                "labeler": labeler_uri, "chatTemplate": use_chat_template}
    if api != "completions":
        settings["api"] = api
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
