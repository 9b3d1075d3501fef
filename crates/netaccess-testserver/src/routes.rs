//! Request routing for the hyper modes (HTTP/1.1, h2c, TLS): every route of the
//! table in the crate documentation, plus request/in-flight accounting.
//!
//! Handlers never panic on odd input: unparsable numbers, bad header names and the
//! like are answered with `400` and a short explanation.

use std::convert::Infallible;
use std::future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::auth::{basic_auth_route, digest_auth_route, proxy_auth_required_route, DigestNonces};
use crate::body::ResponseBody;
use crate::pattern::DEFAULT_CHUNK;
use crate::query::{parse_query, query_param};
use crate::reset::ResetSwitch;
use crate::stats::Counters;

/// Default size of `/slow/MS` bodies.
const SLOW_DEFAULT_SIZE: u64 = 16;
/// Default declared size of `/close-mid-body` bodies.
const CLOSE_MID_BODY_DEFAULT_SIZE: u64 = 100_000;
/// Declared and actually sent sizes of `/wrong-length`.
const WRONG_LENGTH_DECLARED: u64 = 1000;
const WRONG_LENGTH_SENT: u64 = 10;
/// Declared size of `/stall-after-headers`.
const STALL_DECLARED: u64 = 1000;
/// Defaults of `/trickle`.
const TRICKLE_DEFAULT_BYTES: u64 = 16;
const TRICKLE_DEFAULT_INTERVAL_MS: u64 = 50;

/// Per-connection state the request handler needs.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) counters: Arc<Counters>,
    pub(crate) reset: ResetSwitch,
    /// The digest nonces this server issued (shared by all its connections).
    pub(crate) digest_nonces: Arc<DigestNonces>,
}

/// hyper service entry point: counts the request, routes it, and ties the in-flight
/// guard to the response body (or to this future, if it is dropped before answering).
pub(crate) async fn handle(
    request: Request<Incoming>,
    context: RequestContext,
) -> Result<Response<ResponseBody>, Infallible> {
    let is_h2 = request.version() == Version::HTTP_2;
    context.counters.record_request(request.uri().path(), is_h2);
    let in_flight = context.counters.request_started();
    let response = route(request, &context).await;
    Ok(response.map(|body| body.with_in_flight(in_flight)))
}

