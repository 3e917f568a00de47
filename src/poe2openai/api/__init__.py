"""The OpenAI-facing HTTP layer."""
