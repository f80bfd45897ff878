fn main() {
    let _ = shared::listen_addr("127.0.0.1:8000");
    let _ = env_string("WORKER_URL", "http://127.0.0.1:3000");
}
