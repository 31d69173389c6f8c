"""migrate: move workflow estates between Kafka platforms with nothing lost."""

__version__ = "0.1.0"
