"""`extract`: text in, an object matching the caller's JSON Schema out, on any chat model.

Built on LangChain's `with_structured_output` (a tool call named after the schema): on the embedded
model a grammar makes the object match the schema; on remote models the provider's structured output
does. The result is checked against the schema either way, so a caller never gets an object that
does not match.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import Field

from app.chains.inputs import ChainInput, validated
from app.core.errors import UpstreamFormatError


class ExtractInput(ChainInput):
    text: str = Field(min_length=1, description="The text to extract from.")
    schema_: dict[str, Any] = Field(alias="schema", description="A JSON Schema (an object schema) of what to extract.")
    instructions: str = Field(default="", description="What to look for, if the schema does not say.")


PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Extract the requested information from the user's text. {instructions}"),
        ("human", "{text}"),
    ]
)


def extract(model: BaseChatModel) -> Runnable[ExtractInput | dict, dict[str, Any]]:
    """An object matching `schema`, extracted from `text`."""

    def structured(value: dict[str, Any]) -> Runnable[Any, Any]:
        schema = {"title": "extract", "description": "The extracted information.", **value["schema"]}
        return PROMPT | model.with_structured_output(schema)

    def checked(result: Any, schema: dict[str, Any]) -> dict[str, Any]:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(result))
        if error is not None:
            # A remote model that does not enforce the schema: 502, the model's fault, not the caller's.
            raise UpstreamFormatError(f"the extracted object does not match the schema: {error.message}")
        return dict(result)

    def run(value: dict[str, Any]) -> dict[str, Any]:
        return checked(structured(value).invoke(value), value["schema"])

    async def arun(value: dict[str, Any]) -> dict[str, Any]:
        return checked(await structured(value).ainvoke(value), value["schema"])

    chain = validated(ExtractInput) | RunnableLambda(run, afunc=arun, name="extract")
    return chain.with_types(input_type=ExtractInput, output_type=dict[str, Any]).with_config(run_name="extract")
