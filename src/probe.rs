//! Polling one endpoint: the single probe (used by `check`, the benchmark and
//! the worker) and the worker loop around it.

use crate::breaker::{BreakerStore, CallResult, Permit};

use crate::clock::now_ms;
use crate::config::ResolvedEndpoint;
use crate::detect::hang::HangSettings;
use crate::exchange::validate::Validator;
use crate::exchange::{self, Payload, Problem, RawResponse};
use crate::http::{self, FetchError};
use crate::limiter::{self, RateLimiter};
use crate::model::EndpointId;
use crate::model::{ApiError, EndpointKind, InvalidReason, RateLimitSignal};
use crate::model::{Event, Outcome, Sample};
use crate::pacing::{Adaptive, AdaptiveSettings};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The result of one probe.
#[derive(Debug, Clone)]
pub struct Probed {
    pub sample: Sample,
    pub payload: Option<Payload>,
    /// server time − local time, measured by a time endpoint.
    pub clock_offset_ms: Option<i64>,
    /// The body began with a UTF-8 byte order mark, which the adapter
    /// ignored (RFC 8259 §8.1 allows it): worth a note, not an alert.
    pub byte_order_mark: bool,
}

/// GET the endpoint once, parse, classify. Never panics, whatever comes back.
/// With a `validator`, the stateful checks (jump, stale, frozen, sequence) run too.
pub async fn probe_once(
    client: &reqwest::Client,
    ep: &ResolvedEndpoint,
    max_body: usize,
    validator: Option<&mut Validator>,
) -> Probed {
    let sent_ms = now_ms();
    let fetched = http::get(client, &ep.url, ep.timeout, max_body).await;
    let at_ms = now_ms();
    let byte_order_mark = matches!(&fetched, Ok(f) if crate::exchange::has_bom(&f.body));
    let (latency, status, outcome, payload, signal) = match fetched {
        Err(FetchError::Timeout { elapsed }) => (elapsed, None, Outcome::Timeout, None, None),
        Err(FetchError::Connect { detail, elapsed }) => {
            (elapsed, None, Outcome::Connect { detail }, None, None)
        }
        Ok(f) => {
            let raw = RawResponse {
                status: f.status,
                headers: &f.headers,
                body: &f.body,
                received_at_ms: at_ms,
                elapsed_ms: f.elapsed.as_millis() as u64,
                requested_symbol: (ep.kind != EndpointKind::Time).then_some(ep.symbol.as_str()),
            };
            let interp = exchange::interpret(ep.exchange_kind, ep.kind, &raw, ep.generic.as_ref());
            let mut signal = interp.signal;
            let (outcome, payload) = if f.truncated {
                let reason = InvalidReason::Schema {
                    detail: format!("body larger than the {max_body}-byte cap"),
                };
                (Outcome::Invalid { reason }, None)
            } else {
                match interp.result.map(|p| with_symbol(p, &ep.symbol)) {
                    Ok(p) => match validator.map(|v| v.check(&p, at_ms)) {
                        Some(Err(reason)) => (Outcome::Invalid { reason }, Some(p)),
                        _ => (Outcome::Ok, Some(p)),
                    },
                    Err(problem) => (
                        classify_problem(problem, f.status, &mut signal, at_ms),
                        None,
                    ),
                }
            };
            only_limits_hold(&outcome, &mut signal);
            (f.elapsed, Some(f.status), outcome, payload, signal)
        }
    };
    let clock_offset_ms = match &payload {
        Some(Payload::Time { server_ms }) if ep.kind == EndpointKind::Time => {
            // The server read its clock about half-way through the round trip.
            Some(server_ms - (sent_ms + at_ms) / 2)
        }
        _ => None,
    };
    let sample = Sample {
        id: EndpointId::new(&ep.exchange, &ep.endpoint),
        at_ms,
        latency_us: latency.as_micros() as u64,
        status,
        summary: payload.as_ref().map(Payload::summary),
        price: payload.as_ref().and_then(Payload::reference_price),
        exchange_ts_ms: payload.as_ref().and_then(Payload::exchange_ts_ms),
        outcome,
        signal: signal.filter(|s| !s.is_empty()),
    };
    Probed {
        sample,
        payload,
        clock_offset_ms,
        byte_order_mark,
    }
}

