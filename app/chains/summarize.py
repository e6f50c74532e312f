"""`summarize`: a text in at most N sentences."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from pydantic import Field

from app.chains.inputs import ChainInput, validated


class SummarizeInput(ChainInput):
    text: str = Field(min_length=1, description="The text to summarise.")
    sentences: int = Field(default=3, ge=1, le=20, description="At most this many sentences.")


PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "You summarise texts. Reply with a summary of at most {sentences} sentence(s) and nothing else.",
        ),
        ("human", "Summarise this text:\n\n{text}"),
    ]
)


def summarize(model: BaseChatModel) -> Runnable[SummarizeInput | dict, str]:
    """Summarise `text` in at most `sentences` sentences."""
    chain = validated(SummarizeInput) | PROMPT | model | StrOutputParser()
    return chain.with_types(input_type=SummarizeInput, output_type=str).with_config(run_name="summarize")
