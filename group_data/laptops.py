# macOS laptops (group `laptops`): the pinned Ollama app archive under a LaunchAgent, a smaller coding model.
# To use a GPU box instead of a local Ollama, see README "Laptops pointing at a GPU box":
#   ollama_enabled = False
#   ollama_base_url = "http://gpu-01.example.internal:11434"
ollama_models = ["qwen3-coder"]
ollama_default_model = "qwen3-coder"