async fn route(request: Request<Incoming>, context: &RequestContext) -> Response<ResponseBody> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let query = query.as_deref();
    let trimmed = path.strip_prefix('/').unwrap_or(&path);
    let (first, rest) = match trimmed.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (trimmed, None),
    };
    match (first, rest) {
        ("" | "hello", None) => text(StatusCode::OK, "hello"),
        ("bytes", Some(len)) => respond(bytes_route(len, query, request.headers())),
        ("gzip", Some(len)) => respond(gzip_route(len, query).await),
        ("status", Some(code)) => respond(status_route(code)),
        ("delay", Some(ms)) => respond(delay_route(ms).await),
        ("slow", Some(ms)) => respond(slow_route(ms, query).await),
        ("redirect", Some(hops)) => respond(redirect_chain_route(hops)),
        ("redirect-to", None) => {
            // The request body is read first (a bounded drain): answering before it and closing
            // would make the client's body write fail with EPIPE, racing the 307 it is meant
            // to follow (seen on a loaded machine).
            drain_body(request).await;
            respond(redirect_to_route(query))
        }
        ("echo", None) => echo_route(request).await,
        ("echo-body", None) => echo_body_route(request).await,
        ("multipart", None) => multipart_route(request).await,
        ("header", None) => respond(header_route(query)),
        ("stall-after-headers", None) => ResponseBody::stall(STALL_DECLARED).into_ok(),
        ("close-mid-body", None) => respond(close_mid_body_route(query)),
        ("wrong-length", None) => {
            ResponseBody::truncated(WRONG_LENGTH_DECLARED, WRONG_LENGTH_SENT, DEFAULT_CHUNK)
                .into_ok()
        }
        ("trickle", None) => respond(trickle_route(query)),
        ("never-respond", None) => future::pending().await,
        ("reset", None) => reset_route(&context.reset).await,
        ("basic-auth", Some(rest)) => respond(basic_auth_route(rest, query, request.headers())),
        ("digest-auth", Some(rest)) => {
            respond(digest_auth_route(rest, query, request, &context.digest_nonces).await)
        }
        ("proxy-auth-required", None) => proxy_auth_required_route(),
        ("respond", Some(_)) => {
            let n = context.counters.requests_for(&path);
            match crate::respond::respond_route(query, n, request.headers()) {
                crate::respond::Respond::Answer(result) => respond(result),
                crate::respond::Respond::Reset => reset_route(&context.reset).await,
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

impl ResponseBody {
    /// A `200` response with this body as `application/octet-stream`.
    fn into_ok(self) -> Response<ResponseBody> {
        let mut response = Response::new(self);
        set_content_type(response.headers_mut(), "application/octet-stream");
        response
    }
}

/// A response with a `text/plain` body.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    set_content_type(response.headers_mut(), "text/plain; charset=utf-8");
    response
}

/// A client mistake, answered with `400` and the message as body.
#[derive(Debug)]
pub(crate) struct BadRequest(pub(crate) String);

impl BadRequest {
    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        text(StatusCode::BAD_REQUEST, self.0)
    }
}

/// Outcome of a handler that may reject its input.
pub(crate) type RouteResult = Result<Response<ResponseBody>, BadRequest>;

/// The response of `result`, turning a rejection into `400`.
fn respond(result: RouteResult) -> Response<ResponseBody> {
    result.unwrap_or_else(BadRequest::into_response)
}

fn set_content_type(headers: &mut HeaderMap, value: &'static str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
}

/// Parses a path segment or parameter as a number.
fn parse_number<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, BadRequest> {
    raw.parse()
        .map_err(|_| BadRequest(format!("invalid {what}: {raw:?}")))
}

/// Parses an optional query parameter, falling back to `default` when absent.
fn number_param<T: std::str::FromStr>(
    query: Option<&str>,
    name: &str,
    default: T,
) -> Result<T, BadRequest> {
    match query_param(query, name) {
        Some(raw) => parse_number(&raw, name),
        None => Ok(default),
    }
}

/// The validators of every `/bytes/N` body: the content depends on N only.
const BYTES_LAST_MODIFIED: &str = "Mon, 02 Jan 2023 03:04:05 GMT";

fn bytes_etag(len: u64) -> String {
    format!("\"bytes-{len}\"")
}

fn bytes_route(len: &str, query: Option<&str>, headers: &http::HeaderMap) -> RouteResult {
    let len: u64 = parse_number(len, "byte count")?;
    let chunk_size: usize = number_param(query, "chunk", DEFAULT_CHUNK)?;
    let chunked = query_param(query, "chunked").is_some_and(|value| value == "1");
    let etag = bytes_etag(len);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        || headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == BYTES_LAST_MODIFIED);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // For cache tests: `fail_revalidation=1` answers a conditional request with a 503.
    let conditional = headers.contains_key(header::IF_NONE_MATCH)
        || headers.contains_key(header::IF_MODIFIED_SINCE);
    if conditional && query_param(query, "fail_revalidation").as_deref() == Some("1") {
        return Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "failing revalidation",
        ));
    }
    // If-Range with another validator: the client's copy is stale, send it all.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag || v == BYTES_LAST_MODIFIED);
    let mut response = match range.filter(|_| if_range_ok && !chunked) {
        None if not_modified => {
            let mut r = Response::new(ResponseBody::full(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        }
        None => ResponseBody::pattern(len, chunk_size, !chunked).into_ok(),
        Some(range) => match parse_range(range, len) {
            Some((start, end)) => {
                let mut r =
                    ResponseBody::pattern_range(start, end - start + 1, chunk_size).into_ok();
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                let value = format!("bytes {start}-{end}/{len}");
                r.headers_mut()
                    .insert(header::CONTENT_RANGE, header_value(&value)?);
                r
            }
            None => {
                let mut r = Response::new(ResponseBody::full(Bytes::new()));
                *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}"))?,
                );
                r
            }
        },
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, header_value(&etag)?);
    headers.insert(
        header::LAST_MODIFIED,
        http::HeaderValue::from_static(BYTES_LAST_MODIFIED),
    );
    headers.insert(
        header::ACCEPT_RANGES,
        http::HeaderValue::from_static("bytes"),
    );
    // For cache tests: `cache_control=...` and `vary=...` become those response headers.
    if let Some(cc) = query_param(query, "cache_control") {
        headers.insert(header::CACHE_CONTROL, header_value(&cc)?);
    }
    if let Some(vary) = query_param(query, "vary") {
        headers.insert(header::VARY, header_value(&vary)?);
    }
    Ok(response)
}

/// A header value from text; UTF-8 beyond ASCII goes out as opaque bytes (a non-ASCII realm),
/// which `HeaderValue::from_str` refuses in recent `http` releases (1.6 here).
pub(crate) fn header_value(value: &str) -> Result<http::HeaderValue, BadRequest> {
    http::HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| BadRequest(format!("bad header value {value:?}")))
}

