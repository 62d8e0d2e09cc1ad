//! `POST /v1/admin/backup`: a backup of the running embedded installation (platform admin),
//! taken into an unnamed file in the data folder and streamed to the caller.

use std::io::Seek;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::extract::Caller;
use super::{AppState, blocking};
use crate::backup;
use crate::error::{ApiError, ApiResult};
use crate::store::StoreError;

pub async fn take(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.platform_admin()?;
    let (store, now) = (state.store.clone(), state.clock.now());
    let (file, manifest) = blocking(move || {
        let io = |e: std::io::Error| ApiError::Store(StoreError::Backend(format!("a file for the backup: {e}")));
        let mut file = tempfile::tempfile_in(&store.dir).map_err(io)?;
        let manifest = backup::write(&store, &mut file, now)?;
        file.rewind().map_err(io)?;
        Ok((file, manifest))
    })
    .await?;
    tracing::info!(entries = manifest.trees.values().sum::<u64>(), files = manifest.files, "backup taken");
    let body = Body::from_stream(ReaderStream::new(tokio::fs::File::from_std(file)));
    let name = format!("attachment; filename=\"klaxon-{}.backup\"", manifest.created_at.strftime("%Y%m%dT%H%M%SZ"));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CONTENT_DISPOSITION, name.as_str())], body)
        .into_response())
}
