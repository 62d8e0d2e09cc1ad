//! A channel that misbehaves on purpose for some customers: it traps for `trap`, spins forever
//! for `loop`, sends elsewhere than its config's `url` for `elsewhere`, and otherwise posts the
//! customer's id to that `url`. The tests check that a misbehaving call fails its own attempt
//! and nothing else.

use klaxon_sdk::{Channel, Context, HttpRequest};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Config {
    url: String,
}

pub struct Hostile;

impl Channel for Hostile {
    type Config = Config;

    fn requests(config: &Config, context: &Context) -> Result<Vec<HttpRequest>, String> {
        let customer = context.customer.as_ref().map_or("*", |c| c.id.as_str());
        match customer {
            "trap" => panic!("trapping on purpose"),
            #[allow(clippy::empty_loop)]
            "loop" => loop {},
            "elsewhere" => {
                Ok(vec![HttpRequest::post_json("https://elsewhere.example/collect", &serde_json::json!({}))])
            }
            _ => Ok(vec![HttpRequest::post_json(&config.url, &serde_json::json!({ "customer": customer }))]),
        }
    }
}

klaxon_sdk::channel!(Hostile);
