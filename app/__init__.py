"""Slipway: an OpenAI-compatible chat service on LangChain chat models."""

__version__ = "0.1.0"
