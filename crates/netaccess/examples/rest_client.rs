//! Cookbook: a REST client with JSON. A `RequestFactory` holds the base URL, a token and the
//! headers every call shares; `Reply::json` and `Body::json` carry the data.
//!
//! ```sh
//! cargo run --example rest_client -- http://127.0.0.1:8080/
//! ```

use netaccess::{Body, NetworkAccessManager, RequestFactory};

#[derive(serde::Deserialize)]
struct Echo {
    method: String,
    path: String,
    headers: std::collections::HashMap<String, String>,
}

#[tokio::main]
async fn main() -> Result<(), netaccess::Error> {
    let base = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: rest_client BASE_URL");
        std::process::exit(2);
    });
    let base = url::Url::parse(&base).unwrap_or_else(|e| {
        eprintln!("rest_client: {base}: {e}");
        std::process::exit(2);
    });
    let manager = NetworkAccessManager::new();
    let api = RequestFactory::new(base)
        .with_bearer_token("example-token")
        .with_header("Accept", "application/json");

    // GET, decoded into a struct.
    let echo: Echo = manager.get(api.create_request("echo")).json().await?;
    println!(
        "GET {} answered for {} with a bearer token: {}",
        echo.path,
        echo.method,
        echo.headers.contains_key("authorization")
    );

    // POST a JSON body and read the server's answer as a JSON value.
    let item = serde_json::json!({ "name": "new item", "tags": ["a", "b"] });
    let request = api
        .create_request("echo-body")
        .with_header("Content-Type", "application/json");
    let reply = manager.post(request, Body::json(&item)?);
    let back: serde_json::Value = reply.json().await?;
    println!("POST echoed {back} (success: {})", reply.is_success());
    Ok(())
}
