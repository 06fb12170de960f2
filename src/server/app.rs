//! The review HTTP application: `POST /validate` and `POST /mutate`, as an axum `Router`
//! that tests drive in memory with `oneshot`.
//!
//! It reads and bounds the body, calls the pure admission core on exactly one policy-set
//! version, catches panics, and records metrics and one log line per review. It must not
//! look inside the review itself: decisions are the core's.

use super::metrics::{
    CodeLabels, DeadlineLabels, EvaluationLabels, InFlight, Metrics, RequestLabels, ViolationLabels,
};
use crate::admission::{self, Effort, Reviewed, Webhook};
use crate::policy::PolicySet;
use arc_swap::ArcSwap;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The admission core's entry point; replaceable in tests (e.g. by one that panics).
pub(crate) type Reviewer = fn(
    &PolicySet,
    &[u8],
    Webhook,
    jiff::Timestamp,
    Effort,
) -> Result<Reviewed, admission::ReviewError>;

/// Reviews up to this size are first evaluated inline (`--inline-max-body`): a typical Pod
/// with its managedFields is 5-20 KB, a Deployment a little more.
pub(crate) const INLINE_MAX_BODY: usize = 64 << 10;

/// The longest any review may take: the apiserver caps `timeoutSeconds` at 30.
pub(crate) const MAX_DEADLINE: Duration = Duration::from_secs(30);
/// Answer this much before the apiserver's own deadline so the answer still arrives.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// Evaluation slots unless `--evaluation-slots` says otherwise: the CPUs this process may use
/// (which follows a cgroup CPU limit).
pub(crate) fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

/// Shared state of the review app.
#[derive(Clone)]
pub(crate) struct AppState {
    pub policies: Arc<ArcSwap<PolicySet>>,
    pub metrics: Metrics,
    pub max_body: usize,
    pub reviewer: Reviewer,
    /// Evaluation slots, one per core. A review that is not answered inline is evaluated on
    /// the blocking pool while holding one, never on the async workers, so a burst (or a
    /// costly review) cannot starve the accept loop, the TLS handshakes or the probes, and the
    /// CPU is never oversubscribed. A review waits for a slot at most until its deadline.
    pub pool: Arc<tokio::sync::Semaphore>,
    /// Reviews up to this many bytes are first evaluated right on the async worker, with
    /// [`Effort::Inline`]: the decode is linear in at most this many bytes and the rules'
    /// work is capped at a small fixed budget, so its cost is bounded by construction (well
    /// under a millisecond, see BENCHMARKS.md), and the pool's two thread hand-offs (~20 µs,
    /// more than the whole evaluation) are saved. A review that falls short of the inline
    /// budget is evaluated again on the pool with the full one; the answer is the same either
    /// way. 0 sends every review to the pool.
    pub inline_max_body: usize,
    /// Evaluation never runs longer than this, even when the apiserver allows more
    /// (`--max-evaluation-time`); the deadline is the earlier of the two.
    pub max_evaluation: Duration,
    /// Whether a valid policy set is loaded; without one, answers that depend on it are 503.
    pub health: Arc<super::probe::Health>,
}

impl AppState {
    pub fn new(policies: Arc<ArcSwap<PolicySet>>, metrics: Metrics, max_body: usize) -> AppState {
        AppState {
            policies,
            metrics,
            max_body,
            reviewer: admission::review_with,
            pool: Arc::new(tokio::sync::Semaphore::new(default_slots())),
            inline_max_body: INLINE_MAX_BODY,
            max_evaluation: MAX_DEADLINE,
            health: Arc::new(super::probe::Health::ready_now()),
        }
    }
}

