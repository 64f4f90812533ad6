//! STUB: the upload page, replaced by the UI work.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::http::AppState;

pub fn routes(_state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    warp::path::end()
        .and(warp::get())
        .map(|| warp::reply::html("<!doctype html><title>whisper-appliance</title>").into_response())
        .boxed()
}
