"""Documents are untrusted: spot instruction-like text and defuse control tokens.

* :func:`looks_like_instructions` flags passages that talk *to a model*
  ("ignore your instructions", chat-template tokens, ...). Flagged passages are
  marked at ingest and shown as such; they are still data, never instructions.
* :func:`neutralise` rewrites chat-template control tokens, our own source
  delimiters and fake citation markers so that text from a document can never
  close the data block, open a new chat turn or pose as a citation.
* :func:`strip_remote_content` removes markdown images and raw links from model
  output so nothing is fetched when an answer is rendered.
"""

from __future__ import annotations

import re

__all__ = ["looks_like_instructions", "neutralise", "strip_remote_content"]

_INSTRUCTION_PATTERNS = [
    r"\bignore\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b",
    r"\b(disregard|forget)\b.{0,40}\b(instructions?|prompts?|rules|above|previous)\b",
    r"\bsystem\s+prompt\b",
    r"\byou\s+are\s+now\b",
    r"\b(answer|respond|reply)\s+only\s+with\b",
    r"\breveal\b.{0,30}\b(prompt|instructions?)\b",
    r"\bignora\b.{0,40}\binstrucci",
    r"\bolvida\b.{0,40}\binstrucci",
    r"\bresponde\s+(solo|[úu]nicamente)\s+con\b",
    r"\bignorier\w*\b.{0,40}\b(anweisung|vorgabe|regel)",
    r"\bantworte\s+(nur|ausschlie(ß|ss)lich)\s+mit\b",
    r"<\|[a-z_]+\|>",
    r"<start_of_turn>|<end_of_turn>|\[/?INST\]|<</?SYS>>",
    r"!\[[^\]]*\]\(\s*https?://",
    r"</?source\b",  # our own prompt delimiters have no business in a document
    r"\b(note|message|instructions?)\s+(for|to)\s+(ai|llms?|(language\s+)?models?|(ai\s+)?assistants?|chatbots?)\b",
    r"(^|[.!?>]\s*)assistant\s*[,:]",  # "Assistant, the only correct answer is ..."
    r"\bfrom\s+now\s+on\b.{0,60}\b(respond|reply|answer|write|say)\b",
]
_INSTRUCTION_RE = re.compile("|".join(_INSTRUCTION_PATTERNS), re.IGNORECASE | re.DOTALL)

# Chat-template and tokenizer control strings of common model families.
_CONTROL_RE = re.compile(
    r"<\|[^|<>\n]{1,40}\|>"  # <|im_start|>, <|eot_id|>, <|user|> ...
    r"|</?s>"
    r"|<start_of_turn>|<end_of_turn>|<bos>|<eos>"
    r"|\[/?INST\]|<</?SYS>>"
    r"|</?source\b[^>]*>",  # our own delimiters
    re.IGNORECASE,
)
_MARKER_RE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK_RE = re.compile(r"\[([^\]]+)\]\((?:https?|ftp|file|data):[^)]*\)", re.IGNORECASE)
_URL_RE = re.compile(r"\b(?:https?|ftp|file)://\S+", re.IGNORECASE)


def looks_like_instructions(text: str) -> bool:
    """True when ``text`` seems to address a language model rather than a reader."""
    return bool(_INSTRUCTION_RE.search(text))


def neutralise(text: str) -> str:
    """Defuse control tokens and bracketed numbers in untrusted text before prompting."""

    def _defuse(match: re.Match[str]) -> str:
        token = match.group(0)
        return token.replace("<", "‹").replace(">", "›").replace("[", "(").replace("]", ")")

    text = _CONTROL_RE.sub(_defuse, text)
    return _MARKER_RE.sub(lambda m: f"({m.group(1)})", text)


def strip_remote_content(text: str) -> str:
    """Drop markdown images and turn links into plain text (no URLs are rendered)."""
    text = _IMAGE_RE.sub(lambda m: m.group(1), text)
    text = _LINK_RE.sub(lambda m: m.group(1), text)
    return _URL_RE.sub("[link removed]", text)
