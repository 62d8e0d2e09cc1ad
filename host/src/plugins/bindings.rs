//! Host bindings generated from `wit/`, one module per released WIT version so components
//! built against an older version keep loading when the interface moves on.

pub mod v0_1 {
    pub mod condition {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "condition",
            imports: { default: trappable },
        });
    }

    pub mod template {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "template",
            imports: { default: trappable },
            with: {
                "klaxon:plugin/types": super::condition::klaxon::plugin::types,
                "klaxon:plugin/host": super::condition::klaxon::plugin::host,
            },
        });
    }

    pub use condition::klaxon::plugin::{host, types};
}
