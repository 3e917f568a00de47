"""The translation core: OpenAI ⇄ Poe, pure functions and state machines, no I/O."""
