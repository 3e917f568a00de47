"""poe2openai: an OpenAI-compatible API server for the bots on Poe."""

__version__ = "0.1.0"
