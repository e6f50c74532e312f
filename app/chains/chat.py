"""`chat`: a system prompt, the conversation so far, and the new question."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable
from pydantic import Field

from app.chains.inputs import ChainInput, HistoryMessage, validated

DEFAULT_SYSTEM = "You are a helpful assistant. Answer in one or two short sentences."


class ChatInput(ChainInput):
    question: str = Field(min_length=1, description="The user's new message.")
    history: list[HistoryMessage] = Field(default_factory=list, description="Earlier turns, oldest first.")
    system: str = Field(default=DEFAULT_SYSTEM, description="The system prompt.")


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "{system}"), MessagesPlaceholder("history"), ("human", "{question}")]
)


def chat(model: BaseChatModel) -> Runnable[ChatInput | dict, str]:
    """Answer `question` in the light of `history`, steered by `system`."""
    chain = validated(ChatInput) | PROMPT | model | StrOutputParser()
    return chain.with_types(input_type=ChatInput, output_type=str).with_config(run_name="chat")
