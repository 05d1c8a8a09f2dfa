"""An answer's text as it is drawn: what may be sent (stop strings, holes), and where its thinking
block stands."""
