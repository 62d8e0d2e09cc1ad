//! A webhook receiver of the benches' own, which notes when each event's webhook arrives: for
//! benches that time events from sending to their webhook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::routing::post;
use serde_json::Value;

/// When each event's webhook arrived, by event id.
pub type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver on a runtime of its own, noting arrivals in `arrivals`; answers its URL.
pub fn receiver(arrivals: Arrivals) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
            let app = Router::new().route(
                "/hook",
                post(move |body: String| async move {
                    let now = Instant::now();
                    let message: Value = serde_json::from_str(&body).unwrap();
                    let id = message["data"]["event"]["id"].as_str().unwrap().to_string();
                    arrivals.lock().unwrap().insert(id, now);
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}
