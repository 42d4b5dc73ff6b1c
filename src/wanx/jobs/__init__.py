"""Durable jobs: a journal of accepted prompts and one runner per ComfyUI backend (issue #7)."""
