"""Text in: the CLIP tokenizer and prompt encoding."""
