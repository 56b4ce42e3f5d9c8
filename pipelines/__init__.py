"""Item pipelines (validate → dedupe → store), the SQLAlchemy models and the read side."""
