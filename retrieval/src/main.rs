#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    retrieval::run().await
}