/// Routes of the TLS port. Everything else is 404; other methods on the two paths 405.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Errors the caller made (4xx) plus a deadline overrun. Rendered as an AdmissionReview-shaped
/// JSON body with `allowed:false` and `status.code/message`, so a human (or the apiserver's
/// failurePolicy message) sees why.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error("no such endpoint; use POST /validate or POST /mutate")]
    NotFound,
    #[error("method not allowed; use POST")]
    MethodNotAllowed,
    #[error("content type must be application/json, got {0:?}")]
    UnsupportedMediaType(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("failed reading request body: {0}")]
    BodyRead(String),
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    #[error("{message}")]
    BadReview { message: String, body: bytes::Bytes },
    #[error("podgate has no valid policy set loaded (its log lists every error); not deciding")]
    NoPolicies { body: bytes::Bytes },
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::BodyRead(_) | AppError::BadReview { .. } => StatusCode::BAD_REQUEST,
            AppError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::NoPolicies { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = self.to_string();
        // All but a bad review answer before (all of) the body was read, and hyper closes a
        // connection whose request body is left unread: say so, or a keep-alive client
        // sends its next request into the closing connection.
        let body_unread = !matches!(
            self,
            AppError::BadReview { .. } | AppError::NoPolicies { .. }
        );
        let request: &[u8] = match &self {
            AppError::BadReview { body, .. } | AppError::NoPolicies { body } => body,
            _ => &[],
        };
        let body = admission::error_review(request, status.as_u16(), &message);
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if body_unread {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

async fn not_found(request: Request) -> AppError {
    drain(request.into_body()).await;
    AppError::NotFound
}

async fn method_not_allowed(request: Request) -> AppError {
    drain(request.into_body()).await;
    AppError::MethodNotAllowed
}

async fn validate(State(state): State<AppState>, request: Request) -> Response {
    handle(state, Webhook::Validate, request).await
}

async fn mutate(State(state): State<AppState>, request: Request) -> Response {
    handle(state, Webhook::Mutate, request).await
}

async fn handle(state: AppState, webhook: Webhook, request: Request) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&state.metrics.in_flight);
    match review(&state, webhook, request, started).await {
        Ok(response) => response,
        Err(error) => {
            state
                .metrics
                .http_errors
                .get_or_create(&CodeLabels {
                    code: error.status().as_u16().to_string(),
                })
                .inc();
            tracing::info!(webhook = webhook.as_str(), error = %error, "refused request");
            error.into_response()
        }
    }
}

/// The budget for this request: the apiserver's `?timeout=` (time left until its deadline,
/// rounded up to whole seconds) less a margin, never more than 30 s.
pub fn deadline(query: Option<&str>) -> Duration {
    let requested = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("timeout="))
        .and_then(|v| super::duration::parse(v).ok());
    match requested {
        Some(d) => d
            .min(MAX_DEADLINE)
            .saturating_sub(DEADLINE_MARGIN)
            .max(DEADLINE_MARGIN),
        None => MAX_DEADLINE,
    }
}

fn is_json(headers: &HeaderMap) -> Result<(), AppError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType(value))
    }
}

/// How much of an unwanted body is read and discarded before an error answer, and for how
/// long. Closing a socket with unread input makes Linux send a RST, which can destroy our
/// 4xx reply in flight; Go's server drains 256 KiB for the same reason.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// Reads and discards up to `DRAIN_BYTES` of `body` within `DRAIN_TIME`.
async fn drain(mut body: Body) {
    let until = tokio::time::Instant::now() + DRAIN_TIME;
    let mut seen = 0usize;
    while seen <= DRAIN_BYTES {
        match tokio::time::timeout_at(until, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                seen = seen.saturating_add(frame.data_ref().map_or(0, bytes::Buf::remaining));
            }
            _ => return,
        }
    }
}

/// Reads the body within `budget`, keeping at most `limit` bytes: past the limit the rest
/// is discarded (up to `DRAIN_BYTES`, then we stop reading) and the answer is 413. Works the
/// same with Content-Length and chunked bodies; nothing past the cap is buffered.
async fn read_body(
    mut body: Body,
    limit: usize,
    expected: usize,
    budget: Duration,
) -> Result<bytes::Bytes, AppError> {
    let mut until = tokio::time::Instant::now() + budget;
    let mut buf = bytes::BytesMut::with_capacity(expected.min(limit));
    let mut total = 0usize;
    let mut over = false;
    loop {
        let frame = match tokio::time::timeout_at(until, body.frame()).await {
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_))) | Err(_) if total > limit => break,
            Ok(Some(Err(e))) => return Err(AppError::BodyRead(e.to_string())),
            Err(_) => return Err(AppError::Timeout(budget)),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            buf.extend_from_slice(&data);
        } else if total > limit.saturating_add(DRAIN_BYTES) {
            break;
        } else if !over {
            // Over the cap: free what we held and only count (briefly) from here on.
            over = true;
            buf = bytes::BytesMut::new();
            until = until.min(tokio::time::Instant::now() + DRAIN_TIME);
        }
    }
    if total > limit {
        return Err(AppError::TooLarge { limit });
    }
    Ok(buf.freeze())
}

