//! The live page and the HTML report.
//!
//! Routes (merged into the admin server, see [`router`]):
//! - `GET /`: one HTML page; its script polls `series` and `status` every 5 s and draws the
//!   charts with uPlot.
//! - `GET /series`: the [`crate::series`] buffers as JSON ([`crate::series::SeriesJson`]).
//! - `GET /assets/{name}`: the page's script and style and the vendored uPlot
//!   (`assets/vendor/uplot/`, version [`UPLOT_VERSION`]).
//!
//! Every asset is compiled into the binary (`include_str!`) and every URL the page uses is
//! relative, so the page works offline and behind a path prefix. The report ([`report`]) is
//! the same template with the assets inlined and the series and summary embedded as JSON, so
//! one file opens anywhere without a server.
//!
//! The template `assets/page.html` has three marker lines the server or the report replace:
//! `<!-- soakd:styles -->`, `<!-- soakd:data -->` and `<!-- soakd:scripts -->`. The data
//! element (`<script id="soakd-data" type="application/json">`) holds `null` on the live page
//! and `{"series": …, "summary": …}` in the report.

pub mod report;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::series::LiveSeries;

/// The vendored uPlot's version.
pub const UPLOT_VERSION: &str = "1.6.32";

const TEMPLATE: &str = include_str!("../../assets/page.html");
const PAGE_JS: &str = include_str!("../../assets/page.js");
const PAGE_CSS: &str = include_str!("../../assets/page.css");
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");

const STYLES: &str = "<!-- soakd:styles -->";
const DATA: &str = "<!-- soakd:data -->";
const SCRIPTS: &str = "<!-- soakd:scripts -->";

/// One static asset: name, content type, text.
const ASSETS: &[(&str, &str, &str)] = &[
    ("page.js", "text/javascript; charset=utf-8", PAGE_JS),
    ("page.css", "text/css; charset=utf-8", PAGE_CSS),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        UPLOT_JS,
    ),
    ("uPlot.min.css", "text/css; charset=utf-8", UPLOT_CSS),
];

/// `GET /`, `GET /series`, `GET /assets/{name}`.
pub fn router(series: Arc<LiveSeries>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/series", get(series_json))
        .route("/assets/{name}", get(asset))
        .with_state(series)
}

/// The live page's HTML.
pub fn live_html() -> String {
    let styles = "<link rel=\"stylesheet\" href=\"assets/uPlot.min.css\">\n\
                  <link rel=\"stylesheet\" href=\"assets/page.css\">";
    let scripts = "<script src=\"assets/uPlot.iife.min.js\"></script>\n\
                   <script src=\"assets/page.js\"></script>";
    fill(styles, &data_element("null"), scripts)
}

/// Fills the template's markers.
fn fill(styles: &str, data: &str, scripts: &str) -> String {
    TEMPLATE
        .replacen(STYLES, styles, 1)
        .replacen(DATA, data, 1)
        .replacen(SCRIPTS, scripts, 1)
}

/// The data element with `json` inside, made safe for a `<script>` element: `<` is written
/// as `\u003c`, so neither `</script>` nor `<!--` can occur (a JSON string escape, so the
/// text still parses to the same value).
fn data_element(json: &str) -> String {
    format!(
        "<script id=\"soakd-data\" type=\"application/json\">{}</script>",
        json.replace('<', "\\u003c")
    )
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        live_html(),
    )
        .into_response()
}

async fn series_json(State(series): State<Arc<LiveSeries>>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        series.to_json(),
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, text)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            *text,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_has_each_marker_once() {
        for m in [STYLES, DATA, SCRIPTS] {
            assert_eq!(TEMPLATE.matches(m).count(), 1, "{m}");
        }
        let html = live_html();
        assert!(!html.contains("soakd:"), "every marker is replaced");
        for (name, _, _) in ASSETS {
            assert!(html.contains(&format!("assets/{name}")), "{name}");
        }
        assert!(UPLOT_JS.contains(&format!("(v{UPLOT_VERSION})")));
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let el = data_element(r#"{"s":"</script><!-- x"}"#);
        let inner = el
            .strip_prefix("<script id=\"soakd-data\" type=\"application/json\">")
            .and_then(|s| s.strip_suffix("</script>"))
            .unwrap();
        assert!(!inner.contains('<'), "{inner}");
        let v: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(v["s"], "</script><!-- x");
    }
}
