#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    llm_service::run().await
}
