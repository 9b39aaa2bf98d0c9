"""The CLIP tokenizer and text encoder."""
