//! The stats page (`/stats`): throughput, response-time percentiles, the queue, the device and the
//! server's health, refreshed every [`POLL_MS`] from `GET /api/stats`, `GET /api/device/queue`
//! and `GET /health`, plus a chart of the last minutes.
//!
//! The server renders the skeleton with "—" placeholders; the browser fills it in. Polling runs
//! in an effect (browser only) and stops when the page is left.

use crate::api::{DeviceQueue, Health, Stats};
use crate::client::http::{get_json, sleep_ms};
use crate::pages::format::{self, NO_DATA};
use crate::pages::stats_chart::HistoryChart;
use leptos::prelude::*;
use leptos_meta::Title;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Milliseconds between refreshes.
pub const POLL_MS: u32 = 2000;

/// What the page shows; each part is `None` until its first successful fetch.
#[derive(Clone, Copy)]
struct Data {
    stats: RwSignal<Option<Stats>>,
    queue: RwSignal<Option<DeviceQueue>>,
    health: RwSignal<Option<Health>>,
    problem: RwSignal<Option<String>>,
}

impl Data {
    /// Fetches all three endpoints once. Returns `false` when the page is gone.
    async fn refresh(self) -> bool {
        let stats = get_json::<Stats>("/api/stats").await;
        let queue = get_json::<DeviceQueue>("/api/device/queue").await;
        let health = get_json::<Health>("/health").await;
        let mut problems = Vec::new();
        let mut keep = |result: Result<(), String>| {
            if let Err(e) = result {
                problems.push(e);
            }
        };
        let alive = self
            .stats
            .try_update(|s| keep(stats.map(|v| *s = Some(v))))
            .is_some();
        self.queue.try_update(|q| keep(queue.map(|v| *q = Some(v))));
        self.health
            .try_update(|h| keep(health.map(|v| *h = Some(v))));
        let problem = (!problems.is_empty()).then(|| problems.join("; "));
        self.problem.try_set(problem);
        alive
    }

    /// A value from the stats, or the placeholder.
    fn stat(
        self,
        f: impl Fn(&Stats) -> String + Send + Sync + 'static,
    ) -> impl Fn() -> String + Send + Sync + 'static {
        move || {
            self.stats
                .with(|s| s.as_ref().map(&f).unwrap_or_else(|| NO_DATA.into()))
        }
    }

    /// A value from the device queue, or the placeholder.
    fn queued(
        self,
        f: impl Fn(&DeviceQueue) -> String + Send + Sync + 'static,
    ) -> impl Fn() -> String + Send + Sync + 'static {
        move || {
            self.queue
                .with(|q| q.as_ref().map(&f).unwrap_or_else(|| NO_DATA.into()))
        }
    }

    /// A value from the health report, or the placeholder.
    fn healthy(
        self,
        f: impl Fn(&Health) -> String + Send + Sync + 'static,
    ) -> impl Fn() -> String + Send + Sync + 'static {
        move || {
            self.health
                .with(|h| h.as_ref().map(&f).unwrap_or_else(|| NO_DATA.into()))
        }
    }
}

/// Starts the refresh loop (in the browser: effects do not run on the server); it ends when the
/// page's reactive owner is cleaned up.
fn start_polling(data: Data) {
    Effect::new(move |_| {
        let running = Arc::new(AtomicBool::new(true));
        on_cleanup({
            let running = Arc::clone(&running);
            move || running.store(false, Ordering::Relaxed)
        });
        leptos::task::spawn_local(async move {
            while running.load(Ordering::Relaxed) && data.refresh().await {
                sleep_ms(POLL_MS).await;
            }
        });
    });
}

/// One labelled figure of a card.
#[component]
fn Metric(
    /// What it measures.
    label: &'static str,
    /// The value, reactive.
    value: impl Fn() -> String + Send + Sync + 'static,
    /// Test id of the value.
    #[prop(optional)]
    testid: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="metric">
            <dt>{label}</dt>
            <dd data-testid=testid>{value}</dd>
        </div>
    }
}

/// The stats page as a lazily loaded route (its own wasm chunk in the browser, like the chat's).
pub struct StatsRoute;

#[leptos_router::lazy_route]
impl leptos_router::LazyRoute for StatsRoute {
    fn data() -> Self {
        StatsRoute
    }

    fn view(_this: Self) -> AnyView {
        crate::page_is_live();
        view! { <StatsPage/> }.into_any()
    }
}

