"""An answer as it is drawn: what of its text may be sent (stop strings, holes), where its
thinking block stands, and each token's logprobs."""
