"""Sources: where chunks come from. Each yields ``Chunk``s and never matches."""
