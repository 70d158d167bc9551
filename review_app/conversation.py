"""Multi-turn prompts ("Human: … Assistant: …", as in HH-RLHF) split into turns for display."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A speaker tag at the start of the text or of a line. HH-RLHF writes "\n\nHuman: " and
# "\n\nAssistant: "; Vicuna-style data writes "USER:" / "ASSISTANT:".
_TAG = re.compile(r"(?:^|\n)[ \t]*(Human|Assistant|User|System|HUMAN|ASSISTANT|USER|SYSTEM):[ \t]*")
_ROLE = {"human": "human", "user": "human", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation: who speaks (human, assistant or system) and what they say."""

    role: str
    text: str


def split_turns(prompt: str) -> list[Turn] | None:
    """The prompt's turns, or None when it is not a conversation (no speaker tag at its very
    start): such a prompt is shown as one block of text.

    >>> split_turns("Human: hi\\n\\nAssistant: Hello! How can I help?\\n\\nHuman: a joke")
    [Turn(role='human', text='hi'), Turn(role='assistant', text='Hello! How can I help?'), \
Turn(role='human', text='a joke')]
    >>> split_turns("Summarize: the Human: tag appears mid-line here.") is None
    True
    >>> split_turns("Human: only one turn")
    [Turn(role='human', text='only one turn')]
    """
    text = prompt.strip()
    tags = list(_TAG.finditer(text))
    if not tags or tags[0].start() != 0:
        return None
    turns = []
    for tag, following in zip(tags, [*tags[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        turns.append(Turn(_ROLE[tag.group(1).lower()], text[tag.end() : end].strip()))
    return turns
