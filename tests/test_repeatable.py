"""The local model answers a request the same way whatever was asked before it.

llama.cpp's results depend a little on how a prompt's tokens were split into batches, and each
context reuses the start the previous request left; before the advisor evaluated every request
the same way (advisor.generation.LlamaCppGenerator._prepare: the fixed start alone, the rest in one
batch), the same quote could be translated
differently on a fresh context than after other questions, and a check's probability moved.
"""

from __future__ import annotations

import pytest

from advisor.faithfulness import yes_probability
from advisor.prompts import check_messages, translate_in_context_messages

pytestmark = pytest.mark.integration

QUOTE = "Primero, le preguntaría a su conexión de LinkedIn qué tan bien se conoce al gerente de contratación."
OTHER = (
    "En tercer lugar, suponiendo que la conexión y el gerente de contratación se respeten, el momento para dejar "
    "caer las palabras sería después de la entrevista inicial, al menos eso funcionó para mí."
)


def test_the_same_request_gets_the_same_reply_and_score_whatever_came_before() -> None:
    from advisor.generation import LlamaCppGenerator, default_model_path

    gen = LlamaCppGenerator(default_model_path(), n_ctx=2048)
    ask = translate_in_context_messages(QUOTE, "en", "Respuestas (2)")
    first = gen.chat(ask, 60).text  # the first request of its kind: a fresh context
    assert first.strip()
    check = check_messages(QUOTE, "es", first, "en")
    p_first = yes_probability(gen, check)
    # requests of both kinds that share more or less of their start with those two
    gen.chat(translate_in_context_messages(OTHER, "en", "En segundo lugar, pregunte."), 60)
    yes_probability(gen, check_messages(QUOTE, "es", "Ask nobody anything before the interview.", "en"))
    gen.chat(translate_in_context_messages(QUOTE, "en", "Otra respuesta (1)"), 60)
    assert gen.chat(ask, 60).text == first
    assert yes_probability(gen, check) == p_first
