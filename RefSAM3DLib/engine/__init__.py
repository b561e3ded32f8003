"""Inference engine: volume -> model space -> cached window embeddings -> prompts -> masks on the input grid."""