/// `/gzip/N[?cache_control=CC]`: N pattern bytes sent gzip-encoded (`Content-Encoding: gzip`).
async fn gzip_route(len: &str, query: Option<&str>) -> RouteResult {
    use tokio::io::AsyncReadExt;
    let len: usize = parse_number(len, "byte count")?;
    if len > 64 << 20 {
        return Err(BadRequest("at most 64 MiB".into()));
    }
    let plain = crate::pattern::expected_bytes(0, len);
    let mut encoded = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(&plain[..])
        .read_to_end(&mut encoded)
        .await
        .map_err(|e| BadRequest(format!("gzip failed: {e}")))?;
    let mut response = Response::new(ResponseBody::full(encoded));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    if let Some(cc) = query_param(query, "cache_control") {
        headers.insert(header::CACHE_CONTROL, header_value(&cc)?);
    }
    Ok(response)
}

/// A single `bytes=S-E`, `bytes=S-` or `bytes=-N` range within `len`; `None` if unsatisfiable.
pub(crate) fn parse_range(range: &str, len: u64) -> Option<(u64, u64)> {
    let spec = range.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
        }
        (s, "") => (s.parse().ok()?, len.checked_sub(1)?),
        (s, e) => (
            s.parse().ok()?,
            e.parse::<u64>().ok()?.min(len.checked_sub(1)?),
        ),
    };
    (start <= end && start < len).then_some((start, end))
}

fn status_route(code: &str) -> RouteResult {
    let code: u16 = parse_number(code, "status code")?;
    let status = StatusCode::from_u16(code)
        .map_err(|_| BadRequest(format!("invalid status code: {code}")))?;
    if status.is_informational() {
        return Err(BadRequest(
            "1xx status codes are not supported as final responses".into(),
        ));
    }
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) {
        let mut response = Response::new(ResponseBody::full(Bytes::new()));
        *response.status_mut() = status;
        return Ok(response);
    }
    Ok(text(status, format!("status {code}")))
}

async fn delay_route(ms: &str) -> RouteResult {
    let ms: u64 = parse_number(ms, "delay")?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(text(StatusCode::OK, "delayed"))
}

async fn slow_route(ms: &str, query: Option<&str>) -> RouteResult {
    let ms: u64 = parse_number(ms, "delay")?;
    let size: u64 = number_param(query, "size", SLOW_DEFAULT_SIZE)?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ResponseBody::pattern(size, DEFAULT_CHUNK, true).into_ok())
}

/// `/redirect/N`: `302` to `/redirect/N-1`, and `/redirect/0` answers like `/hello`.
fn redirect_chain_route(hops: &str) -> RouteResult {
    match parse_number::<u32>(hops, "hop count")? {
        0 => Ok(text(StatusCode::OK, "hello")),
        hops => redirect(StatusCode::FOUND, &format!("/redirect/{}", hops - 1)),
    }
}

/// `/redirect-to?url=U&status=S`: redirect to `U` with status `S` (default 302).
fn redirect_to_route(query: Option<&str>) -> RouteResult {
    let target = query_param(query, "url").ok_or_else(|| BadRequest("missing url".into()))?;
    let code: u16 = number_param(query, "status", 302)?;
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(StatusCode::is_redirection)
        .ok_or_else(|| BadRequest(format!("not a redirect status: {code}")))?;
    let mut response = redirect(status, &target)?;
    // `set_cookie=V` (repeatable): the redirect also sets cookies.
    for cookie in query_params(query, "set_cookie") {
        response
            .headers_mut()
            .append(header::SET_COOKIE, header_value(&cookie)?);
    }
    Ok(response)
}

/// Every value of `name` in the query, percent-decoded.
fn query_params(query: Option<&str>, name: &str) -> Vec<String> {
    crate::query::parse_query(query.unwrap_or(""))
        .into_iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value)
        .collect()
}

fn redirect(status: StatusCode, location: &str) -> RouteResult {
    let location_value = HeaderValue::from_str(location)
        .map_err(|_| BadRequest("invalid redirect location".into()))?;
    let mut response = text(status, format!("redirecting to {location}"));
    response
        .headers_mut()
        .insert(header::LOCATION, location_value);
    Ok(response)
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "unknown",
    }
}

/// Request headers as a JSON object; repeated names are joined with `", "`.
fn headers_json(headers: &HeaderMap) -> serde_json::Map<String, serde_json::Value> {
    let mut object = serde_json::Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        object.insert(name.as_str().to_owned(), joined.into());
    }
    object
}

/// Reads and drops a request body, at most 64 MiB of it.
async fn drain_body(request: Request<Incoming>) {
    let limited = http_body_util::Limited::new(request.into_body(), 64 << 20);
    let _ = limited.collect().await;
}

