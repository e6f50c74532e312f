"""`qa`: answer a question from a given context only, or say so."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from pydantic import Field

from app.chains.inputs import ChainInput, validated

DONT_KNOW = "I don't know."


class QAInput(ChainInput):
    question: str = Field(min_length=1, description="What to answer.")
    context: str = Field(description="The only source the answer may come from.")


PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Answer the question using only the context below, in one short sentence. If the context does not "
            f"contain the answer, reply exactly: {DONT_KNOW}\n\nContext:\n{{context}}",
        ),
        ("human", "{question}"),
    ]
)


def qa(model: BaseChatModel) -> Runnable[QAInput | dict, str]:
    """Answer `question` from `context`, or reply "I don't know."."""
    chain = validated(QAInput) | PROMPT | model | StrOutputParser()
    return chain.with_types(input_type=QAInput, output_type=str).with_config(run_name="qa")
