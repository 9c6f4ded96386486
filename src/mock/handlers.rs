//! HTTP handlers and the router.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Extension;
use axum::Router;

use super::body::{End, MockBody, Script};
use super::frames::{self, anthropic, chat, completions, embeddings, responses, Api, Meta};
use super::state::{Fault, Shared};
use super::tap::{stamp_entry, Answer, Entry, Injected, ProbeGuard};

/// The mock's routes; with a tap, every request is stamped on arrival, before its body is read.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let tapped = shared.tap.is_some();
    let r = Router::new()
        .route(Api::Chat.path(), api_route(Api::Chat))
        .route(Api::Responses.path(), api_route(Api::Responses))
        .route(Api::Completions.path(), api_route(Api::Completions))
        .route(Api::Embeddings.path(), api_route(Api::Embeddings))
        .route(Api::Anthropic.path(), api_route(Api::Anthropic))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(shared);
    if tapped {
        r.layer(axum::middleware::from_fn(stamp_entry))
    } else {
        r
    }
}

/// What a handler knows of a request besides its body.
struct Arrival {
    entry: Option<Extension<Entry>>,
    headers: HeaderMap,
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
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<InputCount>,
    #[serde(default)]
    dimensions: Option<u64>,
}

/// How many inputs an embeddings `input` holds: a string or a token array is one, an array
/// of strings (or of token arrays) one per element. Read without building anything.
struct InputCount(u64);