async fn review(
    state: &AppState,
    webhook: Webhook,
    request: Request,
    started: Instant,
) -> Result<Response, AppError> {
    let (parts, body) = request.into_parts();
    if let Err(error) = is_json(&parts.headers) {
        drain(body).await;
        return Err(error);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.max_body.saturating_add(DRAIN_BYTES)) {
        // Far too large to drain: answer at once; the connection is closed after the reply.
        return Err(AppError::TooLarge {
            limit: state.max_body,
        });
    }
    let budget = deadline(parts.uri.query());
    let due = tokio::time::Instant::now() + budget;
    let body = read_body(body, state.max_body, declared.unwrap_or(0), budget).await?;

    // One policy-set version for the whole decision, also named in the log line.
    let set = state.policies.load_full();
    let reviewer = state.reviewer;
    let now = jiff::Timestamp::now();
    let evaluating = tokio::time::Instant::now();
    let evaluation_due = due.min(evaluating + state.max_evaluation);
    let limit = evaluation_due.saturating_duration_since(evaluating);
    let inline = if body.len() <= state.inline_max_body {
        match evaluate(reviewer, &set, &body, webhook, now, Effort::Inline) {
            Outcome::Reviewed(reviewed) if reviewed.summary.cut => {
                state.metrics.evaluations.get_or_create(&INLINE_CUT).inc();
                None
            }
            outcome => {
                state.metrics.evaluations.get_or_create(&INLINE).inc();
                Some(outcome)
            }
        }
    } else {
        None
    };
    let outcome = match inline {
        // A result that arrives after the deadline is late all the same.
        Some(_) if tokio::time::Instant::now() > evaluation_due => {
            let stage = Stage::Evaluation;
            return past_deadline(state, webhook, &set, body, stage, limit, started);
        }
        Some(outcome) => outcome,
        None => match on_pool(state, webhook, &set, &body, now, evaluation_due).await {
            Ok(outcome) => outcome,
            Err(stage) => return past_deadline(state, webhook, &set, body, stage, limit, started),
        },
    };
    let reviewed = match outcome {
        Outcome::Reviewed(reviewed) => reviewed,
        Outcome::Invalid(message) => return Err(AppError::BadReview { message, body }),
        Outcome::Panicked => {
            state.metrics.panics.inc();
            state
                .metrics
                .requests
                .get_or_create(&RequestLabels::bounded(webhook.as_str(), "", "", "error"))
                .inc();
            tracing::error!(
                webhook = webhook.as_str(),
                policy_hash = set.hash(),
                "panic while evaluating a review; answered allowed=false code=500"
            );
            let body =
                admission::error_review(&body, 500, "internal error while evaluating the request");
            return Ok(json_response(body));
        }
    };
    // Without a valid policy set, an answer that came from the (empty) set would be a silent
    // allow: refuse with 503 so the apiserver applies the webhook's failurePolicy. Answers that
    // do not depend on the set (policy ConfigMaps, skipped kinds) are still given.
    if reviewed.summary.evaluated && !state.health.policies() {
        return Err(AppError::NoPolicies { body });
    }
    record(state, webhook, &reviewed, set.hash(), started);
    Ok(json_response(reviewed.body))
}

const INLINE: EvaluationLabels = EvaluationLabels { path: "inline" };
const INLINE_CUT: EvaluationLabels = EvaluationLabels { path: "inline_cut" };
const POOL: EvaluationLabels = EvaluationLabels { path: "pool" };

