"""The models and their engine processes: served models with a checked lifecycle, supervised
processes, routing among replicas, which models stay awake and their RAM shares (pure
decisions), and status, metrics and the access log read off them. Knows no protocol."""
