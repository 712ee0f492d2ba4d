"""The fleet's incidents, kept by the broker: one per leaked secret whatever reported it."""
