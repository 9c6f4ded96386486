//! HTTP handlers and the router.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::body::{End, MockBody, Script};
use super::frames::{self, Api, Meta};
use super::state::{api_index, Fault, Shared};

/// The mock's routes.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(shared)
}

#[derive(serde::Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The fields of a request body the mock reads; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
struct AiRequest<'a> {
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
}

async fn chat_completions(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    answer(&s, Api::OpenAi, &body).await
}

async fn messages(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    answer(&s, Api::Anthropic, &body).await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let families = s.metrics.registry.gather();
    match prometheus::TextEncoder::new().encode_to_string(&families) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn not_found(method: Method, uri: Uri) -> Response {
    let msg = format!("Unknown request URL: {method} {}", uri.path());
    json_response(
        StatusCode::NOT_FOUND,
        frames::error_body(Api::OpenAi, 404, &msg),
    )
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One AI request: parse, leak, roll the fault, answer.
async fn answer(s: &Shared, api: Api, raw: &[u8]) -> Response {
    let req: AiRequest<'_> = match serde_json::from_slice(raw) {
        Ok(r) => r,
        Err(e) => {
            s.metrics.count(api, Fault::BadRequest);
            let msg = format!("We could not parse the JSON body of your request: {e}");
            return json_response(StatusCode::BAD_REQUEST, frames::error_body(api, 400, &msg));
        }
    };
    let stream = req.stream.unwrap_or(false);
    if s.leaks.active() {
        s.leaks.on_request(stream);
    }
    let fault = s.dice.roll();
    s.metrics.count(api, fault);

    match fault {
        Fault::Error => return http_error(s, api),
        Fault::Garbage => {
            let mut r = Response::new(Body::from(Bytes::from_static(frames::GARBAGE)));
            let ct = if stream {
                "text/event-stream"
            } else {
                "application/json"
            };
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            return r;
        }
        _ => {}
    }

    let cap = match (req.max_tokens, req.max_completion_tokens) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let chunks = match cap {
        Some(m) => u32::try_from(m).unwrap_or(u32::MAX).clamp(1, s.chunks),
        None => s.chunks,
    };
    let meta = Meta {
        seq: s.next_seq(),
        created: unix_now(),
        model: req.model.as_deref().unwrap_or("soakd-mock"),
        prompt_tokens: (raw.len() as u64 / 4).max(1),
        chunks,
        text: &s.text,
    };

    if stream {
        stream_answer(s, api, &meta, &req, fault)
    } else {
        plain_answer(s, api, &meta, fault).await
    }
}

fn http_error(s: &Shared, api: Api) -> Response {
    let status = StatusCode::from_u16(s.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, s.error_bodies[api_index(api)].clone());
    if matches!(s.error_status, 429 | 503 | 529) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn stream_answer(
    s: &Shared,
    api: Api,
    meta: &Meta<'_>,
    req: &AiRequest<'_>,
    fault: Fault,
) -> Response {
    let with_tail = fault == Fault::None;
    let f = match api {
        Api::OpenAi => {
            let include_usage = req
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
            frames::openai_stream(meta, include_usage, with_tail)
        }
        Api::Anthropic => frames::anthropic_stream(meta, with_tail),
    };
    let half = meta.chunks / 2;
    let (chunks, end) = match fault {
        Fault::ErrorEvent => (
            half,
            End::Frame(Bytes::from_static(match api {
                Api::OpenAi => frames::OPENAI_ERROR_FRAME,
                Api::Anthropic => frames::ANTHROPIC_ERROR_FRAME,
            })),
        ),
        Fault::Truncate => (half, End::Stop),
        Fault::Stall => (half, End::Stall(s.stop.clone())),
        _ => (meta.chunks, End::Frame(f.tail)),
    };
    let script = Script {
        head: f.head,
        first_delay: s.ttft,
        chunk: f.chunk,
        chunks,
        chunk_delay: s.chunk_delay,
        end,
    };
    sse_response(Body::from_stream(MockBody::new(
        script,
        &s.metrics.streams_active,
    )))
}

async fn plain_answer(s: &Shared, api: Api, meta: &Meta<'_>, fault: Fault) -> Response {
    if fault == Fault::Stall {
        let script = Script {
            head: Bytes::new(),
            first_delay: Duration::ZERO,
            chunk: Bytes::new(),
            chunks: 0,
            chunk_delay: Duration::ZERO,
            end: End::Stall(s.stop.clone()),
        };
        let mut r = Response::new(Body::from_stream(MockBody::new(
            script,
            &s.metrics.streams_active,
        )));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    let delay = s.response_delay.unwrap_or_else(|| {
        s.ttft
            .saturating_add(s.chunk_delay.saturating_mul(meta.chunks))
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Fault::ErrorEvent => json_response(
            StatusCode::OK,
            s.inband_error_bodies[api_index(api)].clone(),
        ),
        Fault::Truncate => {
            let full = frames::full_body(api, meta);
            json_response(StatusCode::OK, full.slice(..full.len() / 2))
        }
        _ => json_response(StatusCode::OK, frames::full_body(api, meta)),
    }
}