/// Bodies such as Binance's depth do not repeat the symbol: take the one asked for.
fn with_symbol(mut p: Payload, symbol: &str) -> Payload {
    match &mut p {
        Payload::Ticker(t) if t.symbol.is_empty() => t.symbol = symbol.to_string(),
        Payload::Book(b) if b.symbol.is_empty() => b.symbol = symbol.to_string(),
        _ => {}
    }
    p
}

/// Only a rate limit or a ban orders the limiter (and the breaker) to hold
/// off: a `Retry-After` or ban time riding on any other answer (a CDN's
/// block page, an exchange fault, a healthy body) is not followed, so a
/// geo-block never parks polling like a ban does.
fn only_limits_hold(outcome: &Outcome, signal: &mut Option<RateLimitSignal>) {
    if matches!(
        outcome,
        Outcome::RateLimited { .. } | Outcome::Banned { .. }
    ) {
        return;
    }
    if let Some(s) = signal.as_mut() {
        s.retry_after_ms = None;
        s.banned_until_ms = None;
    }
}

/// Turn an adapter's problem into the outcome the breaker, the detectors and
/// the alerts see; make sure back-off orders end up in the signal, and only
/// for a rate limit or a ban. `status` is the HTTP status the problem came
/// with; `now_ms` dates a ban given as a duration.
pub fn classify_problem(
    problem: Problem,
    status: u16,
    signal: &mut Option<RateLimitSignal>,
    now_ms: i64,
) -> Outcome {
    let header_retry = signal.as_ref().and_then(|s| s.retry_after_ms);
    let sig = signal.get_or_insert_with(RateLimitSignal::default);
    let outcome = match problem {
        Problem::Api(ApiError::RateLimited {
            retry_after_ms,
            message,
            ..
        }) => {
            let retry = retry_after_ms.or(header_retry);
            sig.retry_after_ms = sig.retry_after_ms.or(retry);
            Outcome::RateLimited {
                retry_after_ms: retry,
                detail: message,
            }
        }
        Problem::Api(ApiError::IpBanned {
            until_ms,
            retry_after_ms,
            message,
        }) => {
            let retry = retry_after_ms.or(header_retry);
            sig.retry_after_ms = sig.retry_after_ms.or(retry);
            sig.banned_until_ms = until_ms.or_else(|| retry.map(|r| now_ms + r as i64));
            Outcome::Banned {
                until_ms: sig.banned_until_ms,
                retry_after_ms: retry,
                detail: message,
            }
        }
        // An unknown code on a 5xx is a server failure by its status; an
        // exchange fault on a 5xx (Binance -1001 on 503) keeps the status as
        // its label, as it always had: the class is a server error either way.
        Problem::Api(
            ApiError::Exchange { code, message } | ApiError::ExchangeFault { code, message },
        ) if status >= 500 => Outcome::Http {
            status,
            detail: match code {
                Some(c) => format!("{c}: {message}"),
                None => message,
            },
        },
        Problem::Api(error) => Outcome::Exchange { error },
        Problem::Http {
            status: 429,
            body_excerpt,
        } => Outcome::RateLimited {
            retry_after_ms: header_retry,
            detail: body_excerpt,
        },
        Problem::Http {
            status: 418,
            body_excerpt,
        } => {
            sig.banned_until_ms = header_retry.map(|r| now_ms + r as i64);
            Outcome::Banned {
                until_ms: sig.banned_until_ms,
                retry_after_ms: header_retry,
                detail: body_excerpt,
            }
        }
        Problem::Http {
            status: s,
            body_excerpt,
        } => Outcome::Http {
            status: s,
            detail: body_excerpt,
        },
        Problem::Invalid(reason) if (200..300).contains(&status) => Outcome::Invalid { reason },
        // A garbage body on an error status is first of all an HTTP error.
        Problem::Invalid(reason) => Outcome::Http {
            status,
            detail: reason.to_string(),
        },
    };
    only_limits_hold(&outcome, signal);
    outcome
}

