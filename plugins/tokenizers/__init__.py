"""Built-in anchor tokenizers (kind ``tokenizer``)."""