async fn echo_route(request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let Ok(collected) = body.collect().await else {
        return BadRequest("could not read request body".into()).into_response();
    };
    let body_len = collected.to_bytes().len();
    let echo = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query().unwrap_or(""),
        "authority": parts.uri.authority().map(|authority| authority.as_str()),
        "headers": headers_json(&parts.headers),
        "body_len": body_len,
        "version": version_name(parts.version),
    });
    let mut response = Response::new(ResponseBody::full(echo.to_string()));
    set_content_type(response.headers_mut(), "application/json");
    response
}

async fn echo_body_route(request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let Ok(collected) = body.collect().await else {
        return BadRequest("could not read request body".into()).into_response();
    };
    let mut response = Response::new(ResponseBody::full(collected.to_bytes()));
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    // Lets a client test content decoding: it sends an encoded body and names its coding.
    if let Some(coding) = parts.headers.get("x-response-content-encoding") {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, coding.clone());
    }
    response
}

/// Parses a multipart request body as it streams in (with `multer`) and describes every part.
async fn multipart_route(request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let header_text = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let content_type = header_text(header::CONTENT_TYPE);
    let mime_version = header_text(HeaderName::from_static("mime-version"));
    let boundary = match multipart_boundary(content_type.as_deref().unwrap_or("")) {
        Ok(boundary) => boundary,
        Err(bad) => return bad.into_response(),
    };
    let multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let fields = match describe_multipart_fields(multipart).await {
        Ok(fields) => fields,
        Err(error) => {
            return BadRequest(format!("invalid multipart body: {error}")).into_response();
        }
    };
    let json = serde_json::json!({
        "content_type": content_type,
        "mime_version": mime_version,
        "request_headers": headers_json(&parts.headers),
        "parts": fields,
    });
    let mut response = Response::new(ResponseBody::full(json.to_string()));
    set_content_type(response.headers_mut(), "application/json");
    response
}

/// The boundary of any `multipart/*` content type (`multer` itself accepts only form-data).
fn multipart_boundary(content_type: &str) -> Result<String, BadRequest> {
    let (essence, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let essence = essence.trim().to_ascii_lowercase();
    if !essence.starts_with("multipart/") {
        return Err(BadRequest(format!(
            "not a multipart content type: {content_type:?}"
        )));
    }
    multer::parse_boundary(format!("multipart/form-data;{params}"))
        .map_err(|error| BadRequest(format!("no boundary in {content_type:?}: {error}")))
}

/// `{name, file_name, content_type, headers, len, fnv1a64}` of every part; bodies are hashed
/// (64-bit FNV-1a, 16 lowercase hex digits) as they stream, never kept.
async fn describe_multipart_fields(
    mut multipart: multer::Multipart<'static>,
) -> Result<Vec<serde_json::Value>, multer::Error> {
    let mut fields = Vec::new();
    while let Some(mut field) = multipart.next_field().await? {
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(ToString::to_string);
        let headers = headers_json(field.headers());
        let mut len = 0u64;
        let mut hash = FNV_OFFSET_BASIS;
        while let Some(chunk) = field.chunk().await? {
            len += chunk.len() as u64;
            hash = fnv1a64(hash, &chunk);
        }
        fields.push(serde_json::json!({
            "name": name,
            "file_name": file_name,
            "content_type": content_type,
            "headers": headers,
            "len": len,
            "fnv1a64": format!("{hash:016x}"),
        }));
    }
    Ok(fields)
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues a 64-bit FNV-1a hash over `bytes`.
fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn header_route(query: Option<&str>) -> RouteResult {
    let mut response = text(StatusCode::OK, "ok");
    for (name, value) in parse_query(query.unwrap_or("")) {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| BadRequest(format!("invalid header name: {name:?}")))?;
        let header_value = HeaderValue::from_str(&value)
            .map_err(|_| BadRequest(format!("invalid header value for {name}")))?;
        response.headers_mut().append(header_name, header_value);
    }
    Ok(response)
}

fn close_mid_body_route(query: Option<&str>) -> RouteResult {
    let size: u64 = number_param(query, "size", CLOSE_MID_BODY_DEFAULT_SIZE)?;
    Ok(ResponseBody::truncated(size, size / 2, DEFAULT_CHUNK).into_ok())
}

fn trickle_route(query: Option<&str>) -> RouteResult {
    let bytes: u64 = number_param(query, "bytes", TRICKLE_DEFAULT_BYTES)?;
    let interval_ms: u64 = number_param(query, "interval_ms", TRICKLE_DEFAULT_INTERVAL_MS)?;
    Ok(ResponseBody::trickle(bytes, Duration::from_millis(interval_ms)).into_ok())
}

/// Asks the connection task to reset the whole connection; never answers.
async fn reset_route(reset: &ResetSwitch) -> Response<ResponseBody> {
    reset.request();
    future::pending().await
}