/// What a worker needs from the rest of the process.
#[derive(Clone)]
pub struct WorkerDeps {
    pub client: reqwest::Client,
    pub limiter: Arc<dyn RateLimiter>,
    pub breakers: Arc<dyn BreakerStore>,
    pub events: mpsc::Sender<Event>,
    pub max_body: usize,
    /// Shared by the endpoints of one exchange: the time endpoint writes it
    /// ([`OFFSET_UNKNOWN`] until then).
    pub clock_offset_ms: Arc<AtomicI64>,
    pub adaptive: AdaptiveSettings,
    /// When a request still in flight is reported as stalled.
    pub hang: HangSettings,
    pub shutdown: CancellationToken,
}

pub const OFFSET_UNKNOWN: i64 = i64::MIN;

/// The event that puts an endpoint on the dashboard. The supervisor sends it
/// for every endpoint in config order before any worker starts, so rows keep
/// the order of the config file whatever the scheduler does.
pub fn watching(ep: &ResolvedEndpoint) -> Event {
    Event::Watching {
        id: EndpointId::new(&ep.exchange, &ep.endpoint),
        exchange_kind: ep.exchange_kind,
        kind: ep.kind,
        url: ep.url.clone(),
        interval_ms: ep.interval.as_millis() as u64,
    }
}

/// Poll one endpoint until shutdown. A slow or hung endpoint only delays itself.
pub async fn run_worker(ep: ResolvedEndpoint, deps: WorkerDeps) {
    let id = EndpointId {
        exchange: ep.exchange.clone(),
        endpoint: ep.endpoint.clone(),
    };
    let mut validator = Validator::new(ep.validation.clone());
    let mut bom_noted = false;
    let mut pace = Adaptive::new(ep.interval, deps.adaptive.clone());
    let mut interval = ep.interval;
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = deps.shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let started = tokio::time::Instant::now();
        let polled = tokio::select! {
            _ = deps.shutdown.cancelled() => return,
            p = poll(&ep, &id, &deps, &mut validator, &mut bom_noted, deps.hang.stall_deadline(interval)) => p,
        };
        if let Some((sample, budget_left)) = polled
            && let Some(new) = pace.observe(&sample, budget_left)
        {
            interval = new;
            emit(
                &deps,
                Event::PollInterval {
                    id: id.clone(),
                    interval_ms: new.as_millis() as u64,
                },
            )
            .await;
        }
        // Ticks are measured from the start of a poll; a poll slower than the
        // interval is followed at once by the next, never by a burst.
        next = (started + interval).max(tokio::time::Instant::now());
    }
}

