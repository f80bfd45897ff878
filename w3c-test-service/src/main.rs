#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    w3c_test_service::run().await
}
