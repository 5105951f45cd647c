"""Training side of advrec: models (`models/`), evaluation, the bootstrap round, the stream trainer (`stream/`)."""
