"""Models: BLIP-2 captioner, LoRA training, actor embeddings, caption control,
the multi-condition pipeline and metrics. Nothing in this package imports dagster."""
