"""Unit-test fakes (named so): a provider whose chat models are given by the test."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel

from app.core.config import Settings
from app.core.models_file import ModelsFile, ModelSpec
from app.providers.base import Provider
from app.providers.registry import ModelRegistry, Providers


class FakeProvider(Provider):
    """A provider whose chat models are the test's fakes, by entry name."""

    name = "fake-test"
    owned_by = "tests"

    def __init__(self, models: dict[str, BaseChatModel]) -> None:
        self.models = models

    def chat_model(self, spec: ModelSpec, settings: Settings) -> BaseChatModel:
        return self.models[spec.name]


def fake_registry(models: dict[str, BaseChatModel], specs: list[ModelSpec]) -> ModelRegistry:
    """A registry serving `specs` from the fake chat models (built, as at start-up)."""
    for spec in specs:
        spec.provider = FakeProvider.name
    models_file = ModelsFile.model_construct(default_model=specs[0].name, models=specs)
    registry = ModelRegistry(models_file, Settings(_env_file=None), Providers(FakeProvider(models)))
    registry.build_all()
    return registry