impl<'de> serde::Deserialize<'de> for InputCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        /// One element of an `input` array: whether it was a number (a token id).
        struct Elem(bool);
        impl<'de> serde::Deserialize<'de> for Elem {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Elem;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an input")
                    }
                    fn visit_u64<E>(self, _: u64) -> Result<Elem, E> {
                        Ok(Elem(true))
                    }
                    fn visit_i64<E>(self, _: i64) -> Result<Elem, E> {
                        Ok(Elem(true))
                    }
                    fn visit_f64<E>(self, _: f64) -> Result<Elem, E> {
                        Ok(Elem(true))
                    }
                    fn visit_str<E>(self, _: &str) -> Result<Elem, E> {
                        Ok(Elem(false))
                    }
                    fn visit_bool<E>(self, _: bool) -> Result<Elem, E> {
                        Ok(Elem(false))
                    }
                    fn visit_unit<E>(self) -> Result<Elem, E> {
                        Ok(Elem(false))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Elem, A::Error> {
                        while s.next_element::<IgnoredAny>()?.is_some() {}
                        Ok(Elem(false))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Elem, A::Error> {
                        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok(Elem(false))
                    }
                }
                d.deserialize_any(V)
            }
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InputCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E>(self, _: &str) -> Result<InputCount, E> {
                Ok(InputCount(1))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<InputCount, A::Error> {
                let (mut n, mut tokens) = (0, false);
                while let Some(e) = s.next_element::<Elem>()? {
                    n += 1;
                    tokens |= e.0;
                }
                Ok(InputCount(if tokens { 1 } else { n }))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<InputCount, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(InputCount(1))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `POST` route of one API's endpoint: every endpoint answers through [`answer`].
fn api_route(api: Api) -> MethodRouter<Arc<Shared>> {
    post(
        move |State(s): State<Arc<Shared>>,
              entry: Option<Extension<Entry>>,
              headers: HeaderMap,
              body: Bytes| async move {
            answer(&s, api, &body, Arrival { entry, headers }).await
        },
    )
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
        frames::error_body(Api::Chat, 404, &msg),
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

/// A 400 in the API's shape, counted as a bad request.
fn bad_request(s: &Shared, api: Api, msg: &str, probe: &mut Option<ProbeGuard>) -> Response {
    s.metrics.count(api, Fault::BadRequest);
    tell(probe, 400, Fault::BadRequest, false, 0);
    json_response(StatusCode::BAD_REQUEST, frames::error_body(api, 400, msg))
}

/// Tells the tap's probe what is going to be answered.
fn tell(probe: &mut Option<ProbeGuard>, status: u16, fault: Fault, stream: bool, tokens: u64) {
    if let Some(p) = probe {
        let failed = fault != Fault::None;
        p.answer(&Answer {
            status,
            failed,
            stream,
            output_tokens: if failed || stream { 0 } else { tokens },
        });
    }
}

/// Why an embeddings request cannot be answered, if it cannot.
fn embeddings_problem(req: &AiRequest<'_>) -> Option<String> {
    if req.stream == Some(true) {
        return Some(
            "Unrecognized request argument supplied: stream (embeddings are never streamed)".into(),
        );
    }
    match req.input.as_ref().map(|i| i.0) {
        None | Some(0) => return Some("'input' is a required non-empty string or array".into()),
        Some(n) if n > u64::from(embeddings::MAX_INPUTS) => {
            return Some(format!(
                "'input' holds {n} inputs; at most {} are allowed",
                embeddings::MAX_INPUTS
            ))
        }
        _ => {}
    }
    match req.dimensions {
        Some(d) if d == 0 || d > u64::from(embeddings::MAX_DIMENSIONS) => Some(format!(
            "'dimensions' must be in 1..={}",
            embeddings::MAX_DIMENSIONS
        )),
        _ => None,
    }
}

/// One AI request: tell the tap, answer, and end the tap's probe unless a streamed body took
/// it (dropped early, e.g. the client left during a non-stream delay, it ends as not
/// completed).
async fn answer(s: &Shared, api: Api, raw: &[u8], arrival: Arrival) -> Response {
    let mut probe = s.tap.as_ref().and_then(|t| {
        let id = arrival.headers.get(t.id_header()).map(|v| v.as_bytes());
        let entry = arrival
            .entry
            .map_or_else(std::time::Instant::now, |Extension(Entry(at))| at);
        t.request(entry, id, raw).map(ProbeGuard::new)
    });
    let r = answer_with(s, api, raw, &mut probe).await;
    if let Some(p) = probe {
        p.complete();
    }
    r
}

/// Parses, leaks, rolls the fault and answers; a streamed answer takes the probe.
async fn answer_with(s: &Shared, api: Api, raw: &[u8], probe: &mut Option<ProbeGuard>) -> Response {
    let req: AiRequest<'_> = match serde_json::from_slice(raw) {
        Ok(r) => r,
        Err(e) => {
            let msg = format!("We could not parse the JSON body of your request: {e}");
            return bad_request(s, api, &msg, probe);
        }
    };
    if api == Api::Embeddings {
        if let Some(msg) = embeddings_problem(&req) {
            return bad_request(s, api, &msg, probe);
        }
    }
    let stream = req.stream.unwrap_or(false);
    if s.leaks.active() {
        s.leaks.on_request(stream, api == Api::Anthropic);
    }
    let storm = match probe {
        Some(p) => p.inject(api.label(), stream),
        None => s.tap.as_ref().and_then(|t| t.inject(api.label(), stream)),
    };
    // A storm replaces the dice, except a slow one, which only delays the usual answer.
    let storm = match storm {
        Some(Injected::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        other => other,
    };
    let streamed = stream && api != Api::Embeddings;
    match storm {
        None => {}
        Some(Injected::Status {
            status,
            retry_after,
        }) => {
            tell_storm(probe, status, stream);
            return storm_error(api, status, retry_after);
        }
        Some(Injected::Stall) if !streamed => {
            tell_storm(probe, 0, false);
            return stall_unary(s, probe).await;
        }
        Some(Injected::Reset { .. }) if !streamed => {
            tell_storm(probe, 0, false);
            return reset_unary(s, probe);
        }
        Some(_) => {}
    }
    let fault = if storm.is_some() {
        Fault::None
    } else {
        s.dice.roll()
    };
    s.metrics.count(api, fault);
    if !matches!(fault, Fault::None | Fault::BadRequest) {
        let retry_after = (fault == Fault::Error && sends_retry_after(s.error_status)).then_some(1);
        match probe {
            Some(p) => p.faulted(fault, retry_after),
            None => {
                if let Some(t) = &s.tap {
                    t.faulted(fault, retry_after);
                }
            }
        }
    }

    match fault {
        Fault::Error => {
            tell(probe, s.error_status, fault, stream, 0);
            return http_error(s, api);
        }
        Fault::Garbage => {
            tell(probe, 200, fault, stream, 0);
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
    let model = req.model.as_deref().unwrap_or("soakd-mock");
    let prompt_tokens = (raw.len() as u64 / 4).max(1);
    if api == Api::Embeddings {
        tell(probe, 200, fault, false, 0);
        return embeddings_answer(s, &req, model, prompt_tokens, fault, probe).await;
    }

    let cap = [
        req.max_tokens,
        req.max_completion_tokens,
        req.max_output_tokens,
    ]
    .into_iter()
    .flatten()
    .min();
    let chunks = match cap {
        Some(m) => u32::try_from(m).unwrap_or(u32::MAX).clamp(1, s.chunks),
        None => s.chunks,
    };
    let tools = api.has_tools_and_reasoning();
    let meta = Meta {
        seq: s.next_seq(),
        created: unix_now(),
        model,
        prompt_tokens,
        chunks,
        reasoning: if tools { s.reasoning_chunks } else { 0 },
        tool_call: tools && s.dice.chance(s.tool_call_rate),
        capped: chunks < s.chunks,
        text: &s.text,
    };
    if storm.is_some() {
        tell_storm(probe, 200, stream);
    } else {
        tell(
            probe,
            200,
            fault,
            stream,
            u64::from(meta.reasoning + meta.chunks),
        );
    }
    if stream {
        stream_answer(s, api, &meta, &req, (fault, storm), probe.take())
    } else {
        plain_answer(s, api, &meta, fault, probe).await
    }
}

/// Tells the probe of a storm's answer: a failure, with `status` (0 when not even a status line
/// is sent: a unary stall or reset).
fn tell_storm(probe: &mut Option<ProbeGuard>, status: u16, stream: bool) {
    if let Some(p) = probe {
        p.answer(&Answer {
            status,
            failed: true,
            stream,
            output_tokens: 0,
        });
    }
}

/// Whether an `error_rate` answer of this status carries `retry-after: 1`.
fn sends_retry_after(status: u16) -> bool {
    matches!(status, 429 | 503 | 529)
}

fn http_error(s: &Shared, api: Api) -> Response {
    let status = StatusCode::from_u16(s.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, s.error_bodies[api.index()].clone());
    if sends_retry_after(s.error_status) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// A storm's HTTP error: `Retry-After` only when the storm sets it.
fn storm_error(api: Api, status: u16, retry_after: Option<u32>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let msg = format!("soakd upstream: storm (HTTP {status})");
    let mut r = json_response(code, frames::error_body(api, status, &msg));
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// A storm's unary stall: no byte at all until the client (or the proxy) leaves, which drops
/// this future and ends the probe as not completed, or until shutdown.
async fn stall_unary(s: &Shared, probe: &mut Option<ProbeGuard>) -> Response {
    s.stop.cancelled().await;
    drop(probe.take());
    json_response(StatusCode::SERVICE_UNAVAILABLE, Bytes::new())
}

/// A storm's unary reset: a body that fails before its first byte, so the connection is
/// closed without even a status line.
fn reset_unary(s: &Shared, probe: &mut Option<ProbeGuard>) -> Response {
    let script = Script::empty(Bytes::new(), Duration::ZERO, End::Reset);
    let mut body = MockBody::new(script, &s.metrics.streams_active);
    if let Some(p) = probe.take() {
        body = body.with_probe(p, "");
    }
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn stream_answer(
    s: &Shared,
    api: Api,
    meta: &Meta<'_>,
    req: &AiRequest<'_>,
    (fault, storm): (Fault, Option<Injected>),
    probe: Option<ProbeGuard>,
) -> Response {
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let f = match api {
        Api::Chat => chat::stream(meta, include_usage),
        Api::Completions => completions::stream(meta, include_usage),
        Api::Responses => responses::stream(meta),
        // Embeddings never stream: their requests are answered before this.
        Api::Anthropic | Api::Embeddings => anthropic::stream(meta),
    };
    let units = meta.reasoning + meta.chunks;
    let half = units / 2;
    let (limit, end) = match (storm, fault) {
        (Some(Injected::Stall), _) => (units.min(1), End::Stall(s.stop.clone())),
        (Some(Injected::Reset { after_chunks }), _) => (units.min(after_chunks), End::Reset),
        (_, Fault::ErrorEvent) => (half, End::Frame(f.error)),
        (_, Fault::Truncate) => (half, End::Stop),
        (_, Fault::Stall) => (half, End::Stall(s.stop.clone())),
        _ => (units, End::Frame(f.tail)),
    };
    let script = Script {
        head: f.head,
        first_delay: s.ttft + s.drift(),
        runs: f.runs,
        limit,
        chunk_delay: s.chunk_delay,
        end,
    };
    let mut body = MockBody::new(script, &s.metrics.streams_active);
    if let Some(p) = probe {
        body = body.with_probe(p, meta.text);
    }
    sse_response(Body::from_stream(body))
}

/// A non-stream stall: headers, then a body that never comes (it takes the probe, so the
/// stall ends it).
fn stalled_json(s: &Shared, probe: &mut Option<ProbeGuard>) -> Response {
    let script = Script::empty(Bytes::new(), Duration::ZERO, End::Stall(s.stop.clone()));
    let mut body = MockBody::new(script, &s.metrics.streams_active);
    if let Some(p) = probe.take() {
        body = body.with_probe(p, "");
    }
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A non-stream answer after `delay`, with the fault applied to `full`.
async fn plain_with_fault(
    s: &Shared,
    api: Api,
    delay: Duration,
    fault: Fault,
    probe: &mut Option<ProbeGuard>,
    full: impl FnOnce() -> Bytes,
) -> Response {
    if fault == Fault::Stall {
        return stalled_json(s, probe);
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Fault::ErrorEvent => {
            json_response(StatusCode::OK, s.inband_error_bodies[api.index()].clone())
        }
        Fault::Truncate => {
            let full = full();
            json_response(StatusCode::OK, full.slice(..full.len() / 2))
        }
        _ => json_response(StatusCode::OK, full()),
    }
}

async fn plain_answer(
    s: &Shared,
    api: Api,
    meta: &Meta<'_>,
    fault: Fault,
    probe: &mut Option<ProbeGuard>,
) -> Response {
    let delay = s
        .response_delay
        .unwrap_or_else(|| {
            s.ttft
                .saturating_add(s.chunk_delay.saturating_mul(meta.reasoning + meta.chunks))
        })
        .saturating_add(s.drift());
    plain_with_fault(s, api, delay, fault, probe, || match api {
        Api::Chat => chat::body(meta),
        Api::Completions => completions::body(meta),
        Api::Responses => responses::body(meta),
        Api::Anthropic | Api::Embeddings => anthropic::body(meta),
    })
    .await
}

async fn embeddings_answer(
    s: &Shared,
    req: &AiRequest<'_>,
    model: &str,
    prompt_tokens: u64,
    fault: Fault,
    probe: &mut Option<ProbeGuard>,
) -> Response {
    let inputs = req.input.as_ref().map_or(1, |i| i.0) as u32;
    let delay = s.response_delay.unwrap_or(s.ttft).saturating_add(s.drift());
    plain_with_fault(s, Api::Embeddings, delay, fault, probe, || {
        match req.dimensions {
            Some(d) if d != u64::from(embeddings::DEFAULT_DIMENSIONS) => {
                embeddings::body(model, inputs, &embeddings::vector(d as u32), prompt_tokens)
            }
            _ => embeddings::body(model, inputs, &s.embedding, prompt_tokens),
        }
    })
    .await
}