/// One tick: breaker, limiter, probe, feedback. Returns the sample and the
/// share of the tightest rate tier left, when a call was made.
async fn poll(
    ep: &ResolvedEndpoint,
    id: &EndpointId,
    deps: &WorkerDeps,
    validator: &mut Validator,
    bom_noted: &mut bool,
    stall_after: Option<Duration>,
) -> Option<(Sample, Option<f64>)> {
    // Ask the breaker first: a call it will refuse must not spend rate budget.
    let grant = match deps.breakers.permit(id).await {
        Ok((permit, transition)) => {
            if let Some(t) = transition {
                emit(
                    deps,
                    Event::BreakerChanged {
                        id: id.clone(),
                        at_ms: now_ms(),
                        transition: t,
                    },
                )
                .await;
            }
            match permit {
                Permit::Granted(g) => g,
                Permit::Denied { state, .. } => {
                    emit(
                        deps,
                        Event::BreakerRejected {
                            id: id.clone(),
                            at_ms: now_ms(),
                            state,
                        },
                    )
                    .await;
                    return None;
                }
            }
        }
        Err(e) => {
            tracing::warn!(exchange = %ep.exchange, endpoint = %ep.endpoint, error = %e, "breaker store unavailable");
            return None;
        }
    };
    match limiter::acquire(deps.limiter.as_ref(), &ep.limit).await {
        Ok(acq) if !acq.waited.is_zero() => {
            if let Some(tier) = acq.waited_on {
                emit(
                    deps,
                    Event::LimiterWaited {
                        id: id.clone(),
                        at_ms: now_ms(),
                        waited_ms: acq.waited.as_millis() as u64,
                        tier,
                    },
                )
                .await;
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(exchange = %ep.exchange, endpoint = %ep.endpoint, error = %e, "rate limiter unavailable");
            return None;
        }
    }
    let offset = deps.clock_offset_ms.load(Ordering::Relaxed);
    if offset != OFFSET_UNKNOWN {
        validator.set_clock_offset_ms(offset);
    }
    let probing = probe_once(&deps.client, ep, deps.max_body, Some(validator));
    tokio::pin!(probing);
    let probed = match stall_after {
        None => probing.await,
        Some(after) => tokio::select! {
            p = &mut probing => p,
            _ = tokio::time::sleep(after) => {
                // Still unanswered: say so now rather than when it times out.
                emit(
                    deps,
                    Event::Stalled {
                        id: id.clone(),
                        at_ms: now_ms(),
                        in_flight_ms: after.as_millis() as u64,
                    },
                )
                .await;
                probing.await
            }
        },
    };
    if probed.byte_order_mark && !*bom_noted {
        // Once per endpoint: a server that sends one sends it every time.
        *bom_noted = true;
        tracing::info!(
            exchange = %ep.exchange,
            endpoint = %ep.endpoint,
            "the body starts with a UTF-8 byte order mark; ignored, as RFC 8259 allows"
        );
    }
    if let Some(off) = probed.clock_offset_ms {
        deps.clock_offset_ms.store(off, Ordering::Relaxed);
        emit(
            deps,
            Event::ClockOffset {
                exchange: ep.exchange.clone(),
                offset_ms: off,
            },
        )
        .await;
    }
    let sample = probed.sample;
    let hold_off = sample
        .signal
        .as_ref()
        .and_then(|s| s.hold_off(sample.at_ms));
    if let Some(sig) = &sample.signal
        && let Err(e) = deps.limiter.apply_signal(&ep.limit, sig).await
    {
        tracing::warn!(exchange = %ep.exchange, error = %e, "could not apply rate-limit signal");
    }
    let result = CallResult {
        class: sample.outcome.class(),
        latency: Duration::from_micros(sample.latency_us),
        hold_off,
    };
    let transition = deps.breakers.record(id, &grant, result).await;
    let at_ms = sample.at_ms;
    emit(deps, Event::Sample(sample.clone())).await;
    match transition {
        Ok(Some(t)) => {
            emit(
                deps,
                Event::BreakerChanged {
                    id: id.clone(),
                    at_ms,
                    transition: t,
                },
            )
            .await
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(exchange = %ep.exchange, error = %e, "breaker store unavailable"),
    }
    let mut budget_left = None;
    if let Ok(tiers) = deps.limiter.fill(&ep.limit).await {
        budget_left = tiers
            .iter()
            .filter(|t| t.capacity > 0.0)
            .map(|t| (t.tokens / t.capacity).clamp(0.0, 1.0))
            .reduce(f64::min);
        emit(
            deps,
            Event::LimiterFill {
                id: id.clone(),
                at_ms,
                tiers,
            },
        )
        .await;
    }
    Some((sample, budget_left))
}

/// Events are never dropped: a worker waits for room (the reducer is fast).
async fn emit(deps: &WorkerDeps, e: Event) {
    let _ = deps.events.send(e).await;
}
