"""One module per endpoint family: what its request builds into and how its answer renders, on
the skeleton of `frontend.endpoint`."""
