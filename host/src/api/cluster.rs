//! `/v1/cluster`: the nodes serving from the database and the partitions each holds (platform
//! admin).

use axum::Json;
use axum::extract::State;

use super::extract::Caller;
use super::{AppState, blocking};
use crate::cluster::View;
use crate::error::ApiResult;

pub async fn get(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<View>> {
    caller.platform_admin()?;
    let cluster = state.cluster.clone();
    Ok(Json(blocking(move || Ok(cluster.view()?)).await?))
}
