"""With a model, ``advisor eval`` asks it whether an answer makes each expected claim."""

from __future__ import annotations

from conftest import FakeEmbedder

from advisor.evaluation import CLAIM_CANDIDATE, Scenario, claim_recall
from advisor.faithfulness import CLAIM_JUDGE
from advisor.types import Answer, Passage, Sentence

SALARY = (
    "Salary negotiation\n"
    "When the recruiter makes an offer, counter politely with a researched salary range. "
    "Mention market data from comparable roles in your city.\n"
)
QUESTION = "How should I counter a salary offer from the recruiter?"


class Judge:
    """A claim judge that says yes only to one statement, and counts its calls."""

    def __init__(self, yes_to: str) -> None:
        self.yes_to, self.calls = yes_to, 0

    def __call__(self, statement: str, claim: str) -> float:
        self.calls += 1
        return 0.9 if statement == self.yes_to else 0.1


def test_claim_recall_with_a_model_counts_a_claim_only_when_the_model_says_a_statement_makes_it() -> None:
    emb = FakeEmbedder()
    passage = Passage("salary", "Salary", "en", 0, len(SALARY), SALARY)
    made = "Counter politely with a researched salary range."
    answer = Answer(
        question=QUESTION,
        text=f"{made} [1]",
        mode="llm",
        lang="en",
        citations=[passage],
        quotes=[Sentence(made, 0, len(made))],
        translations=[None],
        retrieved=[passage],
    )
    s = Scenario(id="x", question=QUESTION, language="en", expect_claims=("Counter with a researched salary range.",))
    judge = Judge(yes_to=made)
    assert claim_recall(s, answer, emb, judge) == 1.0 and judge.calls >= 1
    assert claim_recall(s, answer, emb, Judge(yes_to="something else")) == 0.0
    assert 0.0 < CLAIM_CANDIDATE < CLAIM_JUDGE <= 1.0
