fn main() {
    let _ = shared::listen_addr("127.0.0.1:3000");
    // Unset: a built-in answer; compose.llm.yaml points it at Ollama.
    let _ = env_opt("LLM_BASE_URL");
}