/// Live server statistics.
#[component]
pub fn StatsPage() -> impl IntoView {
    let data = Data {
        stats: RwSignal::new(None),
        queue: RwSignal::new(None),
        health: RwSignal::new(None),
        problem: RwSignal::new(None),
    };
    start_polling(data);

    let ms = |f: fn(&Stats) -> f64| data.stat(move |s| format::seconds_as_millis(f(s)));
    let history = Signal::derive(move || {
        data.stats
            .with(|s| s.as_ref().map(|s| s.history.clone()).unwrap_or_default())
    });
    let step = Signal::derive(move || {
        data.stats
            .with(|s| s.as_ref().map_or(1, |s| s.history_step_seconds))
    });
    let health_class = move || {
        data.health
            .with(|h| match h.as_ref().map(|h| h.status.as_str()) {
                Some("healthy") => "badge ok",
                Some(_) => "badge warn",
                None => "badge",
            })
    };
    let subsystems = move || {
        data.health.with(|h| {
            h.as_ref()
                .map(|h| {
                    let s = &h.subsystems;
                    [
                        ("Scheduler", "scheduler", &s.scheduler),
                        ("Device", "device", &s.device),
                        ("WebSocket", "websocket", &s.websocket),
                        ("Model", "model", &s.model),
                    ]
                        .into_iter()
                        .map(|(name, key, sub)| {
                            view! {
                                <li data-testid={format!("stats-subsystem-{key}")}>
                                    <span class="sub-name">{name}</span>
                                    " "
                                    <span class=if sub.status == "ok" { "badge ok" } else { "badge warn" }>{sub.status.clone()}</span>
                                    " "
                                    <span class="hint">{sub.detail.clone()}</span>
                                </li>
                            }
                        })
                        .collect_view()
                })
        })
    };

    view! {
        <Title text="Stats · Turnstile"/>
        <div class="page stats">
            <header class="page-header">
                <h1>"Stats"</h1>
                <p class="lede">"Live from this server, refreshed every 2 seconds. Times are over the last minute."</p>
                <p class="problem" role="status" aria-live="polite" data-testid="stats-problem">
                    {move || data.problem.get().map(|p| format!("Could not refresh: {p}"))}
                </p>
            </header>
            <div class="cards">
                <section class="card" aria-labelledby="card-throughput">
                    <h2 id="card-throughput">"Throughput"</h2>
                    <dl class="metrics">
                        <Metric label="Requests / s" value=data.stat(|s| format::rate(s.performance.requests_per_second)) testid="stats-rps"/>
                        <Metric label="Total requests" value=data.stat(|s| s.performance.total_requests.to_string()) testid="stats-total"/>
                    </dl>
                </section>
                <section class="card" aria-labelledby="card-latency">
                    <h2 id="card-latency">"Response time"</h2>
                    <dl class="metrics">
                        <Metric label="Average" value=ms(|s| s.performance.avg_response_time) testid="stats-avg"/>
                        <Metric label="p50" value=ms(|s| s.performance.p50_response_time) testid="stats-p50"/>
                        <Metric label="p95" value=ms(|s| s.performance.p95_response_time) testid="stats-p95"/>
                        <Metric label="p99" value=ms(|s| s.performance.p99_response_time) testid="stats-p99"/>
                    </dl>
                </section>
                <section class="card" aria-labelledby="card-queue">
                    <h2 id="card-queue">"Queue"</h2>
                    <dl class="metrics">
                        <Metric label="Waiting" value=data.queued(|q| q.currently_waiting.to_string()) testid="stats-queue-length"/>
                        <Metric label="Running" value=data.queued(|q| format!("{} of {}", q.running, q.max_concurrent)) testid="stats-running"/>
                        <Metric label="Longest wait" value=data.queued(|q| format::seconds_as_millis(q.max_wait_time_seconds)) testid="stats-max-wait"/>
                        <Metric label="Cancelled" value=data.stat(|s| s.queue.cancelled.to_string())/>
                    </dl>
                </section>
                <section class="card" aria-labelledby="card-device">
                    <h2 id="card-device">"Device"</h2>
                    <dl class="metrics">
                        <Metric label="Backend" value=data.stat(|s| s.device.backend.clone()) testid="stats-backend"/>
                        <Metric label="State" value=data.stat(|s| if s.device.open { "open".into() } else { "closed".into() }) testid="stats-device-state"/>
                        <Metric label="Times opened" value=data.stat(|s| s.device.opens.to_string())/>
                        <Metric label="Failed opens" value=data.stat(|s| s.device.open_failures.to_string())/>
                    </dl>
                </section>
                <section class="card card-wide" aria-labelledby="card-health">
                    <h2 id="card-health">"Health"</h2>
                    <p>
                        <span class=health_class data-testid="stats-health">{data.healthy(|h| h.status.clone())}</span>
                        " "
                        <span class="hint">
                            {data.healthy(|h| format!("version {} · up {}", h.version, format::uptime(h.uptime_seconds)))}
                        </span>
                    </p>
                    <ul class="subsystems">{subsystems}</ul>
                </section>
            </div>
            <section class="card" aria-labelledby="card-history">
                <h2 id="card-history">"Last minutes"</h2>
                <HistoryChart history=history step=step/>
            </section>
        </div>
    }
    .into_any()
}
