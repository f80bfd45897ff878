#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    query_processor::run().await
}
