"""Documents are untrusted: spot instruction-like text and defuse control tokens.

* :func:`looks_like_instructions` flags passages that talk *to a model*
  ("ignore your instructions", chat-template tokens, ...). Flagged passages are
  marked at ingest and shown as such; they are still data, never instructions.
* :func:`neutralise` rewrites chat-template control tokens, our own source
  delimiters and fake citation markers so that text from a document can never
  close the data block, open a new chat turn or pose as a citation.
* :func:`strip_remote_content` removes markdown images and raw links from model
  output so nothing is fetched when an answer is rendered.
* :data:`CONTROL_CHARS` are the characters that must never reach a terminal
  (C0/C1 controls, bidi overrides); :func:`decode_text` reads bytes as UTF-8
  (or UTF-16 with a byte-order mark), else Windows-1252 (documents, and
  questions from a terminal that is not UTF-8); :func:`clean_question` is a
  question as the advisor searches it.
"""

from __future__ import annotations

import re

__all__ = [
    "CONTROL_CHARS",
    "MAX_QUESTION_CHARS",
    "UTF16_BOMS",
    "clean_question",
    "decode_text",
    "looks_like_instructions",
    "neutralise",
    "strip_remote_content",
]

MAX_QUESTION_CHARS = 2000  # longer questions are refused (one situation at a time)

# Escape sequences can retitle a terminal, write its clipboard (OSC 52) or hide
# text; bidi overrides reorder what is shown. Newlines and tabs are not listed.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

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
    r"|</?(?:source|quote|context)\b[^>]*>",  # our own delimiters
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


UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # "Unicode" text as Windows Notepad saves it


def decode_text(data: bytes) -> tuple[str, bool]:
    """``data`` as text and whether it was Unicode (UTF-8, or UTF-16 with its byte-order mark).

    Other bytes are read as Windows-1252.
    """
    try:
        if data.startswith(UTF16_BOMS):
            return data.decode("utf-16"), True
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), False


def clean_question(question: str) -> str:
    """A question as the advisor searches it: readable, without control characters, whitespace collapsed.

    A terminal that is not UTF-8 hands Python its bytes as surrogates: they are
    read as Windows-1252, as documents are, so "¿Cuándo?" arrives intact.
    """
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:
        question, _ = decode_text(question.encode("utf-8", "surrogateescape"))
    return " ".join(CONTROL_CHARS.sub(" ", question).split())