/// Evaluates a review on the blocking pool with the full budget, holding an evaluation slot;
/// the stage that ran out of time if it could not finish by `due`.
async fn on_pool(
    state: &AppState,
    webhook: Webhook,
    set: &Arc<PolicySet>,
    body: &bytes::Bytes,
    now: jiff::Timestamp,
    due: tokio::time::Instant,
) -> Result<Outcome, Stage> {
    // Wait for a slot at most until the deadline: the wait is bounded in time, never queued
    // without bound. No Retry-After: the apiserver does not retry (CONTRACT.md section 1).
    let Ok(Ok(permit)) = tokio::time::timeout_at(due, state.pool.clone().acquire_owned()).await
    else {
        return Err(Stage::Queue);
    };
    state.metrics.evaluations.get_or_create(&POOL).inc();
    let reviewer = state.reviewer;
    let evaluation = {
        let set = set.clone();
        let body = body.clone();
        tokio::task::spawn_blocking(move || {
            // The slot is held until the evaluation really ends, also past the deadline (a
            // thread cannot be stopped), so the pool never runs more than one per core.
            let _permit = permit;
            evaluate(reviewer, &set, &body, webhook, now, Effort::Full)
        })
    };
    match tokio::time::timeout_at(due, evaluation).await {
        // A result that arrives after the deadline is late all the same.
        Ok(joined) if tokio::time::Instant::now() <= due => Ok(joined.unwrap_or(Outcome::Panicked)),
        _ => Err(Stage::Evaluation),
    }
}

/// Where a review ran out of time.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Waiting for an evaluation slot.
    Queue,
    /// Being evaluated.
    Evaluation,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Evaluation => "evaluation",
        }
    }
}

/// Answers a review that ran out of time from its envelope alone (`admission::unfinished`:
/// each policy's action decides), counts it, and logs it like any review.
fn past_deadline(
    state: &AppState,
    webhook: Webhook,
    set: &PolicySet,
    body: bytes::Bytes,
    stage: Stage,
    limit: Duration,
    started: Instant,
) -> Result<Response, AppError> {
    state
        .metrics
        .deadline_exceeded
        .get_or_create(&DeadlineLabels {
            webhook: webhook.as_str().into(),
            stage: stage.as_str().into(),
        })
        .inc();
    let limit = format!("{} ms", limit.as_millis());
    let why = match stage {
        Stage::Queue => format!("no evaluation slot came free within its {limit} deadline"),
        Stage::Evaluation => format!("the analysis did not finish within its {limit} deadline"),
    };
    tracing::warn!(
        webhook = webhook.as_str(),
        stage = stage.as_str(),
        limit = %limit,
        "review past its deadline; answered by the policies' actions"
    );
    match admission::unfinished(set, &body, webhook, &why) {
        // Without a valid policy set nothing is decided, in time or not.
        Ok(reviewed) if reviewed.summary.evaluated && !state.health.policies() => {
            Err(AppError::NoPolicies { body })
        }
        Ok(reviewed) => {
            record(state, webhook, &reviewed, set.hash(), started);
            Ok(json_response(reviewed.body))
        }
        Err(error) => Err(AppError::BadReview {
            message: error.to_string(),
            body,
        }),
    }
}

enum Outcome {
    Reviewed(Box<Reviewed>),
    Invalid(String),
    Panicked,
}

