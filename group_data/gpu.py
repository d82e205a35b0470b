# Linux GPU boxes (group `gpu`): Ollama as a systemd service, the project's default local model.
ollama_models = ["glm-4.7-flash"]
ollama_default_model = "glm-4.7-flash"
ollama_gpu = "auto"  # auto-detects NVIDIA/AMD; "amd" adds the ROCm runners, "cpu" skips GPU setup
