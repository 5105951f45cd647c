"""Model registry side of advrec: MLflow tracking, registered versions, the promotion gate."""