fn evaluate(
    reviewer: Reviewer,
    set: &PolicySet,
    body: &[u8],
    webhook: Webhook,
    now: jiff::Timestamp,
    effort: Effort,
) -> Outcome {
    match std::panic::catch_unwind(AssertUnwindSafe(|| {
        reviewer(set, body, webhook, now, effort)
    })) {
        Ok(Ok(reviewed)) => Outcome::Reviewed(Box::new(reviewed)),
        Ok(Err(error)) => Outcome::Invalid(error.to_string()),
        Err(_) => Outcome::Panicked,
    }
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn record(state: &AppState, webhook: Webhook, reviewed: &Reviewed, hash: &str, started: Instant) {
    let s = &reviewed.summary;
    let decision = if s.allowed { "allow" } else { "deny" };
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels::bounded(
            webhook.as_str(),
            &s.operation,
            &s.kind,
            decision,
        ))
        .inc();
    for f in &s.findings {
        state
            .metrics
            .violations
            .get_or_create(&ViolationLabels {
                policy: f.policy.clone(),
                rule: f.rule.as_str().into(),
                action: f.action.as_str().into(),
            })
            .inc();
    }
    let elapsed = started.elapsed();
    state.metrics.duration.observe(elapsed.as_secs_f64());
    let violations = s
        .findings
        .iter()
        .map(|f| format!("{}/{}:{}", f.policy, f.rule.as_str(), f.action.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        uid = %s.uid,
        kind = %s.kind,
        namespace = %s.namespace,
        name = %s.name,
        operation = %s.operation,
        webhook = webhook.as_str(),
        user = %s.user,
        decision,
        code = s.code,
        violations = %violations,
        patch_ops = s.patch_ops,
        warnings = s.warnings,
        dry_run = s.dry_run,
        latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        policy_hash = hash,
        "review"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;
    use tower::ServiceExt;

    const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"0d6c7b3c-0000-4000-8000-000000000001","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","namespace":"default","userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx:1.27"}]}},"oldObject":null,"dryRun":false}}"#;

    fn state(reviewer: Reviewer) -> (AppState, Metrics) {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let mut state = AppState::new(
            Arc::new(ArcSwap::from_pointee(PolicySet::empty())),
            metrics.clone(),
            1024 * 1024,
        );
        state.reviewer = reviewer;
        (state, metrics)
    }

    async fn call(
        state: AppState,
        method: &str,
        uri: &str,
        ct: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = HttpRequest::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ct)
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router(state).oneshot(request).await.unwrap();
        let status = response.status();
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn panicking(
        _: &PolicySet,
        _: &[u8],
        _: Webhook,
        _: jiff::Timestamp,
        _: Effort,
    ) -> Result<Reviewed, admission::ReviewError> {
        panic!("rule bug")
    }

    #[tokio::test]
    async fn panic_in_evaluation_answers_allowed_false_code_500_with_the_uid_and_is_counted() {
        let (state, metrics) = state(panicking);
        for path in ["/validate", "/mutate?timeout=10s"] {
            let (status, out) = call(state.clone(), "POST", path, "application/json", REVIEW).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(out["response"]["allowed"], false);
            assert_eq!(out["response"]["status"]["code"], 500);
            assert_eq!(
                out["response"]["uid"],
                "0d6c7b3c-0000-4000-8000-000000000001"
            );
        }
        // A large body is reviewed on the same pool: caught there too.
        let big = REVIEW.replacen(
            r#""metadata":{"name":"p"}"#,
            &format!(
                r#""metadata":{{"name":"p","annotations":{{"pad":"{}"}}}}"#,
                "x".repeat(256 * 1024)
            ),
            1,
        );
        let (status, out) =
            call(state.clone(), "POST", "/validate", "application/json", &big).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(out["response"]["status"]["code"], 500);
        assert_eq!(
            out["response"]["uid"],
            "0d6c7b3c-0000-4000-8000-000000000001"
        );
        assert_eq!(metrics.panics.get(), 3);
        // And the app keeps serving afterwards.
        let (status, out) = call(state, "POST", "/validate", "application/json", REVIEW).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(out["response"]["status"]["code"], 500);
    }

    #[tokio::test]
    async fn a_normal_review_echoes_the_uid_and_counts_the_request() {
        let (state, metrics) = state(admission::review_with);
        let (status, out) = call(
            state,
            "POST",
            "/validate",
            "application/json; charset=utf-8",
            REVIEW,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(out["response"]["allowed"], true);
        assert_eq!(
            out["response"]["uid"],
            "0d6c7b3c-0000-4000-8000-000000000001"
        );
        let labels = RequestLabels {
            webhook: "validate",
            operation: "CREATE",
            kind: "Pod",
            decision: "allow",
        };
        assert_eq!(metrics.requests.get_or_create(&labels).get(), 1);
        assert_eq!(metrics.in_flight.get(), 0);
    }

    #[tokio::test]
    async fn caller_errors_map_to_their_status_codes_in_memory() {
        let (state, _) = state(admission::review_with);
        let cases = [
            (
                "wrong path",
                "POST",
                "/nope",
                "application/json",
                REVIEW,
                404,
            ),
            (
                "wrong method",
                "GET",
                "/validate",
                "application/json",
                "",
                405,
            ),
            (
                "wrong type",
                "POST",
                "/validate",
                "application/x-www-form-urlencoded",
                REVIEW,
                415,
            ),
            ("no type", "POST", "/mutate", "", REVIEW, 415),
            (
                "bad json",
                "POST",
                "/validate",
                "application/json",
                "{",
                400,
            ),
        ];
        for (name, method, uri, ct, body, want) in cases {
            let (status, out) = call(state.clone(), method, uri, ct, body).await;
            assert_eq!(status.as_u16(), want, "{name}");
            assert_eq!(out["response"]["status"]["code"], want, "{name}");
        }
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024));
        let (status, _) = call(state, "POST", "/validate", "application/json", &big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    fn enforce_and_audit() -> PolicySet {
        let text = "apiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: strict}\nspec:\n  validate: {hostsFile: {}}\n---\napiVersion: podgate.dev/v1alpha1\nkind: PodPolicy\nmetadata: {name: watch}\nspec:\n  action: Audit\n  validate: {hostsFile: {}}\n";
        PolicySet::from_sources(&[("p.yaml".into(), text.into())]).unwrap()
    }

    #[tokio::test]
    async fn a_review_waits_for_an_evaluation_slot_only_until_the_deadline() {
        let (mut state, metrics) = state(admission::review_with);
        state.policies = Arc::new(ArcSwap::from_pointee(enforce_and_audit()));
        state.pool = Arc::new(tokio::sync::Semaphore::new(0));
        // The pool's path: nothing is answered inline.
        state.inline_max_body = 0;
        for (path, allowed) in [
            ("/validate?timeout=1s", false),
            ("/mutate?timeout=1s", true),
        ] {
            let started = Instant::now();
            let (status, out) = call(state.clone(), "POST", path, "application/json", REVIEW).await;
            let waited = started.elapsed();
            assert_eq!(status, StatusCode::OK, "{path}");
            let r = &out["response"];
            assert_eq!(r["uid"], "0d6c7b3c-0000-4000-8000-000000000001");
            assert_eq!(r["allowed"], allowed, "{path}: {r}");
            assert!(waited >= Duration::from_millis(850), "{path}: {waited:?}");
            assert!(waited < Duration::from_secs(2), "{path}: {waited:?}");
            if !allowed {
                let message = r["status"]["message"].as_str().unwrap();
                assert!(
                    message.contains("[strict] podgate could not finish checking this request: no evaluation slot came free within its"),
                    "{message}"
                );
                // The Audit policy annotates, on the denial too.
                assert!(
                    r["auditAnnotations"]["watch"]
                        .as_str()
                        .unwrap()
                        .contains("could not finish")
                );
            } else {
                // The mutating webhook fails open: the policies without mutations do not apply.
                assert!(r.get("warnings").is_none(), "{r}");
            }
        }
        let queue = DeadlineLabels {
            webhook: "validate".into(),
            stage: "queue".into(),
        };
        assert_eq!(metrics.deadline_exceeded.get_or_create(&queue).get(), 1);
    }

    #[tokio::test]
    async fn evaluation_past_the_deadline_is_answered_by_the_policies_actions() {
        let (mut state, metrics) = state(admission::review_with);
        state.policies = Arc::new(ArcSwap::from_pointee(enforce_and_audit()));
        state.max_evaluation = Duration::ZERO;
        let (status, out) = call(
            state.clone(),
            "POST",
            "/validate",
            "application/json",
            REVIEW,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let message = out["response"]["status"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            message.contains("the analysis did not finish within its 0 ms deadline"),
            "{message}"
        );
        let stage = DeadlineLabels {
            webhook: "validate".into(),
            stage: "evaluation".into(),
        };
        // With a zero budget the slot may be taken in time or not: either stage counts.
        let queue = DeadlineLabels {
            webhook: "validate".into(),
            stage: "queue".into(),
        };
        let in_evaluation = metrics.deadline_exceeded.get_or_create(&stage).get();
        let in_queue = metrics.deadline_exceeded.get_or_create(&queue).get();
        assert_eq!(in_evaluation + in_queue, 1);
    }

    #[test]
    fn deadline_follows_the_timeout_query_minus_a_margin_capped_at_30s() {
        assert_eq!(deadline(Some("timeout=10s")), Duration::from_millis(9900));
        assert_eq!(deadline(Some("a=b&timeout=1s")), Duration::from_millis(900));
        assert_eq!(deadline(Some("timeout=2m")), Duration::from_millis(29_900));
        assert_eq!(deadline(Some("timeout=bogus")), MAX_DEADLINE);
        assert_eq!(deadline(None), MAX_DEADLINE);
    }
}
