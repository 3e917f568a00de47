"""The upstream side: Poe's bot protocol."""
