"""Where conversations' KV lives: the slot table, the conversations resident, spilled to host
RAM or disk, and the keys that name them."""
