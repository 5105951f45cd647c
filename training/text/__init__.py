"""Item text for the hybrid models: the text-encoder interface and its adapters (`encoders`), and the
item vectors built from catalog fields (`features`). Pure: no Kafka, Faust, MLflow."""
