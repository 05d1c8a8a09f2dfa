"""Speculative decoding: tokens proposed for a sequence (`ngram`), how many each sequence gets in a
step (`drafts`); the engine checks them in the same batch as everything else."""
